//! The support console in a real headless Chromium, over the real service: a report sent
//! to the public listener's pushReport shows up in the console after logging in, its
//! screenshot loads through the authenticated image URL, hostile report text stays text,
//! marking the group "known" changes what getInfo answers on the public listener at once,
//! and startup-error POSTs appear on the login-failures page.
//!
//! Needs `chromium` and `chromium-driver` (Debian); `V8HELP_SKIP_BROWSER=1` skips.
//! Screenshots go to `<target>/browser-screenshots/console-*.png`.
//! Run: `cargo test --test console_browser`.

mod common;
use common::browser as common_browser;
use common::console as common_console;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use bytes::Bytes;
use common::Pki;
use common_browser::{Browser, DESKTOP, browser_lock, wait_for};
use common_console::{PASSWORD, PNG_1X1, USER, users_file, zip_of};
use fantoccini::Locator;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::Notify;
use v8help::config::ServeConfig;
use v8help::console::config::ConsoleConfig;
use v8help::reports::ReportsConfig;
use v8help::service::Service;

const USER_NAME: &str = "<script>document.title='pwned-user'</script>Иванов";
const ERROR_TEXT: &str = "<img src=x onerror=\"document.title='pwned-error'\">Деление на 0";
const NOTE: &str = "Known: fixed in 3.0.102, update tonight. <b>not bold</b>";

/// POST over plain HTTP to the public listener; the answer's status and body.
async fn post(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> anyhow::Result<(u16, Bytes)> {
    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await?);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let req = http::Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

async fn get_info(addr: SocketAddr) -> anyhow::Result<Value> {
    let body = json!({"appStackHash": "c0ffee42", "platformInterfaceLanguageCode": "en"});
    let (status, bytes) = post(addr, "/reports/getInfo", "application/json", serde_json::to_vec(&body)?).await?;
    ensure!(status == 200, "getInfo answered {status}");
    Ok(serde_json::from_slice(&bytes)?)
}

fn report_archive() -> Vec<u8> {
    let doc = json!({
        "time": "2026-12-01T10:00:00+03:00",
        "id": "7b0c5f0e-0000-4000-8000-000000000001",
        "clientInfo": {
            "platformType": "Windows_x86_64", "appName": "1CV8C", "appVersion": "8.3.18.1128",
            "systemInfo": {"osVersion": "Windows 10 x64", "clientID": "c1d2e3f4-machine"}
        },
        "sessionInfo": {"userName": USER_NAME},
        "configInfo": {"name": "Бухгалтерия предприятия", "version": "3.0.101.20"},
        "errorInfo": {
            "userDescription": "Нажал «Провести» — <i>и всё</i>",
            "applicationErrorInfo": {"errors": [[ERROR_TEXT, ["ScriptRuntimeError"]]], "stackHash": "c0ffee42"}
        },
        "screenshot": {"file": "screenshot.png"}
    });
    zip_of(&[
        ("report.json", serde_json::to_vec(&doc).unwrap()),
        ("screenshot.png", PNG_1X1.to_vec()),
        ("log.txt", b"<html>not a page</html>".to_vec()),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_logs_in_sees_the_report_and_marking_it_known_changes_get_info() {
    let _lock = browser_lock().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let users = users_file(dir.path());
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_files: Some((pki.cert_path.clone(), pki.key_path.clone())),
        message: dir.path().join("message.json"),
        shutdown_timeout: Duration::from_secs(2),
        reports: Some(ReportsConfig::with_db(format!(
            "sqlite:{}",
            dir.path().join("reports.db").display()
        ))),
        ..ServeConfig::default()
    };
    let server = Service::bind(config).expect("the service binds");
    let public = server.http_addr().unwrap();
    let console_config = ConsoleConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        users,
    };
    let (listener, console) =
        v8help::console::bind(&console_config, server.certificate(), server.reports().unwrap()).unwrap();
    let admin = listener.addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let console_task = tokio::spawn(listener.run(console, Duration::from_secs(2), until(stopped.clone())));
    let server_task = tokio::spawn(server.run(Arc::new(Notify::new()), until(stopped)));

    let Some(browser) = Browser::start_with("en-US", true).await.expect("start the browser") else {
        return;
    };
    let result = tokio::time::timeout(Duration::from_secs(120), scenario(&browser, public, admin)).await;
    browser.close().await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), server_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), console_task).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(err)) => panic!("{err:#}"),
        Err(_) => panic!("the scenario did not finish within 120 s"),
    }
}

async fn scenario(browser: &Browser, public: SocketAddr, admin: SocketAddr) -> anyhow::Result<()> {
    let console = format!("https://{admin}");
    // The client's side: getInfo says "send", the report goes to pushReport.
    let before = get_info(public).await?;
    ensure!(
        before["needSendReport"] == json!(true),
        "getInfo before marking: {before}"
    );
    let (status, body) = post(public, "/reports/pushReport", "application/zip", report_archive()).await?;
    ensure!(status == 200, "pushReport answered {status}: {body:?}");
    // Two startup-error POSTs, as thin clients send after a failed login.
    for _ in 0..2 {
        post(
            public,
            "/",
            "application/json",
            br#"{"error":"<b>login failed</b>"}"#.to_vec(),
        )
        .await?;
    }

    // Support's side: every page needs the login first.
    browser.goto(&format!("{console}/")).await?;
    let url = browser.client.current_url().await?;
    ensure!(url.path() == "/login", "not sent to the login page: {url}");
    browser.screenshot("console-login", DESKTOP).await?;
    browser
        .client
        .find(Locator::Css("input[name=user]"))
        .await?
        .send_keys(USER)
        .await?;
    browser
        .client
        .find(Locator::Css("input[name=password]"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    browser
        .client
        .find(Locator::Css("form.login button"))
        .await?
        .click()
        .await?;
    let shown = wait_for(Duration::from_secs(20), "the groups page", || async {
        Ok(browser.client.find(Locator::Css("table.groups")).await.ok().map(|_| ()))
    })
    .await;
    if let Err(err) = shown {
        let page = browser.visible_text("body").await.unwrap_or_default();
        let url = browser.client.current_url().await?;
        anyhow::bail!("{err:#}; the browser is at {url} showing: {page}");
    }
    let cookie = browser.eval("return document.cookie;").await?;
    ensure!(
        cookie == json!(""),
        "the session cookie is readable by scripts: {cookie}"
    );
    let error = browser.visible_text("table.groups td.error").await?;
    ensure!(
        error == "<img src=x onerror=\"document.title='pwned-error'\">Деление на 0",
        "error text shown as {error:?}"
    );
    let injected = browser
        .eval("return {title: document.title, imgs: document.querySelectorAll('main img').length, scripts: document.scripts.length};")
        .await?;
    ensure!(
        injected["imgs"] == json!(0) && injected["scripts"] == json!(0),
        "report text became markup: {injected}"
    );
    ensure!(
        !injected["title"].as_str().unwrap_or("").contains("pwned"),
        "report text ran: {injected}"
    );
    let bars = browser
        .eval("return document.querySelectorAll('table.groups svg.bars rect').length;")
        .await?;
    ensure!(
        bars == json!(1),
        "the per-hour chart shows {bars} bars, expected the one hour with a report"
    );
    browser.screenshot("console-groups", DESKTOP).await?;

    // The group's reports, then the report with its screenshot.
    browser
        .client
        .find(Locator::Css("table.groups td.error a"))
        .await?
        .click()
        .await?;
    wait_for(Duration::from_secs(20), "the group's page", || async {
        Ok(browser
            .client
            .find(Locator::Css("table.reports"))
            .await
            .ok()
            .map(|_| ()))
    })
    .await?;
    let user = browser.visible_text("table.reports td.user").await?;
    ensure!(user == USER_NAME, "user shown as {user:?}");
    browser
        .client
        .find(Locator::Css("table.reports a.open"))
        .await?
        .click()
        .await?;
    let loaded = wait_for(Duration::from_secs(20), "the screenshot to load", || async {
        let v = browser
            .eval("const i = document.querySelector('img.screenshot'); return i && i.complete ? i.naturalWidth : null;")
            .await?;
        Ok(v.as_u64())
    })
    .await?;
    ensure!(loaded == 1, "the screenshot did not load as an image (width {loaded})");
    let files = browser.visible_text("ul.files").await?;
    ensure!(
        files.contains("log.txt") && files.contains("Original archive"),
        "files: {files}"
    );
    browser.screenshot("console-report", DESKTOP).await?;

    // Mark the group known: getInfo answers with the note at once.
    browser.client.find(Locator::Css("p a")).await?.click().await?;
    wait_for(Duration::from_secs(20), "the mark form", || async {
        Ok(browser.client.find(Locator::Css("form.mark")).await.ok().map(|_| ()))
    })
    .await?;
    browser
        .client
        .find(Locator::Css("input[name=state][value=known]"))
        .await?
        .click()
        .await?;
    browser
        .client
        .find(Locator::Css("textarea[name=note]"))
        .await?
        .send_keys(NOTE)
        .await?;
    browser
        .client
        .find(Locator::Css("form.mark button"))
        .await?
        .click()
        .await?;
    wait_for(Duration::from_secs(20), "the mark to show", || async {
        let state = browser
            .visible_text("form.mark legend .current")
            .await
            .unwrap_or_default();
        Ok((state == "known").then_some(()))
    })
    .await?;
    let after = get_info(public).await?;
    ensure!(
        after["needSendReport"] == json!(false) && after["userMessage"] == json!(NOTE),
        "getInfo after marking: {after}"
    );
    browser.screenshot("console-group-marked", DESKTOP).await?;

    // The login failures page counts the startup-error POSTs.
    browser.goto(&format!("{console}/failures")).await?;
    let total = wait_for(Duration::from_secs(20), "the login failures to be counted", || async {
        browser.client.refresh().await?;
        let total = browser.visible_text("strong.total").await?;
        Ok((total == "2").then_some(total))
    })
    .await
    .context("login failures page")?;
    ensure!(total == "2");
    browser.screenshot("console-failures", DESKTOP).await?;

    // Logging out closes the console again.
    browser
        .client
        .find(Locator::Css("form.logout button"))
        .await?
        .click()
        .await?;
    browser.goto(&format!("{console}/")).await?;
    let url = browser.client.current_url().await?;
    ensure!(url.path() == "/login", "still logged in after logout: {url}");
    Ok(())
}
