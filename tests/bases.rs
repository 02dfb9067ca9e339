//! Many bases, one service (`--messages DIR`): every `NAME.json` is served at `/NAME/` with
//! the contract of `/`, kept live file by file (adds, edits in every save style, renames,
//! deletes that stay deleted, the ConfigMap layout), counted in `/healthz` and `/metrics`,
//! and login failures record the base address the client used.
//!
//! Run: `cargo test --test bases`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::reports::metric;
use common::saves::{ConfigMapDir, PLAIN_STYLES, Style, save};
use common::*;
use serde_json::{Value, json};

fn doc(text: &str) -> String {
    format!(r#"{{"userMessage":"{text}","expires":"2099-01-01T00:00:00Z"}}"#)
}

/// A messages directory holding `files`, and a server on it (root document: "root").
async fn start(files: &[(&str, &str)]) -> (TestServer, tempfile::TempDir) {
    start_with(files, |_| {}).await
}

async fn start_with(
    files: &[(&str, &str)],
    tweak: impl FnOnce(&mut v8help::config::ServeConfig),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let messages = dir.path().to_path_buf();
    let server = TestServer::start(Some(&doc("root")), |c| {
        c.messages = Some(messages);
        tweak(c);
    })
    .await;
    (server, dir)
}

/// The text `/NAME/` serves, or `None` when it answers 404.
async fn served(server: &TestServer, base: &str) -> Option<String> {
    let r = server.get(&format!("/{base}/"), &[]).await;
    match r.status {
        200 => Some(r.json()["userMessage"].as_str().unwrap().to_string()),
        404 => None,
        other => panic!("/{base}/ answered {other}: {}", r.text()),
    }
}

async fn wait_served(server: &TestServer, base: &str, text: Option<&str>) {
    let what = format!("/{base}/ to serve {text:?}");
    wait_for(Duration::from_secs(5), &what, || async {
        (served(server, base).await.as_deref() == text).then_some(())
    })
    .await;
}

fn path(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!("{base}.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_base_is_served_at_its_prefix_with_the_contract_of_the_root() {
    let expires = in_secs(12);
    let erp = json!({
        "userMessage": "ERP down",
        "userMessages": {"kk": "ERP жұмыс істемейді"},
        "expires": expires,
    });
    let (server, _dir) = start(&[("erp.json", &erp.to_string()), ("hr.json", &doc("HR slow"))]).await;

    for path in ["/erp/", "/erp/message.json", "/erp"] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
        assert_eq!(r.json()["userMessage"], "ERP down", "{path}");
        // max-age never past the document's own next switch (12 s), not the cap (30 s).
        let max_age: u64 = r.header("cache-control").unwrap()["max-age=".len()..].parse().unwrap();
        assert!(max_age <= 12, "{path}: {max_age}");
        assert_eq!(r.header("vary"), Some("Accept-Language"));
    }
    let kk = server.get("/erp/", &[("accept-language", "kk-KZ, ru;q=0.8")]).await;
    assert_eq!(kk.json()["userMessage"], "ERP жұмыс істемейді");
    let lang = server.get("/erp/message.json?lang=kk", &[]).await;
    assert_eq!(lang.json()["userMessage"], "ERP жұмыс істемейді");

    // ETag per base and language; If-None-Match gives 304.
    let first = server.get("/erp/", &[]).await;
    let etag = first.header("etag").unwrap().to_string();
    assert_ne!(Some(etag.as_str()), kk.header("etag"));
    let again = server.get("/erp/", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert_ne!(server.get("/hr/", &[]).await.header("etag"), Some(etag.as_str()));

    // POST and HEAD as on the root.
    let post = server
        .send("POST", "/hr/message.json", &[], bytes::Bytes::from_static(b"{}"), false)
        .await;
    assert_eq!(post.json()["userMessage"], "HR slow");
    let head = server.send("HEAD", "/hr/", &[], bytes::Bytes::new(), false).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let h2 = server.send("GET", "/hr/", &[], bytes::Bytes::new(), true).await;
    assert_eq!(h2.json()["userMessage"], "HR slow");

    // The root keeps serving --message.
    assert_eq!(server.get("/", &[]).await.json()["userMessage"], "root");
    assert_eq!(server.get("/message.json", &[]).await.json()["userMessage"], "root");

    // An unknown base is a 404 naming it; names are case-sensitive.
    for (path, base) in [("/crm/", "crm"), ("/ERP/message.json", "ERP")] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json(), json!({"error": "unknown base", "base": base}));
    }
    let r = server.get("/erp/nothing", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(server.get("/a%20b/", &[]).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_and_expires_switch_each_base_at_the_instant() {
    let planned = json!({"userMessage": "Maintenance", "starts": in_secs(2), "expires": in_secs(4)});
    let (server, _dir) = start(&[("erp.json", &planned.to_string()), ("hr.json", &doc("HR"))]).await;
    let r = server.get("/erp/", &[]).await;
    assert_eq!(r.json()["userMessage"], "");
    let max_age: u64 = r.header("cache-control").unwrap()["max-age=".len()..].parse().unwrap();
    assert!(max_age <= 2, "a scheduled message is cached past its start: {max_age}");
    wait_served(&server, "erp", Some("Maintenance")).await;
    wait_served(&server, "erp", Some("")).await;
    assert_eq!(served(&server, "hr").await.as_deref(), Some("HR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_editing_renaming_and_deleting_files_take_effect_at_once() {
    let (server, dir) = start(&[("erp.json", &doc("erp 1")), ("hr.json", &doc("hr 1"))]).await;
    let dir = dir.path();

    // Added.
    std::fs::write(dir.join(".crm.json.tmp"), doc("crm 1")).unwrap();
    std::fs::rename(dir.join(".crm.json.tmp"), path(dir, "crm")).unwrap();
    wait_served(&server, "crm", Some("crm 1")).await;

    // Edited in every save style; the other bases are untouched.
    for (i, style) in PLAIN_STYLES.into_iter().enumerate() {
        let text = format!("erp {}", i + 2);
        let (p, content) = (path(dir, "erp"), doc(&text));
        tokio::task::spawn_blocking(move || save(&p, content.as_bytes(), style, Duration::from_millis(50)))
            .await
            .unwrap();
        wait_served(&server, "erp", Some(&text)).await;
        assert_eq!(served(&server, "hr").await.as_deref(), Some("hr 1"), "{style:?}");
    }

    // Renamed: the new name is served, the old one stops once it stays gone.
    std::fs::rename(path(dir, "crm"), path(dir, "sales")).unwrap();
    wait_served(&server, "sales", Some("crm 1")).await;
    wait_served(&server, "crm", None).await;

    // Deleted: still served just after (a save may recreate it), gone once it stays deleted.
    std::fs::remove_file(path(dir, "hr")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served(&server, "hr").await.as_deref(), Some("hr 1"));
    let started = std::time::Instant::now();
    wait_served(&server, "hr", None).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = server.get("/hr/", &[]).await;
    assert_eq!(r.json(), json!({"error": "unknown base", "base": "hr"}));

    // Recreated.
    std::fs::write(path(dir, "hr"), doc("hr 2")).unwrap();
    wait_served(&server, "hr", Some("hr 2")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_and_recreate_save_never_makes_the_base_unknown() {
    let (server, dir) = start(&[("erp.json", &doc("erp 1"))]).await;
    let p = path(dir.path(), "erp");
    let saving = tokio::task::spawn_blocking(move || {
        save(
            &p,
            doc("erp 2").as_bytes(),
            Style::DeleteRecreate,
            Duration::from_millis(400),
        )
    });
    let mut seen = Vec::new();
    while !saving.is_finished() {
        seen.push(served(&server, "erp").await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.len() > 5, "too few requests during the save: {}", seen.len());
    assert!(
        !seen.contains(&None),
        "/erp/ answered 404 during a delete + recreate save"
    );
    wait_served(&server, "erp", Some("erp 2")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_edit_keeps_that_bases_last_good_version_and_healthz_says_why() {
    let (server, dir) = start_with(&[("erp.json", &doc("erp good")), ("hr.json", &doc("hr good"))], |c| {
        c.health_details = true
    })
    .await;
    std::fs::write(path(dir.path(), "erp"), r#"{"userMessage": "broken"#).unwrap();
    let one = wait_for(Duration::from_secs(5), "the error in /healthz?base=erp", || async {
        let h = server.get("/healthz?base=erp", &[]).await.json();
        h["base"]["last_error"].is_string().then_some(h)
    })
    .await;
    assert!(
        one["base"]["last_error"].as_str().unwrap().contains("erp.json"),
        "{one}"
    );
    assert_eq!(one["base"]["state"], "active");
    assert_eq!(served(&server, "erp").await.as_deref(), Some("erp good"));
    assert_eq!(served(&server, "hr").await.as_deref(), Some("hr good"));

    let all = server.get("/healthz", &[]).await.json();
    let summary = &all["messages"]["summary"];
    assert_eq!(summary["documents"], 2, "{all}");
    assert_eq!(summary["active"], 2);
    assert_eq!(summary["failing"], 1);
    let documents = all["messages"]["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0]["base"], "erp");
    assert!(documents[0]["last_error"].is_string());
    assert_eq!(documents[1]["last_error"], Value::Null);

    let unknown = server.get("/healthz?base=nope", &[]).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["base"], "nope");

    std::fs::write(path(dir.path(), "erp"), doc("erp fixed")).unwrap();
    wait_served(&server, "erp", Some("erp fixed")).await;
    let h = server.get("/healthz?base=erp", &[]).await.json();
    assert_eq!(h["base"]["last_error"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_documents_by_state_without_a_label_per_base() {
    let expired = json!({"userMessage": "old", "expires": in_secs(-60)});
    let (server, _dir) = start(&[
        ("erp.json", &doc("erp")),
        ("hr.json", &doc("hr")),
        ("crm.json", &expired.to_string()),
        ("empty.json", "{}"),
        ("bad.json", "{"),
    ])
    .await;
    let scrape = server.get("/metrics", &[]).await;
    let text = scrape.text();
    assert_eq!(
        metric(text, "v8help_base_documents{state=\"active\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(metric(text, "v8help_base_documents{state=\"expired\"}"), Some(1.0));
    assert_eq!(metric(text, "v8help_base_documents{state=\"none\"}"), Some(2.0));
    assert_eq!(metric(text, "v8help_base_documents_failing "), Some(1.0));
    for base in ["erp", "hr", "crm", "empty", "bad"] {
        assert!(!text.contains(&format!("\"{base}\"")), "a label names base {base}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_rereads_only_the_file_that_changed() {
    let files: Vec<(String, String)> = (0..200)
        .map(|i| (format!("b{i}.json"), doc(&format!("v1 {i}"))))
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
    // Safety re-checks every 300 ms: they look at metadata and must not read unchanged files.
    let (server, dir) = start_with(&refs, |c| c.recheck_interval = Duration::from_millis(300)).await;
    let checks = |h: &Value| -> Vec<u64> {
        h["messages"]["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["checks"].as_u64().unwrap())
            .collect()
    };
    let before = checks(&server.get("/healthz", &[]).await.json());
    std::fs::write(path(dir.path(), "b7"), doc("v2 7")).unwrap();
    wait_served(&server, "b7", Some("v2 7")).await;
    tokio::time::sleep(Duration::from_millis(700)).await; // two safety re-checks
    let h = server.get("/healthz", &[]).await.json();
    let after = checks(&h);
    let names: Vec<String> = h["messages"]["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["base"].as_str().unwrap().to_string())
        .collect();
    let reread: Vec<&str> = names
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| a > b)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(reread, ["b7"], "files read again after one edit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_mount_with_several_keys_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cm = ConfigMapDir::with_keys(
        dir.path(),
        &[
            ("erp.json", doc("erp 1").as_bytes()),
            ("hr.json", doc("hr 1").as_bytes()),
        ],
    );
    let messages = dir.path().to_path_buf();
    let server = TestServer::start(Some(&doc("root")), |c| c.messages = Some(messages)).await;
    assert_eq!(served(&server, "erp").await.as_deref(), Some("erp 1"));
    assert_eq!(served(&server, "hr").await.as_deref(), Some("hr 1"));
    // The ConfigMap's own entries (..data, ..2026_…) are no bases.
    assert_eq!(
        server.get("/healthz", &[]).await.json()["messages"]["summary"]["documents"],
        2
    );

    cm.update_keys(&[
        ("erp.json", doc("erp 2").as_bytes()),
        ("hr.json", doc("hr 1").as_bytes()),
    ]);
    wait_served(&server, "erp", Some("erp 2")).await;

    // A key added and a key removed in one update.
    cm.update_keys(&[
        ("erp.json", doc("erp 2").as_bytes()),
        ("crm.json", doc("crm 1").as_bytes()),
    ]);
    wait_served(&server, "crm", Some("crm 1")).await;
    wait_served(&server, "hr", None).await;
    assert_eq!(served(&server, "erp").await.as_deref(), Some("erp 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_record_the_base_address_the_client_used() {
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("reports.db");
    let (server, _dir) = start_with(&[("erp.json", &doc("erp"))], |c| {
        c.reports = Some(v8help::reports::ReportsConfig::with_db(format!(
            "sqlite:{}",
            db.display()
        )));
    })
    .await;
    for path in ["/erp/", "/erp/message.json", "/"] {
        let r = server
            .send(
                "POST",
                path,
                &[("user-agent", "1CV8C/8.3.24")],
                bytes::Bytes::from(path),
                false,
            )
            .await;
        assert_eq!(r.status, 200, "{path}");
    }
    let store = server.reports.clone().unwrap().store.clone();
    let since = chrono::Utc::now() - chrono::Duration::minutes(5);
    let events = wait_for(Duration::from_secs(10), "three login failures", || {
        let store = store.clone();
        async move {
            let e = store.login_failures(since, 10).await.unwrap();
            (e.len() == 3).then_some(e)
        }
    })
    .await;
    for e in &events {
        let expected = if e.body == b"/" { None } else { Some("erp") };
        assert_eq!(e.base.as_deref(), expected, "{:?}", String::from_utf8_lossy(&e.body));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_messages_directory_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = v8help::config::ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        messages: Some(dir.path().join("nope")),
        ..v8help::config::ServeConfig::default()
    };
    let err = common::server::InProcess::start(config)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.starts_with("--messages ") && err.contains("nope"), "{err}");
}

#[test]
fn the_binary_logs_each_other_file_once_and_rereads_every_document_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(path(dir.path(), "erp"), doc("erp")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a base").unwrap();
    std::fs::write(dir.path().join("bad name.json"), doc("x")).unwrap();
    std::fs::write(dir.path().join(".erp.json.swp"), "editor").unwrap();
    let service = Binary::serve(
        &[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--http-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--messages".as_ref(),
            dir.path().as_os_str(),
        ],
        &[],
    );
    let loaded = service.wait_log("messages directory loaded", Duration::from_secs(10));
    assert!(loaded.contains("documents=1"), "{loaded}");
    // Written again and again while the service runs: still logged once.
    for i in 0..5 {
        std::fs::write(dir.path().join("notes.txt"), format!("edit {i}")).unwrap();
        std::fs::write(dir.path().join(".erp.json.swp"), format!("edit {i}")).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    service.signal("HUP");
    service.wait_log("SIGHUP: re-reading the messages directory", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let log = service.log();
    let count = |needle: &str| {
        log.iter()
            .filter(|l| l.contains("ignored in the messages directory") && l.contains(needle))
            .count()
    };
    assert_eq!(count("notes.txt"), 1, "{log:#?}");
    assert_eq!(count("bad name.json"), 1, "{log:#?}");
    assert_eq!(count(".erp.json.swp"), 0, "hidden files are not logged: {log:#?}");
    let r = common::client::blocking_http_get(service.http.unwrap(), "/erp/");
    assert_eq!(r.json()["userMessage"], "erp");
    service.signal("TERM");
    service.wait_log("v8help stopped", Duration::from_secs(20));
}
