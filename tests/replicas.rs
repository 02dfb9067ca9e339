//! Two real `v8help serve` processes on one PostgreSQL database, started at the same moment
//! (their migrations race under the advisory lock): reports pushed to either land in the
//! same groups, and the report CLI sees them all.

mod common;
use common::postgres as common_postgres;
use common::reports as common_reports;

use std::time::Duration;

use common::Binary;
use common_reports::{http_post, report_archive, report_json};
use http::StatusCode;
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_database_share_groups_and_counts() {
    if !common_postgres::available("two_replicas_on_one_database_share_groups_and_counts") {
        return;
    }
    let db = common_postgres::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("message.json");
    std::fs::write(&message, "{}").unwrap();
    let arg = std::ffi::OsStr::new;
    let ports = [free_port(), free_port()];
    let spools = [dir.path().join("spool-a"), dir.path().join("spool-b")];
    let http: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let start = |i: usize| {
        let (http, spool, message, url) = (http[i].clone(), spools[i].clone(), message.clone(), db.url.clone());
        std::thread::spawn(move || {
            Binary::serve(
                &[
                    arg("serve"),
                    arg("--listen"),
                    arg("127.0.0.1:0"),
                    arg("--http-listen"),
                    arg(&http),
                    arg("--message"),
                    message.as_os_str(),
                    arg("--reports-spool"),
                    spool.as_os_str(),
                ],
                &[("V8HELP_REPORTS_DB", &url)],
            )
        })
    };
    let (a, b) = (start(0), start(1));
    let replicas = [a.join().unwrap(), b.join().unwrap()];
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
        let addr = http[i % 2].parse().unwrap();
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
