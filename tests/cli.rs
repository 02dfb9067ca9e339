//! The `v8help` binary as an admin uses it: `message check/show/set/clear`, and the one-line
//! start-up errors of `serve`.

mod common;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use common::binary::{run as v8help, stderr, stdout};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/messages")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn check_accepts_every_valid_fixture() {
    let files = fixtures("valid");
    assert!(files.len() >= 5);
    for file in files {
        let o = v8help(&["message", "check", "--tz", "Europe/Moscow", file.to_str().unwrap()]);
        assert!(o.status.success(), "{}: {}", file.display(), stderr(&o));
        assert!(stdout(&o).contains(": valid"), "{}", stdout(&o));
    }
}

#[test]
fn check_rejects_every_invalid_fixture_with_its_error() {
    let files = fixtures("invalid");
    assert!(files.len() >= 12);
    for file in files {
        let expected = std::fs::read_to_string(file.with_extension("error")).unwrap();
        let o = v8help(&["message", "check", "--tz", "UTC", file.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", file.display());
        assert_eq!(
            stderr(&o),
            format!("{}: {}", file.display(), expected),
            "{}",
            file.display()
        );
    }
}

#[test]
fn check_of_a_missing_file_says_so() {
    let o = v8help(&["message", "check", "/nonexistent/message.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read /nonexistent/message.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn show_prints_what_clients_get_for_a_language_and_a_moment() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/messages/valid/full.json");
    let file = file.to_str().unwrap();
    let o = v8help(&[
        "message",
        "show",
        file,
        "--lang",
        "kk",
        "--at",
        "2026-11-22T12:00:00+03:00",
        "--tz",
        "Europe/Moscow",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let body: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(body["userMessage"], "1С сервері қолжетімсіз");
    assert_eq!(body["severity"], "maintenance");
    assert!(
        stderr(&o).contains("active until 2026-11-22 14:00 +03:00"),
        "{}",
        stderr(&o)
    );

    let before = v8help(&[
        "message",
        "show",
        file,
        "--at",
        "2026-11-22T08:00:00+03:00",
        "--tz",
        "Europe/Moscow",
    ]);
    assert_eq!(stdout(&before).trim(), r#"{"userMessage":""}"#);
    assert!(
        stderr(&before).contains("scheduled from 2026-11-22 09:00 +03:00"),
        "{}",
        stderr(&before)
    );
    let after = v8help(&["message", "show", file, "--at", "2026-11-22T14:00:00+03:00"]);
    assert_eq!(stdout(&after).trim(), r#"{"userMessage":""}"#);
    assert!(stderr(&after).contains("expired"), "{}", stderr(&after));
}

#[test]
fn set_writes_a_valid_document_and_keeps_unknown_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.json");
    std::fs::write(&file, r#"{"userMessage":"old","starts":"2020-01-01T00:00:00Z","ticket":"INC-1","userMessages":{"kk":"ескі"},"helpUrl":"https://help.example/"}"#).unwrap();
    let f = file.to_str().unwrap();
    let o = v8help(&[
        "message",
        "set",
        "Работы до 14:00",
        "--until",
        "+2h",
        "--lang",
        "kk",
        "Жұмыс",
        "--lang",
        "en",
        "Works",
        "--file",
        f,
        "--tz",
        "Europe/Moscow",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("written; active until"), "{}", stdout(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["userMessage"], "Работы до 14:00");
    assert_eq!(doc["ticket"], "INC-1", "unknown field kept");
    assert_eq!(doc["helpUrl"], "https://help.example/", "help link kept");
    assert!(doc.get("starts").is_none(), "an old start would hide the new message");
    assert_eq!(doc["userMessages"], serde_json::json!({"kk": "Жұмыс", "en": "Works"}));
    let expires = DateTime::parse_from_rfc3339(doc["expires"].as_str().unwrap()).unwrap();
    assert_eq!(
        expires.offset().local_minus_utc(),
        3 * 3600,
        "written in the service's zone"
    );
    let ahead = expires.with_timezone(&Utc) - Utc::now();
    assert!(
        ahead > chrono::Duration::minutes(119) && ahead <= chrono::Duration::minutes(120),
        "{ahead}"
    );
    let check = v8help(&["message", "check", f]);
    assert!(check.status.success());
}

#[test]
fn set_with_hh_mm_says_whether_it_is_today_or_tomorrow() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.json");
    let f = file.to_str().unwrap();
    let o = v8help(&[
        "message", "set", "x", "--until", "00:00", "--from", "23:59", "--file", f, "--tz", "UTC",
    ]);
    // 00:00 UTC has always just passed (or is exactly now): it means tomorrow.
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("--until 00:00: tomorrow"), "{}", stdout(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let expires = DateTime::parse_from_rfc3339(doc["expires"].as_str().unwrap()).unwrap();
    assert_eq!(expires.format("%H:%M").to_string(), "00:00");
    assert!(expires.with_timezone(&Utc) > Utc::now());
}

#[test]
fn set_refuses_an_invalid_result_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.json");
    let original = r#"{"userMessage":"keep me","ticket":1}"#;
    std::fs::write(&file, original).unwrap();
    let f = file.to_str().unwrap();
    let bad_url = v8help(&[
        "message",
        "set",
        "x",
        "--until",
        "+1h",
        "--help-url",
        "ftp://x/y",
        "--file",
        f,
    ]);
    assert_eq!(bad_url.status.code(), Some(1));
    assert!(stderr(&bad_url).contains("field \"helpUrl\""), "{}", stderr(&bad_url));
    let past = v8help(&["message", "set", "x", "--until", "2001-01-01T00:00:00Z", "--file", f]);
    assert_eq!(past.status.code(), Some(1));
    assert!(stderr(&past).contains("already past"), "{}", stderr(&past));
    let bad_when = v8help(&["message", "set", "x", "--until", "soonish", "--file", f]);
    assert_eq!(bad_when.status.code(), Some(2));
    assert!(
        stderr(&bad_when).contains("\"soonish\" is not a time"),
        "{}",
        stderr(&bad_when)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
}

#[test]
fn set_refuses_to_overwrite_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.json");
    std::fs::write(&file, "{\"userMessage\": \"half").unwrap();
    let o = v8help(&[
        "message",
        "set",
        "x",
        "--until",
        "+1h",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("line 1") && stderr(&o).contains("message clear"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"userMessage\": \"half");
}

#[test]
fn clear_writes_an_empty_document() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.json");
    std::fs::write(&file, r#"{"userMessage":"x"}"#).unwrap();
    let o = v8help(&["message", "clear", "--file", file.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{}\n");
    let show = v8help(&["message", "show", file.to_str().unwrap()]);
    assert_eq!(stdout(&show).trim(), r#"{"userMessage":""}"#);
}

#[test]
fn every_message_command_takes_the_document_as_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("elsewhere.json");
    let f = file.to_str().unwrap();
    let set = v8help(&["message", "set", "Работы до 14:00", "--until", "+1h", "--file", f]);
    assert!(set.status.success(), "{}", stderr(&set));
    let check = v8help(&["message", "check", "--file", f]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stdout(&check).starts_with(&format!("{f}: valid")), "{}", stdout(&check));
    let show = v8help(&["message", "show", "--file", f]);
    assert!(stdout(&show).contains("Работы до 14:00"), "{}", stdout(&show));
    // The positional PATH of check and show is the same thing, and wins over --file.
    let other = dir.path().join("broken.json");
    std::fs::write(&other, "{").unwrap();
    let check = v8help(&["message", "check", other.to_str().unwrap(), "--file", f]);
    assert_eq!(check.status.code(), Some(1), "the positional file is the one checked");
    let clear = v8help(&["message", "clear", "--file", f]);
    assert!(clear.status.success());
    let show = v8help(&["message", "show", "--file", f]);
    assert_eq!(stdout(&show).trim(), r#"{"userMessage":""}"#);
}

/// Start-up errors are one line on stderr and a non-zero exit.
fn serve_fails(args: &[&str], expected: &str) {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let o = v8help(&all);
    assert!(!o.status.success(), "serve {args:?} started");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.contains(expected), "expected {expected:?} in {err}");
}

#[test]
fn serve_start_up_errors_are_one_clear_line() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    serve_fails(
        &["--listen", &busy_addr, "--tz", "UTC"],
        &format!("cannot listen on {busy_addr}: Address already in use"),
    );
    let o = v8help(&["serve", "--listen", &busy_addr, "--tz", "UTC"]);
    assert_eq!(
        stderr(&o).matches("in use").count(),
        1,
        "the cause is said once: {}",
        stderr(&o)
    );
    serve_fails(
        &["--config", "/nonexistent/v8help.toml"],
        "cannot read config file /nonexistent/v8help.toml: No such file",
    );

    let pki = common::Pki::new();
    let other = common::Pki::new();
    let cert = pki.cert_path.to_str().unwrap();
    let key = pki.key_path.to_str().unwrap();
    serve_fails(
        &[
            "--listen",
            "127.0.0.1:0",
            "--cert",
            "/nonexistent/cert.pem",
            "--key",
            key,
            "--tz",
            "UTC",
        ],
        "cannot read certificate /nonexistent/cert.pem",
    );
    serve_fails(
        &[
            "--listen",
            "127.0.0.1:0",
            "--cert",
            cert,
            "--key",
            "/nonexistent/key.pem",
            "--tz",
            "UTC",
        ],
        "cannot read private key /nonexistent/key.pem",
    );
    serve_fails(
        &[
            "--listen",
            "127.0.0.1:0",
            "--cert",
            cert,
            "--key",
            other.key_path.to_str().unwrap(),
            "--tz",
            "UTC",
        ],
        "does not match certificate",
    );
    serve_fails(
        &["--listen", "127.0.0.1:0", "--cert", key, "--key", key, "--tz", "UTC"],
        "no CERTIFICATE block",
    );
    serve_fails(
        &["--listen", "127.0.0.1:0", "--tz", "Mars/Olympus"],
        "unknown time zone \"Mars/Olympus\"",
    );
    serve_fails(
        &["--listen", "127.0.0.1:0", "--cert", cert],
        "--cert was given without --key",
    );
}

#[test]
fn message_commands_work_on_a_base_of_the_messages_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = v8help(&[
        "message",
        "set",
        "ERP down",
        "--until",
        "+2h",
        "--base",
        "erp",
        "--messages",
        d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(dir.path().join("erp.json")).unwrap();
    assert!(written.contains("\"userMessage\": \"ERP down\""), "{written}");
    // Atomic: no temporary file left beside it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["erp.json"]);

    let o = v8help(&["message", "check", "--base", "erp", "--messages", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("erp.json: valid; active until"), "{}", stdout(&o));
    let o = v8help(&["message", "show", "--base", "erp", "--messages", d]);
    let body: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(body["userMessage"], "ERP down");

    // The directory may also come from the environment, as for `serve`.
    let o = common::binary::command()
        .args(["message", "clear", "--base", "erp"])
        .env("V8HELP_MESSAGES", d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dir.path().join("erp.json")).unwrap(), "{}\n");

    let o = v8help(&[
        "message",
        "set",
        "x",
        "--until",
        "+1h",
        "--base",
        "../etc",
        "--messages",
        d,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--base \"../etc\""), "{}", stderr(&o));
    let o = common::binary::command()
        .args(["message", "check", "--base", "erp"])
        .env_remove("V8HELP_MESSAGES")
        .output()
        .unwrap();
    assert!(stderr(&o).contains("--messages DIR"), "{}", stderr(&o));
}

#[test]
fn message_list_shows_base_state_until_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
    w(
        "erp.json",
        r#"{"userMessage":"ERP down","expires":"2099-01-01T12:00:00Z"}"#,
    );
    w("hr.json", r#"{"userMessage":"old","expires":"2020-01-01T00:00:00Z"}"#);
    w("crm.json", "{}");
    w("notes.txt", "not a base");
    let d = dir.path().to_str().unwrap();
    let o = v8help(&["message", "list", "--messages", d, "--tz", "UTC"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with("BASE")
            && lines[0].contains("STATE")
            && lines[0].contains("UNTIL")
            && lines[0].ends_with("TEXT")
    );
    assert!(
        lines[1].starts_with("crm ") && lines[1].contains(" none "),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("erp ")
            && lines[2].contains("active")
            && lines[2].contains("2099-01-01 12:00 +00:00")
            && lines[2].ends_with("ERP down"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("hr ") && lines[3].contains("expired"),
        "{}",
        lines[3]
    );

    w("bad.json", "{");
    let o = v8help(&["message", "list", "--messages", d, "--format", "json", "--tz", "UTC"]);
    assert_eq!(o.status.code(), Some(1));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let bases: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["base"].as_str().unwrap())
        .collect();
    assert_eq!(bases, ["bad", "crm", "erp", "hr"]);
    assert_eq!(rows[0]["state"], "invalid");
    assert!(rows[0]["text"].as_str().unwrap().contains("line 1"), "{}", rows[0]);
    assert_eq!(rows[2]["until"], "2099-01-01T12:00:00+00:00");
    assert_eq!(rows[2]["text"], "ERP down");
}
