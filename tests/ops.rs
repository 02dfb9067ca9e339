//! What an operator relies on: `/metrics` after real traffic, certificate renewal without a
//! restart, and JSON logs.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

const DOC: &str = r#"{"userMessage":"Работы до 14:00","expires":"2099-01-01T14:00:00Z"}"#;

/// The value of a metric line `name{labels} value` (or `name value`).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_handshakes_connections_and_message_state() {
    let server = TestServer::start(Some(DOC), |c| c.health_details = true).await;
    for _ in 0..3 {
        assert_eq!(server.get("/", &[]).await.status, 200);
    }
    let etag = server
        .get("/message.json", &[])
        .await
        .header("etag")
        .unwrap()
        .to_string();
    assert_eq!(server.get("/", &[("if-none-match", &etag)]).await.status, 304);
    assert_eq!(server.get("/missing", &[]).await.status, 404);
    assert_eq!(server.send("DELETE", "/", &[], Bytes::new(), false).await.status, 405);
    // A client that is not speaking TLS at all.
    let mut plain = tokio::net::TcpStream::connect(server.https).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    drop(plain);
    save_and_wait_invalid(&server).await;

    let m = wait_for(Duration::from_secs(5), "the failed handshake in /metrics", || async {
        let r = server.get("/metrics", &[]).await;
        let text = r.text().to_string();
        (metric(&text, "v8help_tls_handshake_failures_total{reason=\"error\"}") == Some(1.0)).then_some((r, text))
    })
    .await;
    let (r, text) = m;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert_eq!(
        metric(&text, "v8help_requests_total{route=\"message\",status=\"200\"}"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "v8help_requests_total{route=\"message\",status=\"304\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "v8help_requests_total{route=\"message\",status=\"405\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "v8help_requests_total{route=\"unknown\",status=\"404\"}"),
        Some(1.0)
    );
    assert!(
        metric(&text, "v8help_tls_handshakes_total{kind=\"full\"}").unwrap() >= 7.0,
        "{text}"
    );
    // This scrape's own connection is open.
    assert!(metric(&text, "v8help_open_connections").unwrap() >= 1.0);
    assert_eq!(metric(&text, "v8help_reloads_total"), Some(1.0));
    assert_eq!(metric(&text, "v8help_reload_failures_total"), Some(1.0));
    assert_eq!(metric(&text, "v8help_message_state{state=\"active\"}"), Some(1.0));
    assert_eq!(metric(&text, "v8help_message_state{state=\"expired\"}"), Some(0.0));
    let until = metric(&text, "v8help_message_seconds_until_expiry").unwrap();
    let expected = (chrono::DateTime::parse_from_rfc3339("2099-01-01T14:00:00Z")
        .unwrap()
        .timestamp()
        - chrono::Utc::now().timestamp()) as f64;
    assert!((until - expected).abs() < 60.0, "{until} vs {expected}");
    assert!(text.trim_end().ends_with("# EOF"));
}

/// Makes one refused reload, so that the failure counter has something to count.
async fn save_and_wait_invalid(server: &TestServer) {
    std::fs::write(&server.message, "{ not json").unwrap();
    wait_for(Duration::from_secs(5), "the refused reload", || async {
        server.get("/healthz", &[]).await.json()["last_reload_error"]
            .as_str()
            .map(|_| ())
    })
    .await;
}

/// The leaf certificate a new handshake gets.
async fn served_certificate(server: &TestServer) -> Vec<u8> {
    leaf_at(server.https, server.pki.ca.clone()).await
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

/// Replaces a file the way certbot and most tools do: write beside it, rename over it.
fn replace(path: &std::path::Path, content: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_to_new_handshakes_and_open_connections_keep_working() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let first = served_certificate(&server).await;

    // A connection opened before the renewal.
    let io = TokioIo::new(tls_connect(server.https, &server.pki.ca, false).await);
    let (mut open, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let get = || {
        http::Request::get("/")
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    assert_eq!(open.send_request(get()).await.unwrap().status(), 200);

    let (cert, key) = server.pki.issue();
    replace(&server.pki.key_path, &key);
    replace(&server.pki.cert_path, &cert);
    let renewed = pem_der(&cert);
    assert_ne!(renewed, first);
    wait_for(
        Duration::from_secs(10),
        "new handshakes to get the renewed certificate",
        || async { (served_certificate(&server).await == renewed).then_some(()) },
    )
    .await;

    // The old connection was not dropped.
    open.ready().await.unwrap();
    let r = open.send_request(get()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.into_body().collect().await.unwrap().to_bytes().is_empty());

    let text = server.get("/metrics", &[]).await.text().to_string();
    assert_eq!(metric(&text, "v8help_certificate_reloads_total"), Some(1.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_certificate_pair_is_refused_and_the_old_one_keeps_serving() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let first = served_certificate(&server).await;
    // A new certificate with somebody else's key.
    let (cert, _) = server.pki.issue();
    let (_, other_key) = server.pki.issue();
    replace(&server.pki.cert_path, &cert);
    replace(&server.pki.key_path, &other_key);
    wait_for(Duration::from_secs(10), "the refused reload in /metrics", || async {
        let text = server.get("/metrics", &[]).await.text().to_string();
        (metric(&text, "v8help_certificate_reload_failures_total") >= Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(served_certificate(&server).await, first);
    // Garbage instead of a certificate: refused too.
    replace(&server.pki.cert_path, "not a certificate");
    wait_for(Duration::from_secs(10), "a second refused reload", || async {
        let text = server.get("/metrics", &[]).await.text().to_string();
        (metric(&text, "v8help_certificate_reload_failures_total") >= Some(2.0)).then_some(())
    })
    .await;
    assert_eq!(served_certificate(&server).await, first);
    assert_eq!(server.get("/", &[]).await.status, 200);
    // Then a good pair is picked up.
    let (cert, key) = server.pki.issue();
    replace(&server.pki.key_path, &key);
    replace(&server.pki.cert_path, &cert);
    let renewed = pem_der(&cert);
    wait_for(Duration::from_secs(10), "the good pair to be served", || async {
        (served_certificate(&server).await == renewed).then_some(())
    })
    .await;
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("message.json");
    std::fs::write(&message, "{ broken").unwrap();
    let arg = std::ffi::OsStr::new;
    let service = Binary::serve(
        &[
            arg("--log-format"),
            arg("json"),
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
    service.wait_log("listening on", Duration::from_secs(10));
    let records: Vec<serde_json::Value> = service
        .log()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let error = records
        .iter()
        .find(|r| r["level"] == "ERROR")
        .expect("the invalid file is logged as an error");
    let text = error["fields"]["message"].as_str().unwrap();
    assert!(text.contains("line 1, column 3"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_and_config_file_settings_apply_and_the_access_log_names_each_request() {
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("message.json");
    std::fs::write(&message, DOC).unwrap();
    let pki = Pki::new();
    let config = dir.path().join("v8help.toml");
    let toml = format!(
        "listen = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\ncors_origin = \"https://1c.example\"\ntz = \"UTC\"\n",
        pki.cert_path, pki.key_path
    );
    std::fs::write(&config, toml).unwrap();
    let arg = std::ffi::OsStr::new;
    let service = Binary::serve(
        &[arg("serve"), arg("--config"), config.as_os_str()],
        &[
            ("V8HELP_MESSAGE", message.to_str().unwrap()),
            ("V8HELP_MAX_AGE", "7"),
            ("V8HELP_ACCESS_LOG", "true"),
        ],
    );
    let req = http::Request::get("/message.json")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = request(service.addr(), &pki.ca, req, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["userMessage"],
        "Работы до 14:00",
        "V8HELP_MESSAGE names the file"
    );
    assert_eq!(r.header("cache-control"), Some("max-age=7"), "V8HELP_MAX_AGE");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://1c.example"),
        "cors_origin from the file"
    );
    let line = service.wait_log("path=/message.json", Duration::from_secs(5));
    assert!(line.contains("method=GET") && line.contains("status=200"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_certificate_changed_behind_the_watchers_back() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("message.json");
    std::fs::write(&message, DOC).unwrap();
    // Second names for the certificate files in a directory nobody watches: writes through
    // them change the files without an event in the watched directory.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::hard_link(&pki.cert_path, elsewhere.join("cert.pem")).unwrap();
    std::fs::hard_link(&pki.key_path, elsewhere.join("key.pem")).unwrap();
    let arg = std::ffi::OsStr::new;
    let service = Binary::serve(
        &[
            arg("serve"),
            arg("--listen"),
            arg("127.0.0.1:0"),
            arg("--tz"),
            arg("UTC"),
            arg("--recheck-interval"),
            arg("3600"),
            arg("--cert"),
            pki.cert_path.as_os_str(),
            arg("--key"),
            pki.key_path.as_os_str(),
            arg("--message"),
            message.as_os_str(),
        ],
        &[],
    );
    let addr = service.addr();
    let first = leaf_at(addr, pki.ca.clone()).await;

    let (cert, key) = pki.issue();
    std::fs::write(elsewhere.join("key.pem"), &key).unwrap();
    std::fs::write(elsewhere.join("cert.pem"), &cert).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        leaf_at(addr, pki.ca.clone()).await,
        first,
        "seen without SIGHUP: the test would prove nothing"
    );

    service.signal("HUP");
    let renewed = pem_der(&cert);
    let ca = pki.ca.clone();
    wait_for(Duration::from_secs(10), "SIGHUP to load the new certificate", || {
        let ca = ca.clone();
        let renewed = renewed.clone();
        async move { (leaf_at(addr, ca).await == renewed).then_some(()) }
    })
    .await;
    service.wait_log("certificate reloaded", Duration::from_secs(5));
}

/// The leaf certificate a new handshake with `addr` gets.
async fn leaf_at(addr: std::net::SocketAddr, ca: rustls::pki_types::CertificateDer<'static>) -> Vec<u8> {
    let tls = tls_connect(addr, &ca, false).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}
