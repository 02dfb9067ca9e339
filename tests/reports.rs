//! The error-registration service as 1C clients use it, over real HTTPS and plain HTTP:
//! getInfo answers (rules, hot reload, known groups), pushReport (multipart and raw, stored
//! byte-for-byte and grouped), refused archives (zip bombs, traversal, too many entries,
//! too large), startup-error POSTs as login-failure events, the real client captures, and
//! the figures in /metrics.

mod common;
use common::reports as common_reports;

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use common::wait_for;
use common_reports::{ReportServer, http_post, metric, multipart, report_archive, report_json, zip};
use http::StatusCode;
use serde_json::json;
use v8help::store::{GroupQuery, Mark, MarkState};

fn store(rs: &ReportServer) -> std::sync::Arc<dyn v8help::store::Store> {
    rs.server.reports.clone().expect("reports are on").store.clone()
}

#[tokio::test]
async fn getinfo_answers_send_by_default_on_both_listeners_whatever_the_slashes() {
    let rs = ReportServer::start(|_| {}).await;
    let body =
        r#"{"configName":"БухгалтерияПредприятия","appVersion":"8.3.24.1467","platformInterfaceLanguageCode":"ru"}"#;
    for path in ["/reports/getInfo", "/reports//getInfo", "/reportsgetInfo"] {
        let r = rs.post(path, &[("content-type", "application/json")], body).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        let answer = r.json();
        assert_eq!(answer["needSendReport"], true);
        assert!(
            answer["userMessage"].as_str().unwrap().contains("поддержки"),
            "{answer}"
        );
        assert_eq!(answer["dumpType"], 0);
    }
    let r = http_post(
        rs.http(),
        "/reports/getInfo",
        &[],
        r#"{"platformInterfaceLanguageCode":"en"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["userMessage"].as_str().unwrap().contains("support"));
    // Unreadable JSON still gets an answer: the client is waiting.
    let r = rs.post("/reports/getInfo", &[], "{not json").await;
    assert_eq!(r.json()["needSendReport"], true);
    let r = rs.server.get("/reports/getInfo", &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn rules_decide_by_version_and_language_and_a_bad_edit_keeps_the_last_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"old\"\napp_version = \"8.3.18\"\nsend = false\ndump_type = \"1\"\n\
         message = { ru = \"Обновите платформу\", kk = \"Платформаны жаңартыңыз\", default = \"Update\" }\n",
    )
    .unwrap();
    let path = rules.clone();
    let rs = ReportServer::start(move |c| c.rules = Some(path)).await;
    let ask = |lang: &'static str| {
        let rs = &rs;
        async move {
            let body = format!(r#"{{"appVersion":"8.3.18.1128","platformInterfaceLanguageCode":"{lang}"}}"#);
            rs.post("/reports/getInfo", &[], body).await.json()
        }
    };
    let kk = ask("kk").await;
    assert_eq!(kk["needSendReport"], false);
    assert_eq!(kk["userMessage"], "Платформаны жаңартыңыз");
    assert_eq!(kk["dumpType"], "1");
    assert_eq!(ask("hy").await["userMessage"], "Update");

    std::fs::write(&rules, "[[rule]]\napp_versoin = \"8.3.18\"\nsend = true\n").unwrap();
    rs.server.reload.notify_one();
    let reports = rs.server.reports.clone().unwrap();
    wait_for(Duration::from_secs(10), "the bad edit to be seen", || {
        let seen = reports.rules.last_error().is_some();
        async move { seen.then_some(()) }
    })
    .await;
    let error = reports.rules.last_error().unwrap().to_string();
    assert!(
        error.contains("rules.toml:2:") && error.contains("app_versoin"),
        "{error}"
    );
    assert_eq!(ask("kk").await["needSendReport"], false, "the last good rules stay");

    std::fs::write(&rules, "[default]\nsend = false\nmessage = { default = \"Not now\" }\n").unwrap();
    wait_for(Duration::from_secs(10), "the fixed rules to apply", || async {
        (ask("en").await["userMessage"] == "Not now").then_some(())
    })
    .await;
}

#[tokio::test]
async fn reports_are_stored_byte_for_byte_grouped_and_readable_back() {
    let rs = ReportServer::start(|_| {}).await;
    let first = report_archive(&report_json(&[]));
    let second = report_archive(&report_json(&[
        ("/id", json!("00000000-0000-4000-8000-000000000002")),
        ("/sessionInfo/userName", json!("Петров")),
        ("/clientInfo/systemInfo/clientID", json!("another-machine")),
        ("/clientInfo/appVersion", json!("8.3.25.1000")),
    ]));
    // multipart over HTTPS with the field name the platform uses, raw ZIP over plain HTTP
    let (ct, body) = multipart("report", "report.zip", &first);
    let r = rs.post("/reports/pushReport", &[("content-type", &ct)], body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    let r = http_post(
        rs.http(),
        "/reports//pushReport",
        &[("content-type", "application/octet-stream")],
        second.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));

    let store = store(&rs);
    let groups = store.list_groups(GroupQuery::default()).await.unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let g = &groups[0];
    assert_eq!(g.key, "app:C0FFEE00C0FFEE00C0FFEE00C0FFEE00");
    assert_eq!((g.count, g.users, g.machines), (2, 2, 2));
    assert!(g.title.as_deref().unwrap().contains("Деление на 0"));
    assert_eq!(g.configs[0].name, "БухгалтерияПредприятия");
    assert_eq!(g.configs[0].version, "3.0.150.27");
    assert_eq!(g.platforms.len(), 2);

    let reports = store.group_reports(&g.key, 10).await.unwrap();
    assert_eq!(reports.len(), 2);
    let latest = &reports[0];
    assert_eq!(latest.fields.user_name.as_deref(), Some("Петров"));
    assert_eq!(&store.archive(latest.id).await.unwrap().unwrap()[..], &second[..]);
    let detail = store.report(reports[1].id).await.unwrap().unwrap();
    assert_eq!(
        &store.archive(detail.summary.id).await.unwrap().unwrap()[..],
        &first[..]
    );
    assert_eq!(
        detail.summary.fields.user_description.as_deref(),
        Some("Нажала «Провести» — и всё.")
    );
    assert_eq!(
        detail.report_json["additionalData"]["orderNumber"], 42,
        "unknown fields kept"
    );
    let names: Vec<&str> = detail.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["report.json", "screenshot.png", "log.txt"]);
    let png = store
        .archive_file(detail.summary.id, "screenshot.png")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&png[..], common_reports::PNG);
    assert_eq!(
        store.archive_file(detail.summary.id, "nothing.txt").await.unwrap(),
        None
    );
    let hours = store
        .reports_per_hour(&g.key, Utc::now() - chrono::Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(hours.iter().map(|b| b.count).sum::<u64>(), 2);
}

#[tokio::test]
async fn a_group_marked_known_answers_its_note_and_spares_the_upload() {
    let rs = ReportServer::start(|_| {}).await;
    let reports = rs.server.reports.clone().unwrap();
    let ask = r#"{"appStackHash":"c0ffee00c0ffee00c0ffee00c0ffee00","platformInterfaceLanguageCode":"ru"}"#;
    assert_eq!(
        rs.post("/reports/getInfo", &[], ask).await.json()["needSendReport"],
        true
    );
    let mark = Mark {
        state: MarkState::Known,
        note: "Известная ошибка, исправление в 3.0.151".into(),
        by: "support".into(),
        // the store keeps milliseconds
        at: Utc::now().trunc_subsecs(3),
    };
    reports
        .mark("app:C0FFEE00C0FFEE00C0FFEE00C0FFEE00", Some(mark.clone()))
        .await
        .unwrap();
    let answer = rs.post("/reports/getInfo", &[], ask).await.json();
    assert_eq!(answer["needSendReport"], false, "{answer}");
    assert_eq!(answer["userMessage"], mark.note);
    let marks = reports.store.marks().await.unwrap();
    assert_eq!(marks, vec![("app:C0FFEE00C0FFEE00C0FFEE00C0FFEE00".to_string(), mark)]);
    reports
        .mark("app:C0FFEE00C0FFEE00C0FFEE00C0FFEE00", None)
        .await
        .unwrap();
    assert_eq!(
        rs.post("/reports/getInfo", &[], ask).await.json()["needSendReport"],
        true
    );
    let scrape = rs.server.get("/metrics", &[]).await;
    assert_eq!(
        metric(scrape.text(), "v8help_getinfo_answers_total{decision=\"known\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(scrape.text(), "v8help_getinfo_answers_total{decision=\"send\"}"),
        Some(2.0)
    );
}

#[tokio::test]
async fn zip_bombs_traversal_too_many_entries_and_non_zips_are_refused_and_nothing_is_stored() {
    let rs = ReportServer::start(|_| {}).await;
    let json = serde_json::to_vec(&report_json(&[])).unwrap();
    let zeros = vec![0u8; 4 * 1024 * 1024];
    let bomb = zip(&[("report.json", &json), ("dump.dmp", &zeros)]);
    assert!(bomb.len() * 10 < zeros.len(), "the bomb expands more than 10x");
    let traversal = zip(&[("report.json", &json), ("../../etc/cron.d/evil", b"* * * * * root sh")]);
    let absolute = zip(&[("/etc/passwd", b"root::0:0")]);
    let names: Vec<String> = (0..1001).map(|i| format!("f{i}.txt")).collect();
    let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let many = zip(&many);
    let mut broken = report_archive(&report_json(&[]));
    let middle = broken.len() / 3;
    broken[middle..middle + 40].fill(0x55);
    for (what, archive, result) in [
        ("zip bomb", bomb, "zip_bomb"),
        ("traversal", traversal, "traversal"),
        ("absolute path", absolute, "traversal"),
        ("1001 entries", many, "zip_bomb"),
        ("not a zip", b"just some text".to_vec(), "bad_archive"),
        ("damaged", broken, "bad_archive"),
    ] {
        let before = metric(
            rs.server.get("/metrics", &[]).await.text(),
            &format!("v8help_reports_total{{result=\"{result}\"}}"),
        )
        .unwrap();
        let r = rs.post("/reports/pushReport", &[], archive).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
        let after = metric(
            rs.server.get("/metrics", &[]).await.text(),
            &format!("v8help_reports_total{{result=\"{result}\"}}"),
        )
        .unwrap();
        assert_eq!(after, before + 1.0, "{what} counted as {result}");
    }
    assert!(store(&rs).list_groups(GroupQuery::default()).await.unwrap().is_empty());
    assert_eq!(store(&rs).total_bytes().await.unwrap(), 0);
}

/// `len` bytes of xorshift noise, which deflate cannot shrink.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 2_463_534_242;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn a_report_over_the_size_limit_gets_413() {
    let rs = ReportServer::start(|c| c.max_size = 64 * 1024).await;
    // deflate cannot shrink noise below the limit
    let big = noise(100_000);
    let archive = zip(&[("report.json", b"{}"), ("big.bin", &big)]);
    assert!(archive.len() > 64 * 1024);
    let r = rs.post("/reports/pushReport", &[], archive).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let small = report_archive(&report_json(&[]));
    assert_eq!(rs.post("/reports/pushReport", &[], small).await.status, StatusCode::OK);
    let scrape = rs.server.get("/metrics", &[]).await;
    assert_eq!(
        metric(scrape.text(), "v8help_reports_total{result=\"too_large\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(scrape.text(), "v8help_reports_total{result=\"stored\"}"),
        Some(1.0)
    );
    assert!(metric(scrape.text(), "v8help_report_store_bytes").unwrap() > 0.0);
}

#[tokio::test]
async fn startup_error_posts_become_login_failure_events_and_the_message_is_still_answered() {
    let rs = ReportServer::start(|_| {}).await;
    let details = "Ошибка при выполнении операции с информационной базой\nсервер 1С:Предприятия не обнаружен";
    let r = rs
        .post(
            "/",
            &[("user-agent", "1CV8C/8.3.24.1467"), ("content-type", "text/plain")],
            details,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("userMessage").is_some(), "the message is answered");
    let r = http_post(rs.http(), "/message.json", &[("user-agent", "1CV8/8.3.24")], "second").await;
    assert_eq!(r.status, StatusCode::OK);
    let store = store(&rs);
    let since = Utc::now() - chrono::Duration::minutes(5);
    let events = wait_for(Duration::from_secs(10), "two login failures in the store", || {
        let store = store.clone();
        async move {
            let e = store.login_failures(since, 10).await.unwrap();
            (e.len() == 2).then_some(e)
        }
    })
    .await;
    let first = events
        .iter()
        .find(|e| e.body == details.as_bytes())
        .expect("the first body, as sent");
    assert_eq!(first.user_agent.as_deref(), Some("1CV8C/8.3.24.1467"));
    assert!(first.client_addr.as_deref().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(first.base, None);
    let per_minute = store.login_failures_per_minute(since).await.unwrap();
    assert_eq!(per_minute.iter().map(|b| b.count).sum::<u64>(), 2);
    let scrape = rs.server.get("/metrics", &[]).await;
    assert_eq!(
        metric(scrape.text(), "v8help_login_failure_events_total{fate=\"queued\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(scrape.text(), "v8help_login_failure_events_total{fate=\"dropped\"}"),
        Some(0.0)
    );
}

#[tokio::test]
async fn the_real_client_captures_are_taken() {
    let Some(dir) = common_reports::samples() else { return };
    let rs = ReportServer::start(|_| {}).await;
    let get_info = std::fs::read(dir.join("getInfo-8.3.18.json")).unwrap();
    let answer = rs.post("/reports/getInfo", &[], get_info).await.json();
    assert_eq!(answer["needSendReport"], true);
    assert!(
        answer["userMessage"].as_str().unwrap().contains("поддержки"),
        "ru, as the client asked"
    );

    let real = std::fs::read(dir.join("real-8.3.18.zip")).unwrap();
    let (ct, body) = multipart("report", "report.zip", &real);
    let r = rs.post("/reports/pushReport", &[("content-type", &ct)], body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    for name in [
        "report-55555555-09d5-47b8-bf19-e7672eda1111.json",
        "report-61001a5e-09d5-47b8-bf19-e7672eda10e5.json",
    ] {
        let json = std::fs::read(dir.join(name)).unwrap();
        let archive = zip(&[("report.json", &json), ("screenshot.png", common_reports::PNG)]);
        assert_eq!(
            rs.post("/reports/pushReport", &[], archive).await.status,
            StatusCode::OK,
            "{name}"
        );
    }
    let store = store(&rs);
    let groups = store.list_groups(GroupQuery::default()).await.unwrap();
    let total: u64 = groups.iter().map(|g| g.count).sum();
    assert_eq!(total, 3, "{groups:#?}");
    let mut found_real = false;
    for g in &groups {
        for r in store.group_reports(&g.key, 10).await.unwrap() {
            let archive = store.archive(r.id).await.unwrap().unwrap();
            if archive[..] == real[..] {
                found_real = true;
                assert_eq!(r.fields.app_version.as_deref(), Some("8.3.18.1128"));
                assert_eq!(r.fields.platform_type.as_deref(), Some("Windows_x86_64"));
                let detail = store.report(r.id).await.unwrap().unwrap();
                assert_eq!(detail.files.len(), 3);
                let shot = detail.summary.fields.screenshot.clone().unwrap();
                let png = store.archive_file(r.id, &shot).await.unwrap().unwrap();
                assert!(png.starts_with(b"\x89PNG"), "the screenshot comes out of the archive");
            }
        }
    }
    assert!(found_real, "the real archive is stored byte-for-byte");
}

/// One keep-alive HTTP/1.1 connection over `io`, for several requests in turn.
async fn keep_alive<I>(io: I) -> hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt;
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("content-type", content_type)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn report_connections_move_to_the_report_lanes_and_keep_serving_every_route() {
    let rs = ReportServer::start(|_| {}).await;
    let lanes = |scrape: &str| metric(scrape, "v8help_connections_to_report_lanes_total ");
    assert_eq!(rs.server.get("/message.json", &[]).await.status, 200);
    assert_eq!(common::http_get(rs.http(), "/message.json").await.status, 200);
    assert_eq!(lanes(rs.server.get("/metrics", &[]).await.text()), Some(0.0));

    // A megabyte of noise: the upload spans many TLS records and reads, most of them read
    // on the lane after the hand-over.
    let noise = noise(1 << 20);
    let archive = |n: u32| {
        let doc = report_json(&[("/id", json!(format!("00000000-0000-4000-8000-00000000010{n}")))]);
        zip(&[("report.json", &serde_json::to_vec(&doc).unwrap()), ("big.bin", &noise)])
    };
    let mut sent = Vec::new();
    for (n, tls) in [(1, true), (2, false), (3, true)] {
        let mut c = if tls {
            keep_alive(common::tls_connect(rs.server.https, &rs.server.pki.ca, false).await).await
        } else {
            keep_alive(tokio::net::TcpStream::connect(rs.http()).await.unwrap()).await
        };
        if n == 3 {
            // The message first: the connection stays with its worker, later uploads too.
            let (status, doc) = send(&mut c, "GET", "/message.json", "text/plain", Vec::new()).await;
            assert_eq!(status, 200);
            assert!(doc["userMessage"].is_string(), "{doc}");
        }
        let (ct, body) = multipart("report", "report.zip", &archive(n));
        let (status, doc) = send(&mut c, "POST", "/reports/pushReport", &ct, body).await;
        assert_eq!(status, 200, "upload {n}: {doc}");
        sent.push(archive(n));
        let getinfo = br#"{"platformInterfaceLanguageCode":"en"}"#.to_vec();
        let (status, doc) = send(&mut c, "POST", "/reports/getInfo", "application/json", getinfo).await;
        assert_eq!((status, &doc["needSendReport"]), (200, &json!(true)), "{doc}");
        let (status, doc) = send(&mut c, "GET", "/message.json", "text/plain", Vec::new()).await;
        assert_eq!(status, 200, "the message after an upload on connection {n}");
        assert!(doc["userMessage"].is_string(), "{doc}");
    }
    // The two connections that began with a report call went to the lanes; the others not.
    assert_eq!(lanes(rs.server.get("/metrics", &[]).await.text()), Some(2.0));

    let store = store(&rs);
    let groups = store.list_groups(GroupQuery::default()).await.unwrap();
    let mut stored = Vec::new();
    for g in &groups {
        for r in store.group_reports(&g.key, 10).await.unwrap() {
            stored.push(store.archive(r.id).await.unwrap().unwrap().to_vec());
        }
    }
    stored.sort();
    sent.sort();
    assert!(
        stored == sent,
        "every upload stored byte for byte ({} stored)",
        stored.len()
    );
}
