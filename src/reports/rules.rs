//! The getInfo rules (`--reports-rules`, TOML): which error reports the clients should send,
//! the message they show, and the dump type, by configuration, platform, stack hashes and
//! error categories.
//!
//! The file is parsed and validated whole, every answer is rendered to its final bytes per
//! language, and only then swapped in ([`LiveRules`]); a bad edit is logged with its line and
//! field and the last good rules stay. Without a file every report is asked for.
//!
//! ```toml
//! [default]
//! send = true
//! dump_type = 0
//! message = { ru = "Отчёт будет отправлен в поддержку.", en = "The report goes to support." }
//!
//! [[rule]]
//! name = "old platform"
//! app_version = ["8.3.17", "8.3.18"]   # prefixes
//! send = false
//! message = { ru = "Обновите платформу.", default = "Please update the platform." }
//! ```
//!
//! (Over 600 lines: the rules file's parser, its validation with line and field, and the
//! matcher are one format; roughly half the file is the unit tests of its error messages.)

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::watch::{After, Cause, Now, Reloadable, Scope, Stuck};

/// The interface languages messages are written in; a message may also have a `default`.
pub(super) const LANGUAGES: [&str; 5] = ["ru", "kk", "lv", "hy", "en"];
/// Largest rules file read.
const MAX_RULES_BYTES: u64 = 1024 * 1024;
/// Longest user message accepted, in characters.
const MAX_MESSAGE_CHARS: usize = 4000;

/// Why a rules file was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RulesError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {message}")]
    Read { path: PathBuf, message: String },
    /// Not valid TOML, or a key or value the rules do not take.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the field.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    default: Option<AnswerSpec>,
    #[serde(default)]
    rule: Vec<toml::Spanned<RuleSpec>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerSpec {
    send: Option<bool>,
    dump_type: Option<DumpType>,
    message: Option<Messages>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Option<String>,
    config_name: Option<OneOrMany>,
    config_version: Option<OneOrMany>,
    app_name: Option<OneOrMany>,
    app_version: Option<OneOrMany>,
    platform_type: Option<OneOrMany>,
    app_stack_hash: Option<OneOrMany>,
    client_stack_hash: Option<OneOrMany>,
    server_stack_hash: Option<OneOrMany>,
    error_categories: Option<OneOrMany>,
    send: Option<bool>,
    dump_type: Option<DumpType>,
    message: Option<Messages>,
}

/// `dump_type = 0` or `dump_type = "0"`: peers send either, so it is answered as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DumpType {
    Number(i64),
    Text(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Messages {
    ru: Option<String>,
    kk: Option<String>,
    lv: Option<String>,
    hy: Option<String>,
    en: Option<String>,
    default: Option<String>,
}

impl Messages {
    fn get(&self, lang: usize) -> Option<&String> {
        [&self.ru, &self.kk, &self.lv, &self.hy, &self.en, &self.default][lang].as_ref()
    }

    /// The text for language `lang` (an index into [`LANGUAGES`], or 5 for unknown ones):
    /// that language, else `default`, else English, else Russian.
    fn pick(&self, lang: usize) -> &str {
        self.get(lang)
            .or(self.default.as_ref())
            .or(self.en.as_ref())
            .or(self.ru.as_ref())
            .map_or("", String::as_str)
    }
}

/// A rendered answer: whether the report is wanted, and the body per language (the five of
/// [`LANGUAGES`], then the one for any other language).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// `needSendReport`.
    pub send: bool,
    bodies: [Bytes; 6],
}

impl Answer {
    /// The body for a client whose `platformInterfaceLanguageCode` is `lang`.
    pub(crate) fn body(&self, lang: Option<&str>) -> Bytes {
        self.bodies[language_index(lang)].clone()
    }

    /// Renders `{"needSendReport":…,"userMessage":…,"dumpType":…}` for every language.
    fn render(send: bool, dump: &DumpType, messages: &Messages) -> Answer {
        let dump = match dump {
            DumpType::Number(n) => Value::from(*n),
            DumpType::Text(s) => Value::from(s.as_str()),
        };
        let bodies = std::array::from_fn(|lang| {
            let v = serde_json::json!({"needSendReport": send, "userMessage": messages.pick(lang), "dumpType": dump});
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        });
        Answer { send, bodies }
    }

    /// The answer for a group support marked "known": no upload, the note as the message.
    pub(crate) fn known(note: &str) -> Answer {
        let messages = Messages {
            default: Some(note.to_string()),
            ..Messages::default()
        };
        Answer::render(false, &DumpType::Number(0), &messages)
    }
}

/// 0–4 for ru, kk, lv, hy, en (`ru_RU` and `RU` included), 5 for anything else.
fn language_index(lang: Option<&str>) -> usize {
    let Some(lang) = lang else { return 5 };
    let primary = lang.split(['_', '-']).next().unwrap_or("");
    LANGUAGES
        .iter()
        .position(|l| l.eq_ignore_ascii_case(primary))
        .unwrap_or(5)
}

/// What getInfo tells about the client and its error (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Request {
    /// `configName`.
    pub config_name: Option<String>,
    /// `configVersion`.
    pub config_version: Option<String>,
    /// `appName`.
    pub app_name: Option<String>,
    /// `appVersion`.
    pub app_version: Option<String>,
    /// `platformType`.
    pub platform_type: Option<String>,
    /// `appStackHash`.
    pub app_stack_hash: Option<String>,
    /// `clientStackHash`.
    pub client_stack_hash: Option<String>,
    /// `serverStackHash`.
    pub server_stack_hash: Option<String>,
    /// `errorCategories`.
    pub error_categories: Vec<String>,
    /// `platformInterfaceLanguageCode`.
    pub language: Option<String>,
}

impl Request {
    /// Reads a getInfo body tolerantly (BOM, missing or odd fields); `None` if it is not a
    /// JSON object.
    pub(crate) fn parse(body: &[u8]) -> Option<Request> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let v: Value = serde_json::from_slice(body).ok()?;
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        v.is_object().then(|| Request {
            config_name: s("configName"),
            config_version: s("configVersion"),
            app_name: s("appName"),
            app_version: s("appVersion"),
            platform_type: s("platformType"),
            app_stack_hash: s("appStackHash"),
            client_stack_hash: s("clientStackHash"),
            server_stack_hash: s("serverStackHash"),
            error_categories: v
                .get("errorCategories")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            language: s("platformInterfaceLanguageCode"),
        })
    }
}

/// One condition: any of these values (lower-cased), exactly or as a prefix.
#[derive(Debug, Clone)]
struct Condition {
    values: Vec<String>,
    prefix: bool,
}

impl Condition {
    fn matches(&self, value: Option<&str>) -> bool {
        let Some(v) = value else { return false };
        let v = v.to_lowercase();
        self.values.iter().any(|c| {
            if self.prefix {
                v.starts_with(c.as_str())
            } else {
                v == *c
            }
        })
    }
}

#[derive(Debug, Clone)]
struct Rule {
    conditions: Vec<(Field, Condition)>,
    answer: Answer,
}

#[derive(Debug, Clone, Copy)]
enum Field {
    ConfigName,
    ConfigVersion,
    AppName,
    AppVersion,
    PlatformType,
    AppStackHash,
    ClientStackHash,
    ServerStackHash,
    ErrorCategories,
}

/// The parsed rules: the first rule whose conditions all hold decides, else the default.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    default: Answer,
}

impl Default for Rules {
    /// Without a rules file: send every report, with a short message.
    fn default() -> Rules {
        Rules {
            rules: Vec::new(),
            default: Answer::render(true, &DumpType::Number(0), &default_messages()),
        }
    }
}

fn default_messages() -> Messages {
    Messages {
        ru: Some("Отчёт об ошибке будет отправлен в службу поддержки. Спасибо!".into()),
        default: Some("The error report will be sent to support. Thank you!".into()),
        ..Messages::default()
    }
}

impl Rules {
    /// Parses and validates a rules file's text; `path` is only for the error.
    pub fn parse(text: &str, path: &Path) -> Result<Rules, RulesError> {
        let at = |offset: usize, message: String| {
            let before = &text[..offset.min(text.len())];
            RulesError::Invalid {
                path: path.to_path_buf(),
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
                message,
            }
        };
        let file: RulesFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at(offset, e.message().trim().replace('\n', " "))
        })?;
        let d = file.default.unwrap_or_default();
        let default_messages = d.message.unwrap_or_else(default_messages);
        let default_send = d.send.unwrap_or(true);
        let default_dump = d.dump_type.unwrap_or(DumpType::Number(0));
        check_messages(&default_messages).map_err(|m| at(0, format!("default.message: {m}")))?;
        let mut rules = Vec::new();
        for (i, spanned) in file.rule.into_iter().enumerate() {
            let offset = spanned.span().start;
            let spec = spanned.into_inner();
            let name = spec.name.clone().unwrap_or_else(|| format!("rule {}", i + 1));
            let mut conditions = Vec::new();
            let fields = [
                (Field::ConfigName, "config_name", &spec.config_name, false),
                (Field::ConfigVersion, "config_version", &spec.config_version, true),
                (Field::AppName, "app_name", &spec.app_name, false),
                (Field::AppVersion, "app_version", &spec.app_version, true),
                (Field::PlatformType, "platform_type", &spec.platform_type, false),
                (Field::AppStackHash, "app_stack_hash", &spec.app_stack_hash, false),
                (
                    Field::ClientStackHash,
                    "client_stack_hash",
                    &spec.client_stack_hash,
                    false,
                ),
                (
                    Field::ServerStackHash,
                    "server_stack_hash",
                    &spec.server_stack_hash,
                    false,
                ),
                (
                    Field::ErrorCategories,
                    "error_categories",
                    &spec.error_categories,
                    false,
                ),
            ];
            for (field, key, value, prefix) in fields {
                let values = match value {
                    None => continue,
                    Some(OneOrMany::One(v)) => vec![v.to_lowercase()],
                    Some(OneOrMany::Many(v)) => v.iter().map(|s| s.to_lowercase()).collect(),
                };
                if values.is_empty() {
                    return Err(at(offset, format!("{name}: {key} lists no values")));
                }
                conditions.push((field, Condition { values, prefix }));
            }
            let messages = spec.message.unwrap_or_else(|| default_messages.clone());
            check_messages(&messages).map_err(|m| at(offset, format!("{name}: message: {m}")))?;
            let answer = Answer::render(
                spec.send.unwrap_or(default_send),
                spec.dump_type.as_ref().unwrap_or(&default_dump),
                &messages,
            );
            rules.push(Rule { conditions, answer });
        }
        Ok(Rules {
            rules,
            default: Answer::render(default_send, &default_dump, &default_messages),
        })
    }

    /// The answer for a request.
    pub(crate) fn decide(&self, r: &Request) -> &Answer {
        self.rules
            .iter()
            .find(|rule| {
                rule.conditions.iter().all(|(field, c)| match field {
                    Field::ConfigName => c.matches(r.config_name.as_deref()),
                    Field::ConfigVersion => c.matches(r.config_version.as_deref()),
                    Field::AppName => c.matches(r.app_name.as_deref()),
                    Field::AppVersion => c.matches(r.app_version.as_deref()),
                    Field::PlatformType => c.matches(r.platform_type.as_deref()),
                    Field::AppStackHash => c.matches(r.app_stack_hash.as_deref()),
                    Field::ClientStackHash => c.matches(r.client_stack_hash.as_deref()),
                    Field::ServerStackHash => c.matches(r.server_stack_hash.as_deref()),
                    Field::ErrorCategories => r.error_categories.iter().any(|cat| c.matches(Some(cat))),
                })
            })
            .map_or(&self.default, |rule| &rule.answer)
    }

    /// How many rules there are (for the log line after a load).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (only the default answer).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn check_messages(m: &Messages) -> Result<(), String> {
    for (i, lang) in LANGUAGES.iter().chain(["default"].iter()).enumerate() {
        if let Some(text) = m.get(i)
            && text.chars().count() > MAX_MESSAGE_CHARS
        {
            return Err(format!("{lang} is longer than {MAX_MESSAGE_CHARS} characters"));
        }
    }
    Ok(())
}

/// The rules being applied, kept in step with their file.
#[derive(Debug)]
pub struct LiveRules {
    path: Option<PathBuf>,
    current: ArcSwap<Rules>,
    /// The bytes last looked at and the error they gave, so an unchanged file is not
    /// re-parsed nor its error logged again.
    last: Mutex<(Option<Vec<u8>>, Option<RulesError>)>,
}

impl LiveRules {
    /// Starts with the default rules and loads `path`, if given; a missing or bad file is
    /// logged and the defaults stay until it is fixed.
    pub fn load(path: Option<PathBuf>) -> Arc<LiveRules> {
        let live = Arc::new(LiveRules {
            path,
            current: ArcSwap::from_pointee(Rules::default()),
            last: Mutex::new((None, None)),
        });
        live.reload();
        live
    }

    /// The rules to answer with now.
    pub fn rules(&self) -> arc_swap::Guard<Arc<Rules>> {
        self.current.load()
    }

    /// The error of the last load, if the file on disk is refused.
    pub fn last_error(&self) -> Option<RulesError> {
        self.last.lock().ok().and_then(|l| l.1.clone())
    }

    /// Re-reads the file; swaps the rules in only if it parses and validates.
    pub fn reload(&self) {
        let Some(path) = &self.path else { return };
        let Ok(mut last) = self.last.lock() else { return };
        let read = std::fs::File::open(path).and_then(|f| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_RULES_BYTES), &mut bytes).map(|_| bytes)
        });
        let bytes = match read {
            Ok(b) => b,
            Err(e) => {
                let err = RulesError::Read {
                    path: path.clone(),
                    message: e.to_string(),
                };
                if last.1.as_ref() != Some(&err) {
                    tracing::error!("error-report rules not loaded, the last good ones stay: {err}");
                }
                *last = (None, Some(err));
                return;
            }
        };
        if last.0.as_deref() == Some(&bytes[..]) {
            return;
        }
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|e| RulesError::Invalid {
                path: path.clone(),
                line: 1,
                column: 1,
                message: format!("not UTF-8 text: {e}"),
            })
            .and_then(|text| Rules::parse(text, path));
        match parsed {
            Ok(rules) => {
                tracing::info!(rules = rules.len(), "error-report rules loaded from {}", path.display());
                self.current.store(Arc::new(rules));
                *last = (Some(bytes), None);
            }
            Err(err) => {
                tracing::error!("error-report rules refused, the last good ones stay: {err}");
                *last = (Some(bytes), Some(err));
            }
        }
    }

    /// Keeps the rules in step with their file until `shutdown`, with the one reload loop
    /// ([`crate::watch::keep`]): on every change event, on `force` (SIGHUP) and every
    /// `recheck` for events the OS dropped.
    pub async fn watch(
        self: Arc<Self>,
        recheck: Duration,
        force: Arc<Notify>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        if self.path.is_none() {
            return;
        }
        let stop = tokio_util::sync::CancellationToken::new();
        let stopping = async {
            shutdown.await;
            stop.cancel();
        };
        tokio::join!(stopping, crate::watch::keep(self, recheck, force, stop.clone()));
    }
}

/// The rules file as a target of the reload loop: every cause re-reads it.
impl Reloadable for LiveRules {
    fn what(&self) -> &'static str {
        "error-report rules"
    }

    fn scope(&self) -> Scope {
        Scope::Files(self.path.iter().cloned().collect())
    }

    fn reload(&self, _cause: Cause, _now: Now) -> After {
        LiveRules::reload(self);
        After::default()
    }

    fn stuck(&self, stuck: Stuck) {
        if let (Stuck::TimedOut(after), Some(path)) = (stuck, &self.path) {
            tracing::error!(
                "{}: reading the error-report rules took more than {} s (a hung network mount?); the last good ones stay",
                path.display(),
                after.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Request {
        Request::parse(json.as_bytes()).unwrap()
    }

    fn message(a: &Answer, lang: Option<&str>) -> Value {
        serde_json::from_slice(&a.body(lang)).unwrap()
    }

    #[test]
    fn without_a_file_every_report_is_asked_for_with_a_short_message() {
        let rules = Rules::default();
        let a = rules.decide(&req("{}"));
        assert!(a.send);
        let ru = message(a, Some("ru"));
        assert_eq!(ru["needSendReport"], true);
        assert!(ru["userMessage"].as_str().unwrap().contains("поддержки"));
        assert!(
            message(a, Some("en"))["userMessage"]
                .as_str()
                .unwrap()
                .contains("support")
        );
    }

    #[test]
    fn the_first_matching_rule_decides_with_prefixes_and_lists() {
        let text = r#"
[default]
send = true
dump_type = "1"

[[rule]]
name = "old platform"
app_version = ["8.3.17", "8.3.18"]
send = false
message = { ru = "Обновите платформу", kk = "Платформаны жаңартыңыз", default = "Update the platform" }

[[rule]]
error_categories = "ScriptCompileError"
dump_type = 2
"#;
        let rules = Rules::parse(text, Path::new("rules.toml")).unwrap();
        let old = rules.decide(&req(
            r#"{"appVersion":"8.3.18.1128","platformInterfaceLanguageCode":"kk"}"#,
        ));
        assert!(!old.send);
        assert_eq!(message(old, Some("kk"))["userMessage"], "Платформаны жаңартыңыз");
        assert_eq!(message(old, Some("lv"))["userMessage"], "Update the platform");
        assert_eq!(message(old, Some("lv"))["dumpType"], "1");
        let compile = rules.decide(&req(
            r#"{"appVersion":"8.3.24.1","errorCategories":["ScriptCompileError"]}"#,
        ));
        assert!(compile.send);
        assert_eq!(message(compile, None)["dumpType"], 2);
        let unmatched = rules.decide(&req(r#"{"appVersion":"8.3.24.1"}"#));
        assert!(
            std::ptr::eq(unmatched, &rules.default),
            "no rule matches: the default answers"
        );
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let text = "[default]\nsend = true\n\n[[rule]]\nname = \"x\"\nconfg_name = \"typo\"\n";
        let err = Rules::parse(text, Path::new("rules.toml")).unwrap_err();
        match &err {
            RulesError::Invalid { line, message, .. } => {
                assert_eq!(*line, 6, "{err}");
                assert!(message.contains("confg_name"), "{err}");
            }
            other => panic!("{other:?}"),
        }
        let err = Rules::parse("[[rule]]\nsend = \"yes\"\n", Path::new("r.toml")).unwrap_err();
        assert!(err.to_string().starts_with("r.toml:2:"), "{err}");
        let err = Rules::parse("[[rule]]\nname = \"empty\"\napp_name = []\n", Path::new("r.toml")).unwrap_err();
        assert!(err.to_string().contains("app_name lists no values"), "{err}");
    }

    #[test]
    fn a_bad_edit_keeps_the_last_good_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "[default]\nsend = false\n").unwrap();
        let live = LiveRules::load(Some(path.clone()));
        assert!(!live.rules().decide(&Request::default()).send);
        std::fs::write(&path, "[default]\nsend = maybe\n").unwrap();
        live.reload();
        assert!(!live.rules().decide(&Request::default()).send);
        assert!(live.last_error().unwrap().to_string().contains("rules.toml:2:"));
        std::fs::write(&path, "[default]\nsend = true\n").unwrap();
        live.reload();
        assert!(live.rules().decide(&Request::default()).send);
        assert_eq!(live.last_error(), None);
    }
}
