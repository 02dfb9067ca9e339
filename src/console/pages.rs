//! The console's HTML, from maud templates: every value is escaped by the template, so a
//! report's text (user names, error texts, file names — all from untrusted clients) can
//! only ever be text. No inline script or style anywhere: the CSP forbids both; the bar
//! charts are SVG whose sizes are attributes.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::data::{GroupView, MarkState, ReportView};
use super::i18n::{Lang, Texts};

/// The console's stylesheet, served at `/console.css`.
pub const CSS: &str = include_str!("../../web/console.css");

/// Who is logged in and the CSRF token their forms carry.
pub struct Viewer<'a> {
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
                meta name="referrer" content="no-referrer";
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
pub fn login(lang: Lang, problem: Option<&str>, name: &str) -> Markup {
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
pub fn bars(counts: &[u32], label: &str) -> Markup {
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

fn state_text(t: &Texts, state: MarkState) -> &'static str {
    match state {
        MarkState::None => t.state_none,
        MarkState::Known => t.state_known,
        MarkState::Fixed => t.state_fixed,
    }
}

/// The groups page.
pub fn groups(lang: Lang, viewer: &Viewer<'_>, groups: &[GroupView]) -> Markup {
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
                        @for g in groups {
                            tr data-group=(g.id) {
                                td.error { a href=(format!("/groups/{}", g.id)) { (g.error_text) } }
                                td { @for (i, name) in g.config_names.iter().enumerate() {
                                        @if i > 0 { br; } (name) }
                                     @if !g.config_versions.is_empty() { " " span.version { (g.config_versions.join(", ")) } } }
                                td { (g.platform_versions.join(", ")) }
                                td.num.count { (g.count) }
                                td.num { (g.users) }
                                td.time { (time(g.first_seen)) }
                                td.time { (time(g.last_seen)) }
                                td { (bars(&g.per_hour, t.per_hour)) }
                                td.mark { span class=(format!("state {}", g.mark.state.as_str())) { (state_text(t, g.mark.state)) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A group's page: its summary, the mark form and its reports.
pub fn group(lang: Lang, viewer: &Viewer<'_>, g: &GroupView, reports: &[ReportView]) -> Markup {
    let t = lang.t();
    layout(
        lang,
        &g.error_text,
        Some(viewer),
        html! {
            p { a href="/" { "← " (t.groups) } }
            h1.error { (g.error_text) }
            dl.summary {
                dt { (t.config) } dd { (g.config_names.join(", ")) " " (g.config_versions.join(", ")) }
                dt { (t.platform_versions) } dd { (g.platform_versions.join(", ")) }
                dt { (t.count) } dd.count { (g.count) }
                dt { (t.users) } dd { (g.users) }
                dt { (t.machines) } dd { (g.machines) }
                dt { (t.first_seen) } dd { (time(g.first_seen)) }
                dt { (t.last_seen) } dd { (time(g.last_seen)) }
                dt { (t.per_hour) } dd { (bars(&g.per_hour, t.per_hour)) }
            }
            form.mark method="post" action=(format!("/groups/{}/mark", g.id)) {
                input type="hidden" name="csrf" value=(viewer.csrf);
                fieldset {
                    legend { (t.mark) }
                    @for state in [MarkState::None, MarkState::Known, MarkState::Fixed] {
                        label.radio {
                            input type="radio" name="state" value=(state.as_str()) checked[g.mark.state == state];
                            (state_text(t, state))
                        }
                    }
                    label { (t.note) textarea name="note" rows="3" maxlength="2000" { (g.mark.note) } }
                    @if let Some(at) = g.mark.at {
                        p.marked { (t.marked_by) " " (g.mark.by) ", " (time(at)) }
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
                        tr data-report=(r.id) {
                            td.time { (time(r.time)) }
                            td.user { (r.user) }
                            td { (r.machine) }
                            td { (r.os) }
                            td { (r.platform) }
                            td.description { (r.description) }
                            td { a.open href=(format!("/reports/{}", r.id)) { (t.open) } }
                        }
                    }
                }
            }
        },
    )
}

/// One report: its fields, the screenshot inline, the files and the archive to download.
pub fn report(lang: Lang, viewer: &Viewer<'_>, r: &ReportView) -> Markup {
    let t = lang.t();
    layout(
        lang,
        t.report,
        Some(viewer),
        html! {
            p { a href=(format!("/groups/{}", r.group_id)) { "← " (t.back) } }
            h1 { (t.report) " " (r.id) }
            dl.summary {
                dt { (t.error) } dd.error { (r.error_text) }
                dt { (t.time) } dd { (time(r.time)) }
                dt { (t.user) } dd.user { (r.user) }
                dt { (t.machine) } dd { (r.machine) }
                dt { (t.os) } dd { (r.os) }
                dt { (t.platform) } dd { (r.platform) }
                dt { (t.description) } dd.description { (r.description) }
            }
            @if r.has_screenshot {
                h2 { (t.screenshot) }
                img.screenshot src=(format!("/reports/{}/screenshot", r.id)) alt=(t.screenshot);
            }
            h2 { (t.files) }
            ul.files {
                @for f in &r.files {
                    li { a href=(format!("/reports/{}/files/{}", r.id, f.index)) { (f.name) } " (" (f.size) " B)" }
                }
                li { a.archive href=(format!("/reports/{}/archive", r.id)) { (t.archive) } " (" (r.archive_size) " B)" }
            }
        },
    )
}

/// The login failures page: per minute over the last 24 h, the total and the peak, and
/// the busiest minutes.
pub fn failures(lang: Lang, viewer: &Viewer<'_>, per_minute: &[u32], now: DateTime<Utc>) -> Markup {
    let t = lang.t();
    let total: u64 = per_minute.iter().map(|&c| u64::from(c)).sum();
    let peak = per_minute.iter().copied().max().unwrap_or(0);
    let start = now - chrono::Duration::minutes(per_minute.len() as i64);
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
        },
    )
}

/// A short page saying something went wrong (404, 403, 500).
pub fn problem(lang: Lang, viewer: Option<&Viewer<'_>>, text: &str) -> Markup {
    layout(lang, text, viewer, html! { p.problem role="alert" { (text) } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::data::{FileView, MarkView};

    const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";

    fn group_view() -> GroupView {
        GroupView {
            id: 7,
            error_text: HOSTILE.into(),
            config_names: vec![HOSTILE.into()],
            config_versions: vec!["3.0.1".into()],
            platform_versions: vec!["8.3.18.1128".into()],
            count: 3,
            users: 2,
            machines: 2,
            first_seen: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            last_seen: DateTime::from_timestamp(1_800_003_600, 0).unwrap(),
            per_hour: (0..24).collect(),
            mark: MarkView {
                state: MarkState::Known,
                note: HOSTILE.into(),
                by: "anna".into(),
                at: DateTime::from_timestamp(1_800_000_000, 0),
            },
        }
    }

    fn assert_inert(html: &str) {
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    }

    #[test]
    fn hostile_report_text_is_escaped_on_every_page() {
        let viewer = Viewer { user: "anna", csrf: "tok" };
        let g = group_view();
        let r = ReportView {
            id: 1,
            group_id: 7,
            time: g.first_seen,
            user: HOSTILE.into(),
            machine: HOSTILE.into(),
            os: HOSTILE.into(),
            platform: HOSTILE.into(),
            description: HOSTILE.into(),
            error_text: HOSTILE.into(),
            has_screenshot: true,
            files: vec![FileView {
                index: 0,
                name: HOSTILE.into(),
                size: 1,
            }],
            archive_size: 10,
        };
        assert_inert(&groups(Lang::En, &viewer, std::slice::from_ref(&g)).into_string());
        assert_inert(&group(Lang::Ru, &viewer, &g, std::slice::from_ref(&r)).into_string());
        assert_inert(&report(Lang::En, &viewer, &r).into_string());
        assert_inert(&login(Lang::En, None, HOSTILE).into_string());
    }

    #[test]
    fn bars_scale_to_the_largest_count() {
        let svg = bars(&[0, 5, 10], "x").into_string();
        assert!(svg.contains("height=\"12\""), "{svg}");
        assert!(svg.contains("height=\"24\""), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}
