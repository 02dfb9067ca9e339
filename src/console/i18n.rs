//! The console's words in Russian and English, chosen by the browser's `Accept-Language`
//! (with the message's own negotiation, [`crate::document::negotiate`]); Russian when the
//! browser asks for neither, as most support desks of 1C shops read it.

/// A console language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    /// Русский.
    Ru,
    /// English.
    En,
}

impl Lang {
    /// The language for a request's `Accept-Language`.
    pub(crate) fn from_accept(accept: Option<&str>) -> Lang {
        let available = [("ru".to_string(), String::new()), ("en".to_string(), String::new())];
        match crate::document::negotiate(&available, None, accept) {
            Some("en") => Lang::En,
            _ => Lang::Ru,
        }
    }

    /// The `lang` attribute of the page.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// The words of this language.
    pub(crate) fn t(self) -> &'static Texts {
        match self {
            Lang::Ru => &RU,
            Lang::En => &EN,
        }
    }
}

/// Every fixed text of the console pages.
#[allow(missing_docs)]
#[derive(Debug)]
pub(crate) struct Texts {
    pub title: &'static str,
    pub login_title: &'static str,
    pub user: &'static str,
    pub password: &'static str,
    pub log_in: &'static str,
    pub log_out: &'static str,
    pub login_failed: &'static str,
    pub too_many: &'static str,
    pub groups: &'static str,
    pub failures: &'static str,
    pub error: &'static str,
    pub config: &'static str,
    pub platform_versions: &'static str,
    pub count: &'static str,
    pub users: &'static str,
    pub machines: &'static str,
    pub first_seen: &'static str,
    pub last_seen: &'static str,
    pub per_hour: &'static str,
    pub mark: &'static str,
    pub no_groups: &'static str,
    pub reports: &'static str,
    pub time: &'static str,
    pub machine: &'static str,
    pub os: &'static str,
    pub platform: &'static str,
    pub description: &'static str,
    pub screenshot: &'static str,
    pub files: &'static str,
    pub archive: &'static str,
    pub open: &'static str,
    pub note: &'static str,
    pub save: &'static str,
    pub state_none: &'static str,
    pub state_known: &'static str,
    pub state_fixed: &'static str,
    pub marked_by: &'static str,
    pub failures_title: &'static str,
    pub failures_total: &'static str,
    pub failures_peak: &'static str,
    pub minute: &'static str,
    pub events: &'static str,
    pub latest_failures: &'static str,
    pub by_base: &'static str,
    pub base: &'static str,
    pub root_document: &'static str,
    pub client: &'static str,
    pub not_found: &'static str,
    pub refused: &'static str,
    pub store_error: &'static str,
    pub report: &'static str,
    pub back: &'static str,
    pub no_text: &'static str,
    pub forwarding: &'static str,
    pub forward_pending: &'static str,
    pub forward_retrying: &'static str,
    pub forward_delivered: &'static str,
    pub forward_failed: &'static str,
    pub forward_problems: &'static str,
    pub forward_no_problems: &'static str,
    pub forward_target: &'static str,
    pub forward_kind: &'static str,
    pub forward_group: &'static str,
    pub forward_attempts: &'static str,
    pub forward_last_error: &'static str,
    pub forward_next: &'static str,
    pub forward_given_up: &'static str,
    pub kind_report: &'static str,
    pub kind_new_group: &'static str,
    pub kind_threshold: &'static str,
}

static RU: Texts = Texts {
    title: "v8help — отчёты об ошибках",
    login_title: "Вход в консоль поддержки",
    user: "Пользователь",
    password: "Пароль",
    log_in: "Войти",
    log_out: "Выйти",
    login_failed: "Неверное имя пользователя или пароль.",
    too_many: "Слишком много неудачных попыток входа. Повторите позже.",
    groups: "Группы ошибок",
    failures: "Ошибки запуска",
    error: "Текст ошибки",
    config: "Конфигурация",
    platform_versions: "Платформа",
    count: "Отчётов",
    users: "Пользователей",
    machines: "Компьютеров",
    first_seen: "Впервые",
    last_seen: "Последний раз",
    per_hour: "По часам (24 ч)",
    mark: "Отметка",
    no_groups: "Отчётов пока нет.",
    reports: "Отчёты",
    time: "Время",
    machine: "Компьютер",
    os: "ОС",
    platform: "Платформа",
    description: "Описание пользователя",
    screenshot: "Снимок экрана",
    files: "Файлы",
    archive: "Исходный архив",
    open: "Открыть",
    note: "Примечание",
    save: "Сохранить",
    state_none: "нет",
    state_known: "известная",
    state_fixed: "исправлена",
    marked_by: "отметил",
    failures_title: "Ошибки запуска по минутам за 24 ч",
    failures_total: "Всего",
    failures_peak: "Пик в минуту",
    minute: "Минута (UTC)",
    events: "Событий",
    latest_failures: "Последние события",
    by_base: "По адресам баз",
    base: "База",
    root_document: "(общий адрес)",
    client: "Клиент",
    not_found: "Не найдено.",
    refused: "Запрос отклонён: обновите страницу и повторите.",
    store_error: "Хранилище отчётов не ответило; подробности в журнале сервиса.",
    report: "Отчёт",
    back: "Назад",
    no_text: "(без текста ошибки)",
    forwarding: "Пересылка",
    forward_pending: "Ожидают отправки",
    forward_retrying: "из них с ошибками",
    forward_delivered: "Доставлено",
    forward_failed: "Не доставлено (отказ)",
    forward_problems: "Неудачные отправки",
    forward_no_problems: "Неудачных отправок нет.",
    forward_target: "Куда",
    forward_kind: "Что",
    forward_group: "Группа",
    forward_attempts: "Попыток",
    forward_last_error: "Последняя ошибка",
    forward_next: "Следующая попытка",
    forward_given_up: "прекращено",
    kind_report: "отчёт",
    kind_new_group: "новая группа",
    kind_threshold: "порог отчётов",
};

static EN: Texts = Texts {
    title: "v8help — error reports",
    login_title: "Support console login",
    user: "User",
    password: "Password",
    log_in: "Log in",
    log_out: "Log out",
    login_failed: "Wrong user name or password.",
    too_many: "Too many failed logins. Try again later.",
    groups: "Error groups",
    failures: "Startup errors",
    error: "Error text",
    config: "Configuration",
    platform_versions: "Platform",
    count: "Reports",
    users: "Users",
    machines: "Machines",
    first_seen: "First seen",
    last_seen: "Last seen",
    per_hour: "Per hour (24 h)",
    mark: "Mark",
    no_groups: "No reports yet.",
    reports: "Reports",
    time: "Time",
    machine: "Machine",
    os: "OS",
    platform: "Platform",
    description: "User's description",
    screenshot: "Screenshot",
    files: "Files",
    archive: "Original archive",
    open: "Open",
    note: "Note",
    save: "Save",
    state_none: "none",
    state_known: "known",
    state_fixed: "fixed",
    marked_by: "marked by",
    failures_title: "Startup errors per minute, last 24 h",
    failures_total: "Total",
    failures_peak: "Peak per minute",
    minute: "Minute (UTC)",
    events: "Events",
    latest_failures: "Latest events",
    by_base: "By base address",
    base: "Base",
    root_document: "(root address)",
    client: "Client",
    not_found: "Not found.",
    refused: "Request refused: reload the page and try again.",
    store_error: "The reports store did not answer; the service log has details.",
    report: "Report",
    back: "Back",
    no_text: "(no error text)",
    forwarding: "Forwarding",
    forward_pending: "Waiting to be sent",
    forward_retrying: "of which failed before",
    forward_delivered: "Delivered",
    forward_failed: "Not delivered (given up)",
    forward_problems: "Failed deliveries",
    forward_no_problems: "No failed deliveries.",
    forward_target: "To",
    forward_kind: "What",
    forward_group: "Group",
    forward_attempts: "Attempts",
    forward_last_error: "Last error",
    forward_next: "Next attempt",
    forward_given_up: "given up",
    kind_report: "report",
    kind_new_group: "new group",
    kind_threshold: "report threshold",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_follows_the_browser_with_russian_as_default() {
        assert_eq!(Lang::from_accept(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::from_accept(Some("ru-RU,ru;q=0.9,en;q=0.8")), Lang::Ru);
        assert_eq!(Lang::from_accept(Some("de-DE,en;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept(Some("de")), Lang::Ru);
        assert_eq!(Lang::from_accept(None), Lang::Ru);
    }
}
