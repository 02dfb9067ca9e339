//! The thin-client flow end to end: a base from a real v8i list whose server is down, a
//! running v8help as the startup error service, and the dialog the client would show.

mod common;

#[path = "../examples/thin_client.rs"]
#[allow(dead_code)]
mod thin_client;

use std::path::{Path, PathBuf};

use common::*;
use thin_client::{Args, launch};

const DOC: &str = r#"{
  "userMessage": "Идут регламентные работы до 14:00 (МСК)",
  "expires": "2099-01-01T14:00:00+03:00",
  "userMessages": {"kk": "Жоспарлы жұмыстар 14:00-ге дейін"}
}"#;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/thin_client/bases.v8i")
}

fn args(v8i: PathBuf, base: &str, service: String, ca: &Path, lang: &str) -> Args {
    Args {
        v8i,
        base: base.into(),
        service,
        ca: Some(ca.to_path_buf()),
        lang: Some(lang.into()),
        timeout_ms: 2000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_whose_server_is_down_shows_the_system_error_help_text_message_and_link() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let service = format!("https://127.0.0.1:{}/message.json", server.https.port());
    // The name as a user might type it: case differs, as the platform allows.
    let outcome = launch(&args(
        fixture(),
        "БУХГАЛТЕРИЯ (основная)",
        service,
        &server.pki.ca_path,
        "kk-KZ",
    ))
    .await;
    assert_eq!(outcome.code, 1, "{}", outcome.output);
    let expected = "Cannot start the infobase \"Бухгалтерия (основная)\"\n";
    assert!(outcome.output.starts_with(expected), "{}", outcome.output);
    let lines: Vec<&str> = outcome.output.lines().collect();
    assert!(
        lines[1].starts_with("  System error:       cannot connect to 127.0.0.1:1: "),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        "  Help:               Сервер 1С недоступен; звоните дежурному: +7 (495) 123-45-67 (#210)"
    );
    assert_eq!(lines[3], "  Administrators:     Жоспарлы жұмыстар 14:00-ге дейін");
    assert_eq!(lines[4], "                      (until 2099-01-01T14:00:00+03:00)");
    assert_eq!(
        lines[5],
        "  Need help:          https://help.example.ru/v8help/help?base=accounting#contacts"
    );
    // The service saw the client's POST.
    let metrics = server.get("/metrics", &[]).await.text().to_string();
    assert!(
        metrics.contains("v8help_requests_total{route=\"message\",status=\"200\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_base_by_id_falls_back_to_the_default_text() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let service = format!("https://127.0.0.1:{}/", server.https.port());
    let outcome = launch(&args(
        fixture(),
        "0a7d1e2f-3b4c-4d5e-8f90-a1b2c3d4e5f6",
        service,
        &server.pki.ca_path,
        "ru-RU",
    ))
    .await;
    assert_eq!(outcome.code, 1, "{}", outcome.output);
    assert!(outcome.output.contains("\"Зарплата (web)\""));
    assert!(
        outcome
            .output
            .contains("System error:       http://127.0.0.1:1/zup: cannot connect"),
        "{}",
        outcome.output
    );
    assert!(
        outcome
            .output
            .contains("Administrators:     Идут регламентные работы до 14:00 (МСК)")
    );
    assert!(
        !outcome.output.contains("Need help"),
        "no StartupErrorHelpURL for this base"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_service_is_down_too_the_dialog_says_so() {
    let pki = Pki::new();
    let outcome = launch(&args(
        fixture(),
        "Бухгалтерия (основная)",
        "https://127.0.0.1:1/".into(),
        &pki.ca_path,
        "ru",
    ))
    .await;
    assert_eq!(outcome.code, 1);
    assert!(
        outcome
            .output
            .contains("(the startup error service did not answer: cannot connect to 127.0.0.1:1")
    );
    assert!(outcome.output.contains("Need help:          https://help.example.ru/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reachable_server_starts_without_a_dialog() {
    let server = TestServer::start(Some(DOC), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ibases.v8i");
    std::fs::write(
        &list,
        format!(
            "[ERP]\r\nConnect=Srvr=\"127.0.0.1:{port}\";Ref=\"erp\";\r\n[ERP web]\r\nConnect=ws=\"https://127.0.0.1:{port}/healthz\";\r\n",
            port = server.https.port()
        ),
    )
    .unwrap();
    let service = format!("https://127.0.0.1:{}/", server.https.port());
    for base in ["erp", "ERP web"] {
        let outcome = launch(&args(list.clone(), base, service.clone(), &server.pki.ca_path, "ru")).await;
        assert_eq!(outcome.code, 0, "{}", outcome.output);
        assert!(outcome.output.starts_with("Connected to"), "{}", outcome.output);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_base_is_a_usage_error() {
    let pki = Pki::new();
    let outcome = launch(&args(
        fixture(),
        "Склад",
        "https://127.0.0.1:1/".into(),
        &pki.ca_path,
        "ru",
    ))
    .await;
    assert_eq!(outcome.code, 2);
    assert!(outcome.output.contains("no base named \"Склад\""), "{}", outcome.output);
}
