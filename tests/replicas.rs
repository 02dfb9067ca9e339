//! Two real `v8help serve` processes on one PostgreSQL database, started at the same moment
//! (their migrations race under the advisory lock): reports pushed to either land in the
//! same groups, and the report CLI sees them all; both forward to one receiver and each
//! outbox row arrives once; a mark set in one replica's console reaches the other's getInfo.

mod common;
use common::postgres as common_postgres;
use common::reports as common_reports;

use std::time::Duration;

use common::console as common_console;
use common::receiver as common_receiver;
use common_receiver::{Envelope, Receiver};
use common_reports::{http_post, report_archive, report_json};
use http::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_database_share_groups_and_counts() {
    if !common_postgres::available("two_replicas_on_one_database_share_groups_and_counts") {
        return;
    }
    let db = common_postgres::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let replicas = common::serve_replicas(&db.url, dir.path(), &[vec![], vec![]], &[]);
    for r in &replicas {
        r.wait_log("listening on", Duration::from_secs(20));
    }

    let archive = |user: &str| {
        report_archive(&report_json(&[
            ("/sessionInfo/userName", json!(user)),
            ("/errorInfo/applicationErrorInfo/stackHash", json!("shared-hash")),
        ]))
    };
    for (i, user) in ["first", "second", "third"].iter().enumerate() {
        let addr = replicas[i % 2].http.unwrap();
        let resp = http_post(
            addr,
            "/reports/pushReport",
            &[("content-type", "application/zip")],
            archive(user),
        )
        .await;
        assert_eq!(resp.status, StatusCode::OK, "{:?}", resp.body);
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_v8help"))
        .args(["reports", "list", "--format", "json", "--reports-db", &db.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let groups: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups = groups.as_array().expect("a JSON array of groups");
    assert_eq!(groups.len(), 1, "one group across both replicas: {groups:?}");
    assert_eq!(groups[0]["count"], 3);
    assert_eq!(groups[0]["users"], 3);
    let versions = common_postgres::query_texts(&db.url, "SELECT version::text FROM schema_migrations");
    assert_eq!(versions, ["1", "2"]);
    drop(replicas);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_each_outbox_row_once() {
    if !common_postgres::available("two_replicas_deliver_each_outbox_row_once") {
        return;
    }
    let db = common_postgres::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let forward = vec![
        "--forward-sentry".to_string(),
        receiver.dsn(),
        "--forward-webhook".into(),
        receiver.url("/hook"),
    ];
    let replicas = common::serve_replicas(&db.url, dir.path(), &[forward.clone(), forward], &[]);
    const REPORTS: usize = 24;
    for i in 0..REPORTS {
        let archive = report_archive(&report_json(&[(
            "/id",
            json!(format!("00000000-0000-4000-8000-{i:012}")),
        )]));
        let resp = http_post(
            replicas[i % 2].http.unwrap(),
            "/reports/pushReport",
            &[("content-type", "application/zip")],
            archive,
        )
        .await;
        assert_eq!(resp.status, StatusCode::OK);
    }
    // Every row finished in the shared store: nothing is owed, so nothing more can arrive.
    let store = v8help::store::open(&db.url).unwrap();
    common::wait_for(Duration::from_secs(30), "every outbox row delivered", || {
        let store = store.clone();
        async move {
            let s = store.outbox_stats().await.unwrap();
            (s.pending == 0 && s.delivered == REPORTS as u64 + 1).then_some(())
        }
    })
    .await;
    let envelopes = receiver.to("/api/42/envelope/");
    let mut ids: Vec<String> = envelopes
        .iter()
        .map(|r| {
            Envelope::parse(&r.body).header["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), REPORTS, "one event per report, not one per replica");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), REPORTS, "each report's event once");
    let hooks = receiver.to("/hook");
    assert_eq!(hooks.len(), 1, "one new group announced once across the replicas");
    assert_eq!(hooks[0].json()["event"], "new_group");
    drop(replicas);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_set_on_one_replica_reaches_the_others_getinfo() {
    if !common_postgres::available("a_mark_set_on_one_replica_reaches_the_others_getinfo") {
        return;
    }
    let db = common_postgres::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let pki = common::Pki::new();
    let users = common_console::users_file(dir.path());
    let tls = vec![
        "--cert".to_string(),
        pki.cert_path.display().to_string(),
        "--key".into(),
        pki.key_path.display().to_string(),
    ];
    let envs = [("V8HELP_USERS", users.display().to_string())];
    let replicas = common::serve_replicas(&db.url, dir.path(), &[tls.clone(), tls], &envs);
    let (a, b) = (&replicas[0], &replicas[1]);
    let hash = "C0FFEE00C0FFEE00C0FFEE00C0FFEE00";
    let get_info = || async {
        let body = json!({"appStackHash": hash, "platformInterfaceLanguageCode": "ru"}).to_string();
        let r = http_post(
            b.http.unwrap(),
            "/reports/getInfo",
            &[("content-type", "application/json")],
            body,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        r.json()
    };
    assert_eq!(get_info().await["needSendReport"], true);
    let pushed = http_post(
        a.http.unwrap(),
        "/reports/pushReport",
        &[("content-type", "application/zip")],
        report_archive(&report_json(&[])),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK);

    // Support marks the group known in replica A's console (its JSON API, as a script would).
    let line = a.wait_log("support console on https://", Duration::from_secs(10));
    let console: std::net::SocketAddr = line
        .split("https://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no console address in {line:?}"));
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        common_console::USER,
        common_console::PASSWORD
    ));
    let note = "Известная ошибка: исправлено в 3.0.151, обновитесь";
    let req = http::Request::post("/api/mark")
        .header("host", console.to_string())
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            json!({"key": format!("app:{hash}"), "state": "known", "note": note}).to_string(),
        )))
        .unwrap();
    let marked = common::request(console, &pki.ca, req, false).await;
    assert_eq!(marked.status, 200, "{}", marked.text());
    let started = std::time::Instant::now();

    // Replica B answers by the mark within its refresh period (2 s), not after a restart.
    let answer = common::wait_for(
        Duration::from_secs(8),
        "replica B's getInfo to know the mark",
        || async {
            let a = get_info().await;
            (a["needSendReport"] == false).then_some(a)
        },
    )
    .await;
    assert_eq!(answer["userMessage"], note);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    drop(replicas);
}
