//! Forwarding against a local receiver (tests/common/receiver.rs) standing in for Sentry and
//! the webhooks: the envelope of a report (its header, the event's fingerprint, message and
//! tags, report.json and the screenshot byte for byte), the webhook bodies of a new group and
//! of the threshold with their console link, a 429 whose Retry-After holds the next attempt
//! back, and failed deliveries shown in the console, escaped. Run: `cargo test --test forward`.

mod common;
use common::console as common_console;
use common::receiver as common_receiver;
use common::reports as common_reports;

use std::sync::Arc;
use std::time::Duration;

use common::wait_for;
use common_console::ConsoleEnv;
use common_receiver::{Envelope, Receiver};
use common_reports::{PNG, ReportServer, http_post, metric, report_archive, report_json};
use http::StatusCode;
use serde_json::json;
use v8help::console::StoreMarks;
use v8help::forward::ForwardConfig;
use v8help::forward::config::Webhook;
use v8help::forward::sentry::Dsn;
use v8help::store::{GroupQuery, Store};

async fn push(rs: &ReportServer, archive: Vec<u8>) {
    let resp = http_post(
        rs.http(),
        "/reports/pushReport",
        &[("content-type", "application/zip")],
        archive,
    )
    .await;
    assert_eq!(resp.status, StatusCode::OK, "{:?}", resp.body);
}

fn store_of(rs: &ReportServer) -> Arc<dyn Store> {
    rs.server
        .reports
        .as_ref()
        .expect("the server takes reports")
        .store
        .clone()
}

/// Waits until `/metrics` counts the one delivery to Sentry, then says how many attempts
/// before it were answered "retry later".
async fn sentry_retries_once_delivered(rs: &ReportServer) -> Option<f64> {
    let scrape = wait_for(Duration::from_secs(10), "the delivery in /metrics", || async {
        let s = rs.server.get("/metrics", &[]).await.text().to_string();
        (metric(
            &s,
            r#"v8help_forward_attempts_total{target="sentry",result="delivered"}"#,
        ) == Some(1.0))
        .then_some(s)
    })
    .await;
    metric(
        &scrape,
        r#"v8help_forward_attempts_total{target="sentry",result="retry"}"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_reaches_sentry_as_one_envelope_with_its_files() {
    let sentry = Receiver::start().await;
    let dsn = sentry.dsn();
    let rs = ReportServer::start(|c| {
        c.forward.sentry = Some(Dsn::parse(&dsn).unwrap());
        c.forward.console_url = Some("https://support.example".into());
    })
    .await;
    let doc = report_json(&[("/sessionInfo/userName", json!("Петрова <b>"))]);
    push(&rs, report_archive(&doc)).await;

    let got = wait_for(Duration::from_secs(15), "the envelope", || {
        let r = sentry.received();
        async move { r.into_iter().next() }
    })
    .await;
    assert_eq!(got.path, "/api/42/envelope/");
    assert_eq!(got.header("content-type"), Some("application/x-sentry-envelope"));
    let auth = got.header("x-sentry-auth").expect("X-Sentry-Auth");
    assert!(
        auth.starts_with("Sentry sentry_version=7") && auth.contains("sentry_key=public"),
        "{auth}"
    );

    let envelope = Envelope::parse(&got.body);
    let event = envelope.event();
    assert_eq!(envelope.header["event_id"], event["event_id"]);
    assert_eq!(envelope.header["dsn"], dsn);
    assert_eq!(event["event_id"].as_str().unwrap().len(), 32);
    let group = store_of(&rs)
        .list_groups(GroupQuery::default())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(event["fingerprint"], json!([group.key]));
    assert_eq!(event["message"]["formatted"], json!(group.title.unwrap()));
    let tags = &event["tags"];
    assert_eq!(tags["user"], "Петрова <b>");
    assert_eq!(tags["platform.version"], doc["clientInfo"]["appVersion"]);
    assert_eq!(tags["platform.type"], doc["clientInfo"]["platformType"]);
    assert_eq!(tags["config"], doc["configInfo"]["name"]);
    assert_eq!(tags["config.version"], doc["configInfo"]["version"]);
    assert_eq!(event["contexts"]["config"]["name"], doc["configInfo"]["name"]);
    assert_eq!(
        event["contexts"]["platform"]["app_version"],
        doc["clientInfo"]["appVersion"]
    );
    assert_eq!(event["user"]["username"], "Петрова <b>");
    let link = event["contexts"]["report"]["console"].as_str().unwrap();
    assert!(link.starts_with("https://support.example/group?key="), "{link}");

    let report_json = serde_json::to_vec_pretty(&doc).unwrap();
    assert_eq!(
        envelope.attachment("report.json").map(|b| &b[..]),
        Some(&report_json[..]),
        "report.json byte for byte"
    );
    assert_eq!(envelope.attachment("screenshot.png").map(|b| &b[..]), Some(PNG));
    assert_eq!(envelope.items.len(), 3, "the event and two attachments");
    let (shot_header, _) = &envelope.items[2];
    assert_eq!(shot_header["content_type"], "image/png");

    // Delivered once: the row is done, nothing more arrives.
    assert_eq!(sentry_retries_once_delivered(&rs).await, Some(0.0));
    assert_eq!(sentry.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_announce_new_groups_and_the_threshold_with_a_console_link() {
    let hooks = Receiver::start().await;
    let (a, b) = (hooks.url("/hook-a"), hooks.url("/hook-b?token=s3cret"));
    let rs = ReportServer::start(|c| {
        c.forward = ForwardConfig {
            webhooks: vec![Webhook::parse(&a).unwrap(), Webhook::parse(&b).unwrap()],
            threshold: Some(2),
            console_url: Some("https://support.example/console".into()),
            ..ForwardConfig::default()
        };
    })
    .await;
    let stack = |hash: &str| {
        report_archive(&report_json(&[(
            "/errorInfo/applicationErrorInfo/stackHash",
            json!(hash),
        )]))
    };
    for _ in 0..3 {
        push(&rs, stack("AAAA")).await;
    }
    push(&rs, stack("BBBB")).await;

    let store = store_of(&rs);
    // Each hook: a new group AAAA, AAAA reaching 2, a new group BBBB; the third AAAA is no news.
    let events = wait_for(Duration::from_secs(15), "six webhook calls", || {
        let got = hooks.received();
        async move { (got.len() >= 6).then_some(got) }
    })
    .await;
    for path in ["/hook-a", "/hook-b"] {
        let mut seen: Vec<(String, String)> = events
            .iter()
            .filter(|r| r.path == path)
            .map(|r| {
                assert_eq!(r.header("content-type"), Some("application/json"));
                let body = r.json();
                (
                    body["event"].as_str().unwrap().to_string(),
                    body["group"]["key"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("new_group".to_string(), "app:AAAA".to_string()),
                ("new_group".into(), "app:BBBB".into()),
                ("threshold".into(), "app:AAAA".into()),
            ],
            "{path}"
        );
    }
    let threshold = events
        .iter()
        .map(|r| r.json())
        .find(|b| b["event"] == "threshold")
        .unwrap();
    assert_eq!(threshold["threshold"], 2);
    assert_eq!(threshold["count_at_event"], 2);
    assert_eq!(
        threshold["console_url"],
        "https://support.example/console/group?key=app%3AAAAA"
    );
    let text = threshold["text"].as_str().unwrap();
    assert!(
        text.contains("reached 2 reports") && text.contains("https://support.example/console/group?key=app%3AAAAA"),
        "{text}"
    );
    let group = store.group("app:AAAA").await.unwrap().unwrap();
    assert_eq!(threshold["group"]["title"], json!(group.title.unwrap()));

    // Nothing else is owed: every row is delivered, no seventh call comes.
    wait_for(Duration::from_secs(10), "every row delivered", || {
        let store = store.clone();
        async move {
            let s = store.outbox_stats().await.unwrap();
            (s.delivered == 6 && s.pending == 0).then_some(())
        }
    })
    .await;
    assert_eq!(hooks.received().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_holds_the_next_attempt_back() {
    let sentry = Receiver::start().await;
    // 4 s: longer than the first backoff (2 s), so only a respected Retry-After passes.
    sentry.script([(429, vec![("retry-after", "4".to_string())], "slow down".to_string())]);
    let dsn = sentry.dsn();
    let rs = ReportServer::start(|c| c.forward.sentry = Some(Dsn::parse(&dsn).unwrap())).await;
    push(&rs, report_archive(&report_json(&[]))).await;

    let two = wait_for(Duration::from_secs(20), "the retry after the 429", || {
        let got = sentry.received();
        async move { (got.len() >= 2).then_some(got) }
    })
    .await;
    let waited = two[1].at - two[0].at;
    assert!(
        waited >= Duration::from_millis(3900),
        "the retry came {waited:?} after the 429"
    );
    assert!(waited < Duration::from_secs(8), "and not much later: {waited:?}");
    let (first, second) = (Envelope::parse(&two[0].body), Envelope::parse(&two[1].body));
    assert_eq!(
        first.header["event_id"], second.header["event_id"],
        "the retry is the same event (Sentry keeps one)"
    );
    assert_eq!(sentry_retries_once_delivered(&rs).await, Some(1.0));
    assert_eq!(sentry.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_shown_in_the_console_escaped() {
    let hook = Receiver::start().await;
    hook.always((500, vec![], "<script>alert(1)</script> upstream down".into()));
    let url = hook.url("/hook");
    let rs = ReportServer::start(|c| c.forward.webhooks = vec![Webhook::parse(&url).unwrap()]).await;
    push(&rs, report_archive(&report_json(&[]))).await;
    let store = store_of(&rs);
    wait_for(Duration::from_secs(15), "a failed attempt recorded", || {
        let store = store.clone();
        async move { (store.outbox_stats().await.unwrap().retrying == 1).then_some(()) }
    })
    .await;

    let console = ConsoleEnv::start_with(
        Arc::new(tempfile::tempdir().unwrap()),
        Arc::new(common::Pki::new()),
        store.clone(),
        Arc::new(StoreMarks(store.clone())),
    )
    .await;
    let cookie = console.login().await;
    let page = console
        .get("/forwarding", &[("cookie", &cookie), ("accept-language", "en")])
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Failed deliveries"), "{html}");
    assert!(
        html.contains("HTTP 500: &lt;script&gt;alert(1)&lt;/script&gt; upstream down"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "report and target text is never markup");
    assert!(html.contains("new group") && html.contains("app:C0FFEE00C0FFEE00C0FFEE00C0FFEE00"));
    assert!(
        !html.contains("/hook"),
        "the webhook's URL (it may hold a token) is not shown"
    );
    let ru = console.get("/forwarding", &[("cookie", &cookie)]).await;
    assert!(ru.text().contains("Неудачные отправки"));
    // The delivery keeps being retried (with back-off) while the console is opened, so a
    // slow machine may have seen a second failed attempt by now.
    let scrape = rs.server.get("/metrics", &[]).await;
    let retries = metric(
        scrape.text(),
        r#"v8help_forward_attempts_total{target="webhook",result="retry"}"#,
    );
    assert!(matches!(retries, Some(n) if n >= 1.0), "{retries:?}");
}
