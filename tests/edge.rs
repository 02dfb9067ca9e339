//! The edge as an attacker or an unlucky admin meets it: a message file that blocks, quiet
//! connections, hostile flags, documents and headers, error answers a client must receive,
//! and the small protocol and validation gaps. Each test is named after what broke.

mod common;

use std::ffi::OsStr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::tools::Suite;
use common::*;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use v8help::snapshot::Snapshot;
use v8help::time::Zone;

const DOC: &str = r#"{"userMessage": "Работы до 14:00", "expires": "2099-01-01T14:00:00Z", "userMessages": {"kk": "Жұмыс", "lv": "Darbi"}}"#;

/// Reads until the peer closes (or errors); `None` if it is still open after `limit`.
async fn closed_within(stream: &mut (impl AsyncRead + Unpin), limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|_| got)
}

fn mkfifo(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

// 1. A message file whose read blocks ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_place_of_the_message_file_freezes_nothing() {
    let mut server = TestServer::start(Some(DOC), |c| {
        c.health_details = true;
        c.shutdown_timeout = Duration::from_secs(2);
    })
    .await;
    mkfifo(&server.message);
    server.reload.notify_one();
    let error = wait_for(Duration::from_secs(10), "the FIFO refused in /healthz", || async {
        // Every answer comes quickly, whatever the reload is doing.
        let h = tokio::time::timeout(Duration::from_secs(2), server.get("/healthz", &[]))
            .await
            .expect("/healthz answers within 2 s")
            .json();
        h["last_reload_error"].as_str().map(str::to_string)
    })
    .await;
    assert!(error.contains("not a regular file"), "{error}");
    assert!(error.contains(&server.message.display().to_string()), "{error}");
    for path in ["/healthz", "/metrics", "/"] {
        let r = tokio::time::timeout(Duration::from_secs(2), server.get(path, &[]))
            .await
            .unwrap_or_else(|_| panic!("{path} answers within 2 s"));
        assert_eq!(r.status, 200, "{path}");
    }
    assert_eq!(server.get("/", &[]).await.json()["userMessage"], "Работы до 14:00");
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[test]
fn sigterm_stops_the_service_while_the_message_file_is_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("message.json");
    std::fs::write(&message, DOC).unwrap();
    let server = Binary::serve(
        &[
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--message"),
            message.as_os_str(),
            OsStr::new("--shutdown-timeout"),
            OsStr::new("1"),
        ],
        &[],
    );
    mkfifo(&message);
    server.signal("HUP");
    server.wait_log("not a regular file", Duration::from_secs(10));
    // Started with the FIFO already there, a second service comes up as well.
    let second = Binary::serve(
        &[
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--message"),
            message.as_os_str(),
        ],
        &[],
    );
    drop(second);
    server.signal("TERM");
    let started = Instant::now();
    let mut process = server.process;
    let exited = common::wait::try_wait_blocking(Duration::from_secs(5), common::wait::POLL, || {
        process.child.try_wait().ok().flatten()
    });
    let status = exited.expect("v8help exits within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

// 2. Quiet connections ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_connections_are_closed_and_do_not_lock_out_new_clients() {
    let server = TestServer::start(Some(DOC), |c| {
        c.http_listen = Some("127.0.0.1:0".parse().unwrap());
        c.max_connections = 4;
        c.max_connections_per_address = 4;
        c.header_timeout = Duration::from_millis(500);
        c.keepalive_timeout = Duration::from_millis(500);
    })
    .await;
    let http = server.http.unwrap();
    // Silent plain HTTP, a partial HTTP/2 preface, TLS done with ALPN h2 and nothing after,
    // TLS with HTTP/1.1 and nothing after: all four slots taken.
    let mut plain = tokio::net::TcpStream::connect(http).await.unwrap();
    let mut preface = tokio::net::TcpStream::connect(http).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let mut h2 = tls_connect(server.https, &server.pki.ca, true).await;
    let mut h1 = tls_connect(server.https, &server.pki.ca, false).await;
    let started = Instant::now();
    for (name, closed) in [
        (
            "silent plain HTTP",
            closed_within(&mut plain, Duration::from_secs(5)).await,
        ),
        (
            "partial HTTP/2 preface",
            closed_within(&mut preface, Duration::from_secs(5)).await,
        ),
        ("silent TLS h2", closed_within(&mut h2, Duration::from_secs(5)).await),
        (
            "silent TLS http/1.1",
            closed_within(&mut h1, Duration::from_secs(5)).await,
        ),
    ] {
        let got = closed.unwrap_or_else(|| panic!("the {name} connection is still open after 5 s"));
        assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "{name}");
    }
    assert!(started.elapsed() >= Duration::from_millis(400));
    let r = tokio::time::timeout(Duration::from_secs(5), server.get("/", &[]))
        .await
        .expect("a new client is served once the quiet ones are gone");
    assert_eq!(r.status, 200);
    let metrics = server.get("/metrics", &[]).await.text().to_string();
    // hyper's own header timeout (the same 500 ms) may close an HTTP/1.1 one first.
    let closed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("v8help_connections_closed_quiet_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!((2..=4).contains(&closed), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keepalive_connection_is_closed_on_both_protocols_even_answering_pings() {
    let server = TestServer::start(Some(DOC), |c| c.keepalive_timeout = Duration::from_millis(500)).await;
    // HTTP/2: one request, then idle, the client sending PINGs every 100 ms.
    let io = TokioIo::new(tls_connect(server.https, &server.pki.ca, true).await);
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_while_idle(true);
    let (mut sender, conn) = builder.handshake(io).await.unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 200);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the idle HTTP/2 connection is closed (GOAWAY) within 5 s")
        .unwrap()
        .ok();
    assert!(started.elapsed() >= Duration::from_millis(400));

    // HTTP/1.1: one request answered, then the idle connection is closed.
    let mut h1 = tls_connect(server.https, &server.pki.ca, false).await;
    h1.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let got = closed_within(&mut h1, Duration::from_secs(5))
        .await
        .expect("the idle HTTP/1.1 connection is closed within 5 s");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_address_cap_are_closed_at_accept() {
    let server = TestServer::start(Some(DOC), |c| c.max_connections_per_address = 2).await;
    let a = tls_connect(server.https, &server.pki.ca, false).await;
    let b = tls_connect(server.https, &server.pki.ca, false).await;
    let mut third = tokio::net::TcpStream::connect(server.https).await.unwrap();
    let closed = closed_within(&mut third, Duration::from_secs(2)).await;
    assert!(closed.is_some(), "a third connection from one address was kept");
    drop((a, b));
    let status = wait_for(Duration::from_secs(5), "a connection once the others closed", || {
        try_get(&server)
    })
    .await;
    assert_eq!(status, 200);
    let metrics = server.get("/metrics", &[]).await.text().to_string();
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("v8help_connections_refused_per_address_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(refused >= 1, "{metrics}");
}

/// `GET /` on a new TLS connection; `None` if the connection is refused or reset.
async fn try_get(server: &TestServer) -> Option<u16> {
    let tcp = tokio::net::TcpStream::connect(server.https).await.ok()?;
    let name = rustls::pki_types::ServerName::IpAddress(server.https.ip().into());
    let tls = tokio_rustls::TlsConnector::from(client_config(&server.pki.ca, false))
        .connect(name, tcp)
        .await
        .ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.ok()?;
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    Some(sender.send_request(req).await.ok()?.status().as_u16())
}

// 3. Flags ---------------------------------------------------------------------------------

#[test]
fn out_of_range_settings_are_one_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--max-age", "31536000"], "--max-age"),
        (&["--max-age", "4000000000"], "--max-age"),
        (&["--max-connections", "18446744073709551615"], "--max-connections"),
        (&["--max-connections", "0"], "--max-connections"),
        (&["--recheck-interval", "0.000001"], "--recheck-interval"),
        (&["--keepalive-timeout", "0"], "--keepalive-timeout"),
        (&["--header-timeout", "100000"], "--header-timeout"),
        (&["--shutdown-timeout", "inf"], "--shutdown-timeout"),
        (
            &["--max-connections", "10", "--max-connections-per-address", "11"],
            "--max-connections-per-address",
        ),
    ];
    for (args, flag) in cases {
        let mut child = common::binary::command()
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(*args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let exited = common::wait::try_wait_blocking(Duration::from_secs(10), common::wait::POLL, || {
            child.try_wait().ok().flatten()
        });
        if exited.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} was accepted: the service started");
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(flag)).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_max_age_is_served_without_a_table_of_headers() {
    let server = TestServer::start(Some(DOC), |c| c.max_age = v8help::limits::MAX_MAX_AGE).await;
    let r = server.get("/", &[]).await;
    assert_eq!(r.header("cache-control"), Some("max-age=86400"));
    // Near a transition the value is rendered on the spot.
    std::fs::write(
        &server.message,
        format!(r#"{{"userMessage":"x","expires":"{}"}}"#, in_secs(100)),
    )
    .unwrap();
    let max_age = wait_for(Duration::from_secs(10), "the new expiry", || async {
        let r = server.get("/", &[]).await;
        (r.json()["userMessage"] == "x").then(|| r.header("cache-control").unwrap().to_string())
    })
    .await;
    let seconds: u32 = max_age.strip_prefix("max-age=").unwrap().parse().unwrap();
    assert!((90..=100).contains(&seconds), "{max_age}");
}

// 4. Many languages ------------------------------------------------------------------------

fn with_languages(n: usize, pass_through_bytes: usize) -> String {
    let langs: Vec<String> = (0..n).map(|i| format!("\"x-{i}\":\"t{i}\"")).collect();
    format!(
        r#"{{"userMessage": "x", "userMessages": {{{}}}, "blob": "{}"}}"#,
        langs.join(","),
        "b".repeat(pass_through_bytes)
    )
}

#[test]
fn more_than_64_languages_are_refused_naming_the_field() {
    let doc = with_languages(3000, 100);
    let err = v8help::document::Document::parse(doc.as_bytes(), Zone::UTC).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1: field \"userMessages\": has 3000 languages; the limit is 64"
    );
    assert!(v8help::document::Document::parse(with_languages(64, 100).as_bytes(), Zone::UTC).is_ok());
}

#[test]
fn the_worst_valid_document_is_rendered_in_a_few_megabytes() {
    // 64 languages and the rest of the 64 KiB in one pass-through field.
    let mut doc = with_languages(64, 0);
    let room = v8help::document::MAX_FILE_BYTES - doc.len();
    doc = with_languages(64, room);
    assert_eq!(doc.len(), v8help::document::MAX_FILE_BYTES);
    let snapshot = Snapshot::new(v8help::document::Document::parse(doc.as_bytes(), Zone::UTC).unwrap());
    let bytes = snapshot.rendered_bytes();
    eprintln!("worst valid document: {bytes} bytes of rendered bodies");
    assert!(bytes <= 65 * v8help::document::MAX_FILE_BYTES, "{bytes}");
}

// 5. Accept-Language -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_kb_accept_language_chooses_as_its_first_32_entries_do() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    // 32 entries no translation matches, then thousands naming one that does.
    let first: Vec<String> = (0..32).map(|i| format!("q{i};q=0.9")).collect();
    let first = first.join(",");
    let mut long = first.clone();
    while long.len() < 15 * 1024 {
        long.push_str(",kk");
    }
    let a = server.get("/", &[("accept-language", &first)]).await;
    let b = server.get("/", &[("accept-language", &long)]).await;
    assert_eq!(a.status, 200);
    assert_eq!(b.status, 200);
    assert_eq!(b.json()["userMessage"], "Работы до 14:00");
    assert_eq!(a.body, b.body);
    // Within the first 32 entries the choice is still by weight.
    let c = server
        .get("/", &[("accept-language", "de;q=0.1, kk;q=0.5, lv;q=0.9")])
        .await;
    assert_eq!(c.json()["userMessage"], "Darbi");
}

// 6. Error answers the client receives -----------------------------------------------------

const CURL: Suite = Suite {
    name: "curl_receives_error_answers",
    test: "edge",
    packages: "curl",
};

/// `curl` sending `body_bytes` with `method` to `url`; the status it printed and its exit code.
fn curl(server: &TestServer, args: &[&str], method: &str, url: &str, body_bytes: usize) -> (String, i32) {
    let curl = CURL.tool("curl").expect("checked by the caller");
    let body = server.dir.path().join(format!("body-{body_bytes}"));
    std::fs::write(&body, vec![b'a'; body_bytes]).unwrap();
    let out = Command::new(curl)
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"])
        .arg("--cacert")
        .arg(&server.pki.ca_path)
        .args(["-X", method, "--data-binary"])
        .arg(format!("@{}", body.display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_receives_error_answers_while_still_sending_its_body() {
    if CURL.tool("curl").is_none() {
        return;
    }
    let server = TestServer::start(Some(DOC), |c| c.http_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let https = format!("https://127.0.0.1:{}", server.https.port());
    let http = format!("http://127.0.0.1:{}", server.http.unwrap().port());
    let cases: Vec<(&[&str], &str, String, usize, &str)> = vec![
        (
            &["-H", "Expect:", "--http1.1"],
            "PUT",
            format!("{https}/"),
            60_000,
            "405",
        ),
        (
            &["-H", "Expect:", "--http1.1"],
            "POST",
            format!("{https}/nope"),
            60_000,
            "404",
        ),
        (
            &["-H", "Expect:", "--http1.1"],
            "POST",
            format!("{https}/healthz"),
            60_000,
            "405",
        ),
        (&["-H", "Expect:"], "POST", format!("{http}/nope"), 60_000, "404"),
        (
            &["-H", "Expect:", "--http1.1"],
            "POST",
            format!("{https}/"),
            200_000,
            "413",
        ),
        (&["--http2"], "PUT", format!("{https}/"), 60_000, "405"),
        (&["--http2"], "POST", format!("{https}/"), 200_000, "413"),
        (&["--http2"], "POST", format!("{https}/nope"), 60_000, "404"),
    ];
    for (args, method, url, bytes, expected) in cases {
        for round in 0..5 {
            let server = &server;
            let url2 = url.clone();
            let (status, code) = tokio::task::block_in_place(|| curl(server, args, method, &url2, bytes));
            assert_eq!(
                (status.as_str(), code),
                (expected, 0),
                "{method} {url} {args:?} {bytes} bytes, round {round}"
            );
        }
    }
    // The connection stays usable after a drained error answer.
    let r = server.get("/", &[]).await;
    assert_eq!(r.status, 200);
}

// 7. The smaller ones ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_without_host_or_with_two_is_answered_400() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    for (request, expected) in [
        ("GET / HTTP/1.1\r\nconnection: close\r\n\r\n", "HTTP/1.1 400"),
        (
            "GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n",
            "HTTP/1.1 400",
        ),
        ("GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200"),
        ("GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n", "HTTP/1.1 200"),
    ] {
        let mut c = tls_connect(server.https, &server.pki.ca, false).await;
        c.write_all(request.as_bytes()).await.unwrap();
        let got = closed_within(&mut c, Duration::from_secs(5))
            .await
            .expect("answered and closed");
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with(expected), "{request:?}: {got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_numbers_keep_their_digits() {
    let doc = r#"{"userMessage": "x", "big": 123456789012345678901234567890, "exact": 0.1000000000000000055511151231257827,
      "nested": {"n": [1E400000, 1.0]}}"#;
    // 1E400000 is out of f64's range: such a document is refused, which says so.
    let err = v8help::document::Document::parse(doc.as_bytes(), Zone::UTC).unwrap_err();
    assert!(err.to_string().contains("number out of range"), "{err}");
    let doc = doc.replace("1E400000", "1E400");
    let doc = doc.replace("1E400", "1e300");
    let server = TestServer::start(Some(&doc), |_| {}).await;
    let r = server.get("/", &[]).await;
    assert_eq!(
        r.text(),
        r#"{"userMessage":"x","big":123456789012345678901234567890,"exact":0.1000000000000000055511151231257827,"nested":{"n":[1e300,1.0]}}"#
    );
}

#[test]
fn a_repeated_user_message_is_refused_naming_its_line() {
    let doc = "{\n  \"userMessage\": \"old\",\n  \"expires\": \"2099-01-01T00:00:00Z\",\n  \"userMessage\": \"new\"\n}";
    let err = v8help::document::Document::parse(doc.as_bytes(), Zone::UTC).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 4: field \"userMessage\": is repeated (first on line 2); only one may be given, or the last would silently win"
    );
    let nested = r#"{"userMessage": "x", "userMessages": {"kk": "a", "kk": "b"}}"#;
    let err = v8help::document::Document::parse(nested.as_bytes(), Zone::UTC).unwrap_err();
    assert!(
        err.to_string().contains("field \"userMessages.kk\": is repeated"),
        "{err}"
    );
}

#[test]
fn help_url_refuses_userinfo_backslashes_and_invisible_characters() {
    for (url, problem) in [
        ("https://@evil.example", "user information"),
        ("https://help.example@evil.example/x", "user information"),
        ("https://help.example\\\\@evil.example/", "backslash"),
        ("https://help.example/\\\\x", "backslash"),
        ("https://help.example\u{200B}.evil/", "U+200B"),
        ("https://help.example/\u{202E}fdp.exe", "U+202E"),
        ("https://help.example/\u{2066}x", "U+2066"),
        ("https://help.example/\u{FEFF}", "U+FEFF"),
    ] {
        let doc = format!(r#"{{"userMessage": "x", "helpUrl": "{url}"}}"#);
        let err = v8help::document::Document::parse(doc.as_bytes(), Zone::UTC)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("field \"helpUrl\"") && err.contains(problem),
            "{url:?}: {err}"
        );
    }
    let ok = r#"{"userMessage": "x", "helpUrl": "https://help.example/a?b=c@d#e"}"#;
    assert!(v8help::document::Document::parse(ok.as_bytes(), Zone::UTC).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_file_is_reported_with_its_real_size() {
    let server = TestServer::start(Some(DOC), |c| c.health_details = true).await;
    let staged = server.dir.path().join("staged.json");
    std::fs::write(&staged, vec![b' '; 10 * 1024 * 1024]).unwrap();
    std::fs::rename(&staged, &server.message).unwrap();
    let error = wait_for(Duration::from_secs(10), "the size error", || async {
        let h = server.get("/healthz", &[]).await.json();
        h["last_reload_error"].as_str().map(str::to_string)
    })
    .await;
    assert!(
        error.contains("file is 10485760 bytes; a message document may be at most 65536 bytes"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_health_and_metrics_show_state_only_unless_health_details() {
    let broken = "{\"userMessage\": \"secret-token-123\",\n oops}";
    let public = TestServer::start(Some(broken), |_| {}).await;
    let detailed = TestServer::start(Some(broken), |c| c.health_details = true).await;
    let dir = public.message.parent().unwrap().display().to_string();
    for path in ["/healthz", "/metrics"] {
        let text = public.get(path, &[]).await.text().to_string();
        assert!(!text.contains(&dir), "{path} shows the path: {text}");
        assert!(!text.contains("secret-token"), "{path} shows the content: {text}");
        assert!(!text.contains("line 2"), "{path} shows the error: {text}");
    }
    let h = public.get("/healthz", &[]).await.json();
    assert_eq!(h["state"], "none");
    assert_eq!(h["last_reload_failed"], true);
    let d = detailed.get("/healthz", &[]).await.json();
    assert_eq!(d["source"], detailed.message.display().to_string());
    assert!(
        d["last_reload_error"].as_str().unwrap().contains("line 2, column 2"),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_shows_health_details_to_logged_in_users() {
    use base64::Engine as _;
    let broken = "{\"userMessage\": \"x\",\n oops}";
    let server = TestServer::start(Some(broken), |_| {}).await;
    let users = common::console::users_file(server.dir.path());
    let store = v8help::store::open(&format!("sqlite:{}", server.dir.path().join("r.db").display())).unwrap();
    let marks: std::sync::Arc<dyn v8help::console::MarkGroup> =
        std::sync::Arc::new(v8help::console::StoreMarks(store.clone()));
    let console = v8help::console::Console::new(store, marks, v8help::users::UsersFile::open(users).unwrap());
    // The same report the serving process hands its console.
    let report_of = |server: &TestServer| {
        let config = v8help::config::ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls_files: Some((server.pki.cert_path.clone(), server.pki.key_path.clone())),
            message: server.message.clone(),
            zone: Zone::UTC,
            ..Default::default()
        };
        v8help::service::Service::bind(config).unwrap().health_report()
    };
    console.show_health(report_of(&server));
    let certificate =
        v8help::server::tls::Certificate::load(Some((server.pki.cert_path.clone(), server.pki.key_path.clone())))
            .unwrap();
    let admin = v8help::console::ConsoleServer::bind("127.0.0.1:0".parse().unwrap(), certificate).unwrap();
    let addr = admin.addr().unwrap();
    tokio::spawn(admin.run(console, Duration::from_secs(1), std::future::pending()));
    let get = |auth: Option<String>| {
        let mut req = http::Request::get("/api/health").header("host", "127.0.0.1");
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        request(addr, &server.pki.ca, req.body(Full::new(Bytes::new())).unwrap(), false)
    };
    assert_eq!(get(None).await.status, 401);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            common::console::USER,
            common::console::PASSWORD
        ))
    );
    let h = get(Some(basic)).await.json();
    assert_eq!(h["source"], server.message.display().to_string());
    assert!(
        h["last_reload_error"].as_str().unwrap().contains("line 2, column 2"),
        "{h}"
    );
    // The public listener of the same service says state only.
    let public = server.get("/healthz", &[]).await.json();
    assert!(public.get("last_reload_error").is_none(), "{public}");
    assert_eq!(public["last_reload_failed"], true);
}
