//! The console's HTML, from maud templates: every value is escaped by the template, so a
//! report's text (user names, error texts, file names — all from untrusted clients) can
//! only ever be text. No inline script or style anywhere: the CSP forbids both; the bar
//! charts are SVG whose sizes are attributes.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::i18n::{Lang, Texts};
use crate::store::{
    GroupSummary, Mark, MarkState, OutboxItem, OutboxKind, OutboxStats, ReportDetail, ReportFields, ReportSummary,
};

/// The console's stylesheet, served at `/console.css`.
pub(crate) const CSS: &str = include_str!("../../web/console.css");

/// Who is logged in and the CSRF token their forms carry.
pub(crate) struct Viewer<'a> {
    /// The console user.
    pub user: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn layout(lang: Lang, title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    let t = lang.t();
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " — " (t.title) }
                link rel="stylesheet" href="/console.css";
            }
            body {
                header {
                    strong { "v8help" }
                    @if let Some(v) = viewer {
                        nav {
                            a href="/" { (t.groups) }
                            a href="/failures" { (t.failures) }
                            a href="/forwarding" { (t.forwarding) }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            span.who { (v.user) }
                            button type="submit" { (t.log_out) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login form, with an optional problem line above it.
pub(crate) fn login(lang: Lang, problem: Option<&str>, name: &str) -> Markup {
    let t = lang.t();
    layout(
        lang,
        t.login_title,
        None,
        html! {
            h1 { (t.login_title) }
            @if let Some(p) = problem { p.problem role="alert" { (p) } }
            form.login method="post" action="/login" {
                label { (t.user) input name="user" autocomplete="username" required value=(name); }
                label { (t.password) input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { (t.log_in) }
            }
        },
    )
}

/// A small bar chart of `counts` (oldest first) as inline SVG: one bar per number.
pub(crate) fn bars(counts: &[u32], label: &str) -> Markup {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let n = counts.len().max(1);
    let height = 24u32;
    html! {
        svg.bars viewBox=(format!("0 0 {n} {height}")) preserveAspectRatio="none" role="img" aria-label=(label) {
            @for (i, &c) in counts.iter().enumerate() {
                @if c > 0 {
                    @let h = (c * height).div_ceil(max);
                    rect x=(i) y=(height - h) width="0.8" height=(h) { title { (c) } }
                }
            }
        }
    }
}

/// The word for a group's mark state.
fn state_text(t: &Texts, mark: Option<&Mark>) -> &'static str {
    match mark.map(|m| m.state) {
        None => t.state_none,
        Some(MarkState::Known) => t.state_known,
        Some(MarkState::Fixed) => t.state_fixed,
    }
}

fn state_class(mark: Option<&Mark>) -> &'static str {
    mark.map_or("state none", |m| match m.state {
        MarkState::Known => "state known",
        MarkState::Fixed => "state fixed",
    })
}

/// The URL of a group's page (its key, which clients chose, goes in the query, encoded).
pub(crate) fn group_url(key: &str) -> String {
    format!(
        "/group?key={}",
        form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>()
    )
}

fn configs(g: &GroupSummary) -> String {
    g.configs
        .iter()
        .map(|c| format!("{} {}", c.name, c.version).trim().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn title<'a>(t: &'a Texts, g: &'a GroupSummary) -> &'a str {
    g.title.as_deref().filter(|s| !s.trim().is_empty()).unwrap_or(t.no_text)
}

fn field(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// Platform type, application and version of a report, as one line.
fn platform(f: &ReportFields) -> String {
    [&f.platform_type, &f.app_name, &f.app_version]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The groups page: each group with its hourly counts of the last 24 h.
pub(crate) fn groups(lang: Lang, viewer: &Viewer<'_>, groups: &[(GroupSummary, Vec<u32>)]) -> Markup {
    let t = lang.t();
    layout(
        lang,
        t.groups,
        Some(viewer),
        html! {
            h1 { (t.groups) }
            @if groups.is_empty() {
                p.empty { (t.no_groups) }
            } @else {
                table.groups {
                    thead { tr {
                        th { (t.error) } th { (t.config) } th { (t.platform_versions) } th.num { (t.count) }
                        th.num { (t.users) } th { (t.first_seen) } th { (t.last_seen) } th { (t.per_hour) } th { (t.mark) }
                    } }
                    tbody {
                        @for (g, per_hour) in groups {
                            tr.group {
                                td.error { a href=(group_url(&g.key)) { (title(t, g)) } }
                                td { (configs(g)) }
                                td { (g.platforms.join(", ")) }
                                td.num.count { (g.count) }
                                td.num { (g.users) }
                                td.time { (time(g.first_seen)) }
                                td.time { (time(g.last_seen)) }
                                td { (bars(per_hour, t.per_hour)) }
                                td.mark { span class=(state_class(g.mark.as_ref())) { (state_text(t, g.mark.as_ref())) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A group's page: its summary, the mark form and its reports.
pub(crate) fn group(
    lang: Lang,
    viewer: &Viewer<'_>,
    g: &GroupSummary,
    per_hour: &[u32],
    reports: &[ReportSummary],
) -> Markup {
    let t = lang.t();
    let mark = g.mark.as_ref();
    layout(
        lang,
        title(t, g),
        Some(viewer),
        html! {
            p { a href="/" { "← " (t.groups) } }
            h1.error { (title(t, g)) }
            dl.summary {
                dt { (t.config) } dd { (configs(g)) }
                dt { (t.platform_versions) } dd { (g.platforms.join(", ")) }
                dt { (t.count) } dd.count { (g.count) }
                dt { (t.users) } dd { (g.users) }
                dt { (t.machines) } dd { (g.machines) }
                dt { (t.first_seen) } dd { (time(g.first_seen)) }
                dt { (t.last_seen) } dd { (time(g.last_seen)) }
                dt { (t.per_hour) } dd { (bars(per_hour, t.per_hour)) }
            }
            form.mark method="post" action="/group/mark" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="key" value=(g.key);
                fieldset {
                    legend { (t.mark) ": " span.current class=(state_class(mark)) { (state_text(t, mark)) } }
                    @for (value, text) in [("none", t.state_none), ("known", t.state_known), ("fixed", t.state_fixed)] {
                        label.radio {
                            input type="radio" name="state" value=(value) checked[mark.map_or("none", |m| m.state.as_str()) == value];
                            (text)
                        }
                    }
                    label { (t.note) textarea name="note" rows="3" maxlength="2000" { (mark.map_or("", |m| m.note.as_str())) } }
                    @if let Some(m) = mark {
                        p.marked { (t.marked_by) " " (m.by) ", " (time(m.at)) }
                    }
                    button type="submit" { (t.save) }
                }
            }
            h2 { (t.reports) }
            table.reports {
                thead { tr {
                    th { (t.time) } th { (t.user) } th { (t.machine) } th { (t.os) } th { (t.platform) } th { (t.description) } th {}
                } }
                tbody {
                    @for r in reports {
                        tr.report {
                            td.time { (time(r.received_at)) }
                            td.user { (field(&r.fields.user_name)) }
                            td { (field(&r.fields.client_id)) }
                            td { (field(&r.fields.os_version)) }
                            td { (platform(&r.fields)) }
                            td.description { (field(&r.fields.user_description)) }
                            td { a.open href=(format!("/reports/{}", r.id)) { (t.open) } }
                        }
                    }
                }
            }
        },
    )
}

/// One report: its fields, the screenshot inline, the files and the archive to download.
pub(crate) fn report(lang: Lang, viewer: &Viewer<'_>, r: &ReportDetail, has_screenshot: bool) -> Markup {
    let t = lang.t();
    let s = &r.summary;
    let f = &s.fields;
    layout(
        lang,
        t.report,
        Some(viewer),
        html! {
            p { a href=(group_url(&s.group_key)) { "← " (t.back) } }
            h1 { (t.report) " " (s.id) }
            dl.summary {
                dt { (t.error) } dd.error { (field(&f.error_text)) }
                dt { (t.time) } dd { (time(s.received_at)) @if let Some(rt) = &f.report_time { " (" (rt) ")" } }
                dt { (t.user) } dd.user { (field(&f.user_name)) }
                dt { (t.machine) } dd { (field(&f.client_id)) }
                dt { (t.os) } dd { (field(&f.os_version)) }
                dt { (t.platform) } dd { (platform(f)) }
                dt { (t.config) } dd { (field(&f.config_name)) " " (field(&f.config_version)) }
                dt { (t.description) } dd.description { (field(&f.user_description)) }
            }
            @if has_screenshot {
                h2 { (t.screenshot) }
                img.screenshot src=(format!("/reports/{}/screenshot", s.id)) alt=(t.screenshot);
            }
            h2 { (t.files) }
            ul.files {
                @for (i, file) in r.files.iter().enumerate() {
                    li { a href=(format!("/reports/{}/files/{i}", s.id)) { (file.name) } " (" (file.size) " B)" }
                }
                li { a.archive href=(format!("/reports/{}/archive", s.id)) { (t.archive) } " (" (s.archive_size) " B)" }
            }
        },
    )
}

/// The login failures page: per minute over the last 24 h, the total and the peak, the
/// busiest minutes, and the latest events with the base address each client used
/// (`/NAME/`, or the root address).
pub(crate) fn failures(
    lang: Lang,
    viewer: &Viewer<'_>,
    per_minute: &[u32],
    start: DateTime<Utc>,
    latest: &[crate::store::LoginFailure],
) -> Markup {
    let t = lang.t();
    let total: u64 = per_minute.iter().map(|&c| u64::from(c)).sum();
    let peak = per_minute.iter().copied().max().unwrap_or(0);
    let mut busiest: Vec<(usize, u32)> = per_minute.iter().copied().enumerate().filter(|(_, c)| *c > 0).collect();
    busiest.sort_by_key(|&(i, c)| (std::cmp::Reverse(c), std::cmp::Reverse(i)));
    busiest.truncate(20);
    layout(
        lang,
        t.failures_title,
        Some(viewer),
        html! {
            h1 { (t.failures_title) }
            p.totals { (t.failures_total) ": " strong.total { (total) } " · " (t.failures_peak) ": " strong { (peak) } }
            div.wide { (bars(per_minute, t.failures_title)) }
            @if !busiest.is_empty() {
                table.minutes {
                    thead { tr { th { (t.minute) } th.num { (t.events) } } }
                    tbody {
                        @for (i, c) in busiest {
                            tr { td.time { ((start + chrono::Duration::minutes(i as i64)).format("%Y-%m-%d %H:%M")) } td.num { (c) } }
                        }
                    }
                }
            }
            @if !latest.is_empty() {
                h2 { (t.by_base) }
                table.bases {
                    thead { tr { th { (t.base) } th.num { (t.events) } } }
                    tbody {
                        @for (base, c) in count_by_base(latest) {
                            tr { td.base { (base.unwrap_or(t.root_document)) } td.num { (c) } }
                        }
                    }
                }
                h2 { (t.latest_failures) }
                table.latest {
                    thead { tr { th { (t.time) } th { (t.base) } th { (t.client) } } }
                    tbody {
                        @for e in latest {
                            tr {
                                td.time { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                                td.base { (e.base.as_deref().unwrap_or(t.root_document)) }
                                td { (e.client_addr.as_deref().unwrap_or("")) " " (e.user_agent.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Events per base among `events`, most first (`None`: the root address).
fn count_by_base(events: &[crate::store::LoginFailure]) -> Vec<(Option<&str>, usize)> {
    let mut counts: Vec<(Option<&str>, usize)> = Vec::new();
    for e in events {
        match counts.iter_mut().find(|(b, _)| *b == e.base.as_deref()) {
            Some((_, n)) => *n += 1,
            None => counts.push((e.base.as_deref(), 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts
}

/// A short page saying something went wrong (404, 403, 500).
pub(crate) fn problem(lang: Lang, viewer: Option<&Viewer<'_>>, text: &str) -> Markup {
    layout(lang, text, viewer, html! { p.problem role="alert" { (text) } })
}

/// The forwarding page: the outbox by state and the deliveries whose last attempt failed,
/// with the error each target answered (text from outside: escaped like everything else).
pub(crate) fn forwarding(lang: Lang, viewer: &Viewer<'_>, stats: &OutboxStats, problems: &[OutboxItem]) -> Markup {
    let t = lang.t();
    let kind = |k: OutboxKind| match k {
        OutboxKind::Report => t.kind_report,
        OutboxKind::NewGroup => t.kind_new_group,
        OutboxKind::Threshold => t.kind_threshold,
    };
    layout(
        lang,
        t.forwarding,
        Some(viewer),
        html! {
            h1 { (t.forwarding) }
            dl.summary.outbox {
                dt { (t.forward_pending) } dd.pending { (stats.pending) " (" (t.forward_retrying) " " (stats.retrying) ")" }
                dt { (t.forward_delivered) } dd.delivered { (stats.delivered) }
                dt { (t.forward_failed) } dd.failed { (stats.failed) }
            }
            h2 { (t.forward_problems) }
            @if problems.is_empty() {
                p.empty { (t.forward_no_problems) }
            } @else {
                table.problems {
                    thead { tr {
                        th { (t.forward_target) } th { (t.forward_kind) } th { (t.forward_group) } th.num { (t.forward_attempts) }
                        th { (t.forward_last_error) } th { (t.forward_next) }
                    } }
                    tbody {
                        @for p in problems {
                            tr.undelivered {
                                td.target { (p.target) }
                                td { (kind(p.kind)) @if let Some(id) = p.report_id { " " a href=(format!("/reports/{id}")) { "#" (id) } } }
                                td { a href=(group_url(&p.group_key)) { (p.group_key) } }
                                td.num { (p.attempts) }
                                td.error { (p.last_error.as_deref().unwrap_or("")) }
                                td.time {
                                    @match p.failed_at {
                                        Some(at) => { (t.forward_given_up) " " (time(at)) }
                                        None => { (time(p.next_at)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ArchiveFile, ConfigSeen};

    const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";

    fn group_summary() -> GroupSummary {
        GroupSummary {
            key: "text:</a><script>".into(),
            title: Some(HOSTILE.into()),
            count: 3,
            users: 2,
            machines: 2,
            first_seen: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            last_seen: DateTime::from_timestamp(1_800_003_600, 0).unwrap(),
            configs: vec![ConfigSeen {
                name: HOSTILE.into(),
                version: "3.0.1".into(),
            }],
            platforms: vec!["8.3.18.1128".into()],
            mark: Some(Mark {
                state: MarkState::Known,
                note: HOSTILE.into(),
                by: "anna".into(),
                at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            }),
        }
    }

    fn assert_inert(html: &str) {
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    }

    #[test]
    fn hostile_report_text_is_escaped_on_every_page() {
        let viewer = Viewer {
            user: "anna",
            csrf: "tok",
        };
        let g = group_summary();
        let hostile = Some(HOSTILE.to_string());
        let summary = ReportSummary {
            id: 1,
            received_at: g.first_seen,
            group_key: g.key.clone(),
            fields: ReportFields {
                user_name: hostile.clone(),
                client_id: hostile.clone(),
                os_version: hostile.clone(),
                platform_type: hostile.clone(),
                user_description: hostile.clone(),
                error_text: hostile.clone(),
                ..ReportFields::default()
            },
            archive_size: 10,
        };
        let detail = ReportDetail {
            summary: summary.clone(),
            client_addr: None,
            report_json: serde_json::Value::Null,
            files: vec![ArchiveFile {
                name: HOSTILE.into(),
                size: 1,
            }],
        };
        let per_hour: Vec<u32> = (0..24).collect();
        assert_inert(&groups(Lang::En, &viewer, &[(g.clone(), per_hour.clone())]).into_string());
        assert_inert(&group(Lang::Ru, &viewer, &g, &per_hour, std::slice::from_ref(&summary)).into_string());
        assert_inert(&report(Lang::En, &viewer, &detail, true).into_string());
        assert_inert(&login(Lang::En, None, HOSTILE).into_string());
    }

    #[test]
    fn group_keys_are_encoded_in_urls() {
        assert_eq!(group_url("sys:a/b&c=d"), "/group?key=sys%3Aa%2Fb%26c%3Dd");
    }

    #[test]
    fn bars_scale_to_the_largest_count() {
        let svg = bars(&[0, 5, 10], "x").into_string();
        assert!(svg.contains("height=\"12\""), "{svg}");
        assert!(svg.contains("height=\"24\""), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}
