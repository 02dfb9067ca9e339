//! The HTTP contract over real TLS on 127.0.0.1: endpoints, headers, caching, languages,
//! the switch at expiry, limits and graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOC: &str = r#"{
  "userMessage": "Идут работы до 14:00",
  "expires": "2099-01-01T14:00:00+03:00",
  "userMessages": {"kk": "Жұмыс 14:00-ге дейін", "lv": "Darbi līdz 14:00", "en-GB": "Works until 14:00"},
  "helpUrl": "https://help.example/outage?x=1#now",
  "ticket": {"id": 42}
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_serves_the_active_message_with_its_headers() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    for path in ["/", "/message.json"] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
        assert_eq!(
            r.text(),
            r#"{"userMessage":"Идут работы до 14:00","expires":"2099-01-01T14:00:00+03:00","helpUrl":"https://help.example/outage?x=1#now","ticket":{"id":42}}"#
        );
        let etag = r.header("etag").unwrap();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "{etag}"
        );
        assert_eq!(r.header("cache-control"), Some("max-age=30"));
        assert_eq!(r.header("vary"), Some("Accept-Language"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("strict-transport-security"), Some("max-age=31536000"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_by_alpn_gives_the_same_answer() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let h1 = server.get("/", &[]).await;
    let h2 = server.send("GET", "/", &[], Bytes::new(), true).await;
    assert_eq!(h2.status, 200);
    assert_eq!(h2.body, h1.body);
    assert_eq!(h2.header("etag"), h1.header("etag"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_has_the_headers_and_no_body_on_both_protocols() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let get = server.get("/", &[]).await;
    for h2 in [false, true] {
        let head = server.send("HEAD", "/", &[], Bytes::new(), h2).await;
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_eq!(head.header("etag"), get.header("etag"));
        assert_eq!(head.header("content-length"), Some(get.body.len().to_string().as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_none_match_gives_304_without_body() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let first = server.get("/", &[]).await;
    let etag = first.header("etag").unwrap().to_string();
    let again = server.get("/", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_eq!(again.header("cache-control"), Some("max-age=30"));
    let other = server.get("/", &[("if-none-match", "\"0123\"")]).await;
    assert_eq!(other.status, 200);
    // Another language is another representation: its own tag, so no 304.
    let kk = server
        .get("/", &[("if-none-match", &etag), ("accept-language", "kk")])
        .await;
    assert_eq!(kk.status, 200);
    assert_ne!(kk.header("etag"), Some(etag.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn language_follows_accept_language_weights_and_lang_overrides() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let text = |r: Resp| r.json()["userMessage"].as_str().unwrap().to_string();
    assert_eq!(
        text(server.get("/", &[("accept-language", "kk-KZ")]).await),
        "Жұмыс 14:00-ге дейін"
    );
    assert_eq!(
        text(server.get("/", &[("accept-language", "ru-RU,ru;q=0.9,lv;q=0.8")]).await),
        "Darbi līdz 14:00"
    );
    assert_eq!(
        text(server.get("/", &[("accept-language", "kk;q=0.2, lv;q=0.7")]).await),
        "Darbi līdz 14:00"
    );
    assert_eq!(
        text(server.get("/", &[("accept-language", "en-US")]).await),
        "Works until 14:00"
    );
    assert_eq!(
        text(server.get("/", &[("accept-language", "de")]).await),
        "Идут работы до 14:00"
    );
    assert_eq!(
        text(server.get("/?lang=lv", &[("accept-language", "kk")]).await),
        "Darbi līdz 14:00"
    );
    assert_eq!(
        text(server.get("/message.json?lang=kk-KZ", &[]).await),
        "Жұмыс 14:00-ге дейін"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_vary_without_translations() {
    let server = TestServer::start(Some(r#"{"userMessage":"x"}"#), |_| {}).await;
    let r = server.get("/", &[("accept-language", "kk")]).await;
    assert_eq!(r.header("vary"), None);
    assert_eq!(r.json()["userMessage"], "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_switches_at_expires_without_a_file_event() {
    let expires = Utc::now() + chrono::Duration::milliseconds(2000);
    let doc = format!(
        r#"{{"userMessage":"short outage","expires":"{}"}}"#,
        expires.to_rfc3339()
    );
    let server = TestServer::start(Some(&doc), |_| {}).await;
    let first = server.get("/", &[]).await;
    assert_eq!(first.json()["userMessage"], "short outage");
    let max_age: u64 = first
        .header("cache-control")
        .unwrap()
        .trim_start_matches("max-age=")
        .parse()
        .unwrap();
    assert!(max_age <= 2, "max-age {max_age} reaches past expires");

    let deadline = Instant::now() + Duration::from_secs(6);
    let mut switched = false;
    while Instant::now() < deadline && !switched {
        let sent = Utc::now();
        let r = server.get("/", &[]).await;
        let received = Utc::now();
        let text = r.json()["userMessage"].as_str().unwrap().to_string();
        if received < expires {
            assert_eq!(text, "short outage", "switched before expires");
        }
        if sent >= expires {
            assert_eq!(text, "", "still served after expires");
            assert_eq!(r.text(), r#"{"userMessage":""}"#);
            switched = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(switched, "the message never expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_message_is_not_served_and_caching_stops_at_starts() {
    let doc = format!(
        r#"{{"userMessage":"planned","starts":"{}","expires":"{}"}}"#,
        in_secs(10),
        in_secs(3600)
    );
    let server = TestServer::start(Some(&doc), |_| {}).await;
    let r = server.get("/", &[]).await;
    assert_eq!(r.text(), r#"{"userMessage":""}"#);
    let max_age: u64 = r
        .header("cache-control")
        .unwrap()
        .trim_start_matches("max-age=")
        .parse()
        .unwrap();
    assert!(max_age <= 10, "max-age {max_age} hides the start");
    let health = server.get("/healthz", &[]).await.json();
    assert_eq!(health["state"], "scheduled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_is_capped_by_configuration() {
    let server = TestServer::start(Some(DOC), |c| c.max_age = 7).await;
    assert_eq!(server.get("/", &[]).await.header("cache-control"), Some("max-age=7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_with_a_body_is_answered_like_get() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let details = Bytes::from(r#"{"error":"server unavailable","infobase":"erp"}"#);
    for h2 in [false, true] {
        let r = server
            .send(
                "POST",
                "/",
                &[("content-type", "application/json")],
                details.clone(),
                h2,
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["userMessage"], "Идут работы до 14:00");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_post_gets_413_while_another_connection_is_served() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    // Connection A: declares a 1 MiB body and sends only part of it.
    let mut a = tls_connect(server.https, &server.pki.ca, false).await;
    a.write_all(b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1048576\r\n\r\n")
        .await
        .unwrap();
    a.write_all(&[b'x'; 1024]).await.unwrap();
    // Connection B is served meanwhile.
    let b = server.get("/", &[]).await;
    assert_eq!(b.status, 200);
    let mut head = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), a.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    // A chunked body without a declared length is cut at the limit too.
    let big = Bytes::from(vec![b'y'; 70 * 1024]);
    let mut c = tls_connect(server.https, &server.pki.ca, false).await;
    c.write_all(b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    c.write_all(format!("{:x}\r\n", big.len()).as_bytes()).await.unwrap();
    let _ = c.write_all(&big).await;
    let mut head = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 413"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_405_and_json_404() {
    let server = TestServer::start(Some(DOC), |c| {
        c.cors_origin = http::HeaderValue::from_static("https://1c.example")
    })
    .await;
    let pre = server
        .send(
            "OPTIONS",
            "/",
            &[
                ("origin", "https://1c.example"),
                ("access-control-request-method", "POST"),
            ],
            Bytes::new(),
            false,
        )
        .await;
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("https://1c.example"));
    assert_eq!(
        pre.header("access-control-allow-methods"),
        Some("GET, HEAD, POST, OPTIONS")
    );
    let get = server.get("/", &[]).await;
    assert_eq!(get.header("access-control-allow-origin"), Some("https://1c.example"));
    assert_eq!(get.header("vary"), Some("Accept-Language, Origin"));

    let del = server.send("DELETE", "/", &[], Bytes::new(), false).await;
    assert_eq!(del.status, 405);
    assert_eq!(del.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
    assert_eq!(del.json()["error"], "method not allowed");
    let put = server.send("PUT", "/healthz", &[], Bytes::new(), false).await;
    assert_eq!(put.status, 405);
    assert_eq!(put.header("allow"), Some("GET, HEAD, OPTIONS"));

    let missing = server.get("/nope?x=1", &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(missing.json()["path"], "/nope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_state_source_and_reload_errors() {
    let server = TestServer::start(Some(DOC), |c| c.health_details = true).await;
    let h = server.get("/healthz", &[]).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.header("cache-control"), Some("no-store"));
    let h = h.json();
    assert_eq!(h["state"], "active");
    assert_eq!(h["source"], server.message.display().to_string());
    assert!(h["loaded_at"].is_string());
    assert!(h["last_reload_error"].is_null());

    std::fs::write(&server.message, "{\"userMessage\": \"broken\",\n  oops}").unwrap();
    let error = wait_for(Duration::from_secs(10), "the reload error in /healthz", || async {
        let h = server.get("/healthz", &[]).await.json();
        h["last_reload_error"].as_str().map(str::to_string)
    })
    .await;
    assert!(error.contains("line 2, column 3"), "{error}");
    assert_eq!(server.get("/", &[]).await.json()["userMessage"], "Идут работы до 14:00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_empty_documents_report_their_state() {
    let doc = format!(r#"{{"userMessage":"old","expires":"{}"}}"#, in_secs(-60));
    let server = TestServer::start(Some(&doc), |_| {}).await;
    assert_eq!(server.get("/", &[]).await.text(), r#"{"userMessage":""}"#);
    assert_eq!(server.get("/healthz", &[]).await.json()["state"], "expired");
    let empty = TestServer::start(Some("{}"), |_| {}).await;
    assert_eq!(empty.get("/", &[]).await.text(), r#"{"userMessage":""}"#);
    assert_eq!(empty.get("/healthz", &[]).await.json()["state"], "none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_at_start_serves_no_message_until_it_appears() {
    let server = TestServer::start(None, |_| {}).await;
    assert_eq!(server.get("/", &[]).await.text(), r#"{"userMessage":""}"#);
    let h = server.get("/healthz", &[]).await.json();
    assert_eq!(h["state"], "none");
    assert_eq!(h["file_missing"], true);
    std::fs::write(&server.message, r#"{"userMessage":"now here"}"#).unwrap();
    wait_for(Duration::from_secs(10), "the new file to be served", || async {
        (server.get("/", &[]).await.json()["userMessage"] == "now here").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_header_is_cut_off_by_the_timeout() {
    let server = TestServer::start(Some(DOC), |c| c.header_timeout = Duration::from_millis(500)).await;
    let mut slow = tls_connect(server.https, &server.pki.ca, false).await;
    slow.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 1024];
    // The server closes (possibly after a 408); it never answers 200.
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut got = Vec::new();
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the slow connection is closed");
    assert!(!String::from_utf8_lossy(&read).contains("200 OK"));
    assert!(started.elapsed() >= Duration::from_millis(400));
    // Others are still served.
    assert_eq!(server.get("/", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_the_request_in_flight_and_refuses_new_ones() {
    let mut server = TestServer::start(Some(DOC), |_| {}).await;
    let mut a = tls_connect(server.https, &server.pki.ca, false).await;
    a.write_all(b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 10\r\n\r\n12345")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (stop, task) = server.take_task();
    stop.send(()).unwrap();
    // New connections are refused once the listener is closed.
    let addr = server.https;
    wait_for(Duration::from_secs(5), "the listener to close", || async move {
        tokio::net::TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
    a.write_all(b"67890").await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), a.read_to_end(&mut response))
        .await
        .unwrap()
        .ok();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("Идут работы до 14:00"));
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("run returns")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_listener_serves_without_hsts() {
    let server = TestServer::start(Some(DOC), |c| c.http_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let r = http_get(server.http.unwrap(), "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["userMessage"], "Идут работы до 14:00");
    assert_eq!(r.header("strict-transport-security"), None);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_queues_clients_instead_of_failing_them() {
    let server = TestServer::start(Some(DOC), |c| c.max_connections = 1).await;
    let held = tls_connect(server.https, &server.pki.ca, false).await;
    let https = server.https;
    let ca = server.pki.ca.clone();
    let waiting = tokio::spawn(async move {
        let req = http::Request::get("/")
            .header("host", "x")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        request(https, &ca, req, false).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a second connection was served beyond the limit"
    );
    drop(held);
    let r = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_at_start_serves_no_message_and_reports_why() {
    let server = TestServer::start(Some("{\"userMessage\": \"x\",}"), |c| c.health_details = true).await;
    assert_eq!(server.get("/", &[]).await.text(), r#"{"userMessage":""}"#);
    let h = server.get("/healthz", &[]).await.json();
    assert_eq!(h["state"], "none");
    assert!(
        h["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("line 1, column 21: trailing comma"),
        "{h}"
    );
    std::fs::write(&server.message, r#"{"userMessage":"valid now"}"#).unwrap();
    wait_for(Duration::from_secs(10), "the corrected file to be served", || async {
        (server.get("/", &[]).await.json()["userMessage"] == "valid now").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_headers_are_refused() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let big = "x".repeat(v8help::server::MAX_HEADER_BYTES + 1024);
    let mut c = tls_connect(server.https, &server.pki.ca, false).await;
    c.write_all(format!("GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nx-filler: {big}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut response))
        .await
        .expect("closed");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    // A normal request on another connection is still served.
    assert_eq!(server.get("/", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_tls_handshake_is_cut_off() {
    let server = TestServer::start(Some(DOC), |c| c.handshake_timeout = Duration::from_millis(300)).await;
    let mut silent = tokio::net::TcpStream::connect(server.https).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("the server hangs up");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the server answered a silent client: {n:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    let metrics = server.get("/metrics", &[]).await.text().to_string();
    assert!(
        metrics.contains("v8help_tls_handshake_failures_total{reason=\"timeout\"} 1"),
        "{metrics}"
    );
}
