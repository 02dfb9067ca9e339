//! Hot reload under the saves admins and tools really make: every style is picked up, a bad
//! or half-written save is never served, and an edit storm under load yields only complete,
//! valid answers.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::saves::{ConfigMapDir, PLAIN_STYLES, Style, save};
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

fn doc(text: &str) -> String {
    format!(r#"{{"userMessage":"{text}","expires":"2099-01-01T00:00:00Z"}}"#)
}

async fn served(server: &TestServer) -> String {
    server.get("/", &[]).await.json()["userMessage"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn wait_served(server: &TestServer, text: &str) {
    wait_for(Duration::from_secs(5), &format!("{text:?} to be served"), || async {
        (served(server).await == text).then_some(())
    })
    .await;
}

/// Requests continuously on `connections` keep-alive connections until stopped; every answer
/// must be a 200 with valid JSON whose text is in `allowed`.
struct Clients {
    stop: Arc<AtomicBool>,
    responses: Arc<AtomicU64>,
    problems: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Clients {
    async fn start(server: &TestServer, connections: usize, allowed: Arc<HashSet<String>>) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let responses = Arc::new(AtomicU64::new(0));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let io = TokioIo::new(tls_connect(server.https, &server.pki.ca, false).await);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let (stop, responses, problems, allowed) =
                (stop.clone(), responses.clone(), problems.clone(), allowed.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let req = http::Request::get("/")
                        .header("host", "127.0.0.1")
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let problem = match sender.send_request(req).await {
                        Err(e) => Some(format!("transport error: {e}")),
                        Ok(r) => {
                            let status = r.status();
                            match r.into_body().collect().await {
                                Err(e) => Some(format!("broken body: {e}")),
                                Ok(body) => {
                                    let body = body.to_bytes();
                                    match serde_json::from_slice::<serde_json::Value>(&body) {
                                        _ if status != 200 => Some(format!("status {status}")),
                                        Err(e) => Some(format!("invalid JSON ({e}): {body:?}")),
                                        Ok(v) => match v["userMessage"].as_str() {
                                            Some(t) if allowed.contains(t) => None,
                                            other => Some(format!("unexpected userMessage {other:?}")),
                                        },
                                    }
                                }
                            }
                        }
                    };
                    responses.fetch_add(1, Ordering::Relaxed);
                    if let Some(p) = problem {
                        problems.lock().unwrap().push(p);
                        return;
                    }
                }
            }));
        }
        Clients {
            stop,
            responses,
            problems,
            tasks,
        }
    }

    /// Stops the clients; returns the number of responses, panicking on any problem.
    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let problems = self.problems.lock().unwrap();
        assert!(
            problems.is_empty(),
            "{} bad answers, first: {:?}",
            problems.len(),
            problems.first()
        );
        self.responses.load(Ordering::Relaxed)
    }
}

fn allowed(texts: &[&str]) -> Arc<HashSet<String>> {
    Arc::new(texts.iter().map(|t| t.to_string()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_save_style_is_picked_up_and_nothing_half_written_is_served() {
    let server = TestServer::start(Some(&doc("v0")), |_| {}).await;
    let mut previous = "v0".to_string();
    for (i, style) in PLAIN_STYLES.into_iter().enumerate() {
        let next = format!("v{}", i + 1);
        let clients = Clients::start(&server, 4, allowed(&[&previous, &next])).await;
        let path = server.message.clone();
        let content = doc(&next);
        // A pause longer than the settle delay: the half-written file is re-checked and kept out.
        tokio::task::spawn_blocking(move || save(&path, content.as_bytes(), style, Duration::from_millis(400)))
            .await
            .unwrap();
        wait_served(&server, &next).await;
        let answers = clients.finish().await;
        assert!(answers > 0, "{style:?}: no answers during the save");
        previous = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_data_swap_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cm = ConfigMapDir::new(dir.path(), doc("cm1").as_bytes());
    let server = TestServer::start(None, |c| c.message = cm.message_path()).await;
    assert_eq!(served(&server).await, "cm1");
    for v in ["cm2", "cm3"] {
        cm.update(doc(v).as_bytes());
        wait_served(&server, v).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_retargeted_or_its_target_saved_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("real.json"), doc("in a")).unwrap();
    std::fs::write(b.join("real.json"), doc("in b")).unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let link = conf.join("message.json");
    std::os::unix::fs::symlink(a.join("real.json"), &link).unwrap();
    let server = TestServer::start(None, |c| c.message = link.clone()).await;
    assert_eq!(served(&server).await, "in a");

    // A save to the target, in its own directory.
    save(
        &a.join("real.json"),
        doc("a edited").as_bytes(),
        Style::Rename,
        Duration::ZERO,
    );
    wait_served(&server, "a edited").await;

    // The link pointed elsewhere (atomically, as `ln -sfn` + rename does).
    let tmp = conf.join("message.json.new");
    std::os::unix::fs::symlink(b.join("real.json"), &tmp).unwrap();
    std::fs::rename(&tmp, &link).unwrap();
    wait_served(&server, "in b").await;
    save(
        &b.join("real.json"),
        doc("b edited").as_bytes(),
        Style::Rename,
        Duration::ZERO,
    );
    wait_served(&server, "b edited").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chmod_to_unreadable_keeps_the_message_and_chmod_back_reloads() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start(Some(&doc("readable")), |c| c.health_details = true).await;
    let path = server.message.clone();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let still_readable = std::fs::read(&path).is_ok(); // true when the tests run as root
    if !still_readable {
        let error = wait_for(Duration::from_secs(5), "the read error in /healthz", || async {
            server.get("/healthz", &[]).await.json()["last_reload_error"]
                .as_str()
                .map(str::to_string)
        })
        .await;
        assert!(error.contains("cannot read"), "{error}");
    }
    assert_eq!(served(&server).await, "readable");
    // Changed while unreadable, then made readable again: the change is picked up.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o200)).unwrap();
    std::fs::write(&path, doc("readable again")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    wait_served(&server, "readable again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_saves_keep_the_last_good_message_and_show_the_error() {
    let server = TestServer::start(Some(&doc("good")), |c| c.health_details = true).await;
    let huge = {
        let mut v = doc("huge").into_bytes();
        v.extend(std::iter::repeat_n(b' ', 20 * 1024 * 1024));
        v
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "syntax",
            b"{\"userMessage\": \"x\",\n  \"expires\" 5}".to_vec(),
            "line 2, column 13",
        ),
        (
            "wrong type",
            br#"{"userMessage": ["x"]}"#.to_vec(),
            "field \"userMessage\": must be a string",
        ),
        (
            "non-UTF-8",
            b"{\"userMessage\": \"\xff\"}".to_vec(),
            "not UTF-8 (invalid byte at offset 17)",
        ),
        ("20 MB", huge, "a message document may be at most 65536 bytes"),
    ];
    for (i, (name, content, expected)) in cases.into_iter().enumerate() {
        save(&server.message, &content, Style::Rename, Duration::ZERO);
        let error = wait_for(
            Duration::from_secs(5),
            &format!("the {name} error in /healthz"),
            || async {
                let h = server.get("/healthz", &[]).await.json();
                h["last_reload_error"]
                    .as_str()
                    .filter(|e| e.contains(expected))
                    .map(str::to_string)
            },
        )
        .await;
        assert!(error.starts_with(&server.message.display().to_string()), "{error}");
        assert_eq!(served(&server).await, "good", "after the {name} save");
        let health = server.get("/healthz", &[]).await.json();
        assert_eq!(health["reload_failures"], i as u64 + 1);
    }
    save(&server.message, doc("fixed").as_bytes(), Style::Rename, Duration::ZERO);
    wait_served(&server, "fixed").await;
    assert!(server.get("/healthz", &[]).await.json()["last_reload_error"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_clears_the_message_once_it_stays_empty() {
    let server = TestServer::start(Some(&doc("shown")), |_| {}).await;
    let clients = Clients::start(&server, 2, allowed(&["shown", "next"])).await;
    // Empty for a moment during an in-place save: never served.
    let path = server.message.clone();
    tokio::task::spawn_blocking(move || {
        let f = std::fs::File::create(&path).unwrap(); // truncates
        std::thread::sleep(Duration::from_millis(50));
        drop(f);
        std::fs::write(&path, doc("next")).unwrap();
    })
    .await
    .unwrap();
    wait_served(&server, "next").await;
    clients.finish().await;
    // Left empty: the message is taken down.
    save(&server.message, b"", Style::Rename, Duration::ZERO);
    wait_for(
        Duration::from_secs(5),
        "the empty file to clear the message",
        || async { (server.get("/", &[]).await.text() == r#"{"userMessage":""}"#).then_some(()) },
    )
    .await;
    assert_eq!(server.get("/healthz", &[]).await.json()["state"], "none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_file_does_not_trigger_another_read() {
    // Regression: the watcher once forwarded the service's own reads (inotify open/close
    // events) as changes, so every read caused the next one, forever.
    let server = TestServer::start(Some(&doc("idle")), |_| {}).await;
    save(
        &server.message,
        doc("saved once").as_bytes(),
        Style::Rename,
        Duration::ZERO,
    );
    wait_served(&server, "saved once").await;
    let checks = |h: serde_json::Value| h["checks"].as_u64().unwrap();
    let before = checks(server.get("/healthz", &[]).await.json());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = checks(server.get("/healthz", &[]).await.json());
    assert!(
        after - before <= 1,
        "{} reads of an unchanged file in 1 s",
        after - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_other_files_in_the_directory_do_not_cause_rereads() {
    let server = TestServer::start(Some(&doc("steady")), |_| {}).await;
    let checks = |h: serde_json::Value| h["checks"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = checks(server.get("/healthz", &[]).await.json());
    let log = server.dir.path().join("service.log");
    for i in 0..200 {
        std::fs::write(&log, format!("line {i}\n")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = checks(server.get("/healthz", &[]).await.json());
    assert!(
        after - before <= 1,
        "{} re-reads for writes to another file",
        after - before
    );
    // The message file itself is still watched.
    save(
        &server.message,
        doc("changed").as_bytes(),
        Style::InPlace,
        Duration::ZERO,
    );
    wait_served(&server, "changed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_beside_a_message_given_as_a_relative_path_do_not_cause_rereads() {
    // Regression: with `--message message.json` the watcher compared the events' absolute
    // paths with "." and took every write in the directory (a report database beside the
    // message) for an edit.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("message.json"), doc("relative")).unwrap();
    let pki = Pki::new();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--message",
        "message.json",
    ];
    let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    args.extend([
        "--cert".as_ref(),
        pki.cert_path.as_os_str(),
        "--key".as_ref(),
        pki.key_path.as_os_str(),
    ]);
    let server = Binary::serve_in(dir.path(), &args, &[]);
    let http = server.http.expect("plain HTTP listener");
    let checks = || async { http_get(http, "/healthz").await.json()["checks"].as_u64().unwrap() };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = checks().await;
    let other = dir.path().join("reports.db");
    for i in 0..200 {
        std::fs::write(&other, format!("page {i}\n")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = checks().await;
    assert!(
        after - before <= 1,
        "{} re-reads for writes to another file",
        after - before
    );
    assert_eq!(http_get(http, "/").await.json()["userMessage"], "relative");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_keeps_the_message_until_it_reappears() {
    let server = TestServer::start(Some(&doc("kept")), |_| {}).await;
    std::fs::remove_file(&server.message).unwrap();
    wait_for(
        Duration::from_secs(5),
        "/healthz to say the file is missing",
        || async { (server.get("/healthz", &[]).await.json()["file_missing"] == true).then_some(()) },
    )
    .await;
    assert_eq!(served(&server).await, "kept");
    std::fs::write(&server.message, doc("back")).unwrap();
    wait_served(&server, "back").await;
    assert_eq!(server.get("/healthz", &[]).await.json()["file_missing"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_recheck_catches_a_change_no_event_reported() {
    // A change that produces no event in any watched directory: only the safety re-read
    // can see it (the same as an event lost to an inotify overflow).
    let dir = tempfile::tempdir().unwrap();
    let hidden = dir.path().join("hidden");
    std::fs::create_dir(&hidden).unwrap();
    std::fs::write(hidden.join("m.json"), doc("first")).unwrap();
    let link_dir = dir.path().join("conf");
    std::fs::create_dir(&link_dir).unwrap();
    let link = link_dir.join("message.json");
    std::os::unix::fs::symlink(hidden.join("m.json"), &link).unwrap();
    let server = TestServer::start(None, |c| {
        c.message = link.clone();
        c.recheck_interval = Duration::from_millis(300);
    })
    .await;
    assert_eq!(served(&server).await, "first");
    // Write through a second hard link in a directory nobody watches: inotify reports the
    // change only to watchers of the directory the write went through.
    let other = dir.path().join("elsewhere");
    std::fs::create_dir(&other).unwrap();
    std::fs::hard_link(hidden.join("m.json"), other.join("alias.json")).unwrap();
    std::fs::write(other.join("alias.json"), doc("second")).unwrap();
    wait_served(&server, "second").await;
}

/// Saves `count` versions mixing `styles`, with an invalid save every seventh time; returns the
/// valid texts in the order written (the last is "final").
fn storm_texts(count: usize) -> Vec<String> {
    let mut texts: Vec<String> = (0..count).map(|i| format!("version {i}")).collect();
    texts.push("final".into());
    texts
}

fn invalid_save(i: usize) -> Vec<u8> {
    match i % 3 {
        0 => b"{\"userMessage\": \"torn".to_vec(),
        1 => br#"{"userMessage": 12}"#.to_vec(),
        _ => b"{\"userMessage\": \"\xfe\"}".to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_storm_on_a_plain_file_serves_only_complete_valid_versions() {
    let server = TestServer::start(Some(&doc("start")), |_| {}).await;
    let texts = storm_texts(520);
    let mut allowed_texts: HashSet<String> = texts.iter().cloned().collect();
    allowed_texts.insert("start".into());
    let clients = Clients::start(&server, 16, Arc::new(allowed_texts)).await;
    let path = server.message.clone();
    let writer = texts.clone();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::PermissionsExt;
        for (i, text) in writer.iter().enumerate() {
            let style = if text == "final" {
                Style::Rename
            } else {
                PLAIN_STYLES[i % PLAIN_STYLES.len()]
            };
            if i % 7 == 3 {
                save(&path, &invalid_save(i), Style::Rename, Duration::ZERO);
            }
            if i % 50 == 25 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
            save(&path, doc(text).as_bytes(), style, Duration::from_millis(1));
        }
    })
    .await
    .unwrap();
    storm_end(&server, clients).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_storm_on_a_configmap_serves_only_complete_valid_versions() {
    let dir = tempfile::tempdir().unwrap();
    let mut cm = ConfigMapDir::new(dir.path(), doc("start").as_bytes());
    let server = TestServer::start(None, |c| c.message = cm.message_path()).await;
    let texts = storm_texts(520);
    let mut allowed_texts: HashSet<String> = texts.iter().cloned().collect();
    allowed_texts.insert("start".into());
    let clients = Clients::start(&server, 16, Arc::new(allowed_texts)).await;
    tokio::task::spawn_blocking(move || {
        for (i, text) in texts.iter().enumerate() {
            if i % 7 == 3 {
                cm.update(&invalid_save(i));
            }
            cm.update(doc(text).as_bytes());
        }
    })
    .await
    .unwrap();
    storm_end(&server, clients).await;
}

/// After the storm: "final" is served within a second, and no client saw a bad answer.
async fn storm_end(server: &TestServer, clients: Clients) {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        if served(server).await == "final" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the last save was not served within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answers = clients.finish().await;
    assert!(answers >= 500, "only {answers} answers during the storm");
    let health = server.get("/healthz", &[]).await.json();
    assert!(health["reloads"].as_u64().unwrap() > 10, "{health}");
}

#[test]
fn sighup_makes_the_running_service_reload() {
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("message.json");
    std::fs::write(&message, doc("before")).unwrap();
    let arg = |s: &'static str| std::ffi::OsStr::new(s);
    let service = Binary::serve(
        &[
            arg("serve"),
            arg("--listen"),
            arg("127.0.0.1:0"),
            arg("--tz"),
            arg("UTC"),
            arg("--message"),
            message.as_os_str(),
        ],
        &[],
    );
    service.signal("HUP");
    service.wait_log("SIGHUP: reloading the message file", Duration::from_secs(10));
    service.signal("TERM");
    service.wait_log("v8help stopped", Duration::from_secs(20));
    let status = service.wait();
    assert!(status.success(), "exit after SIGTERM: {status}");
}
