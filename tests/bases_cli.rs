//! `v8help bases …` as a user runs it: the real binary on copies of the fixtures in a
//! temporary folder.

mod common;

use std::fs;
use std::path::Path;

use common::binary::{code, run_in as v8help, stderr, stdout};
use common::v8i::fixtures;

/// Copies fixture `name` into a fresh temporary folder.
fn copy_fixture(name: &str) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = fs::read(fixtures().join(name)).expect("fixture");
    fs::write(dir.path().join(name), &bytes).expect("copy");
    (dir, bytes)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn list_shows_bases_only_unless_all_is_given() {
    let dir = fixtures();
    let bases = stdout(&v8help(&dir, &["bases", "list", "office.v8i"]));
    assert!(bases.lines().next().is_some_and(|h| h.starts_with("FILE:LINE")));
    assert!(bases.contains("office.v8i:7"));
    assert!(bases.contains("Бухгалтерия"));
    assert!(
        !bases
            .lines()
            .any(|l| l.starts_with("office.v8i:22 ") || l.starts_with("office.v8i:1 ")),
        "a group listed without --all:\n{bases}"
    );
    assert_eq!(bases.lines().count(), 1 + 5);

    let all = stdout(&v8help(&dir, &["bases", "list", "--all", "office.v8i"]));
    assert_eq!(all.lines().count(), 1 + 7);
    assert!(all.lines().any(|l| l.contains("group") && l.contains("Филиалы")));
}

#[test]
fn list_json_marks_absent_as_null_and_empty_as_empty() {
    let output = v8help(&fixtures(), &["bases", "list", "--format", "json", "office.v8i"]);
    assert_eq!(code(&output), 0);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let zup = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "Зарплата и кадры"))
        .expect("the ZUP base");
    assert_eq!(zup["startupErrorHelpText"], "");
    assert_eq!(zup["connectKind"], "web");
    let samara = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "Склад Самара"))
        .expect("the Samara base");
    assert!(samara["startupErrorHelpText"].is_null());
    assert!(samara["startupErrorHelpUrl"].is_null());
    assert_eq!(samara["orderInList"], 8192.75);
}

#[test]
fn check_exits_1_only_when_there_are_errors() {
    let dir = fixtures();
    let clean = v8help(&dir, &["bases", "check", "office.v8i"]);
    assert_eq!(code(&clean), 0, "{}", stdout(&clean));
    let broken = v8help(&dir, &["bases", "check", "tricky.v8i"]);
    assert_eq!(code(&broken), 1);
    assert!(stdout(&broken).contains("tricky.v8i:15: error: duplicate base name \"БУХГАЛТЕРИЯ\" (first at line 10)"));
}

#[test]
fn set_help_dry_run_prints_a_diff_and_touches_nothing() {
    let (dir, before) = copy_fixture("office.v8i");
    let output = v8help(
        dir.path(),
        &[
            "bases",
            "set-help",
            "office.v8i",
            "--text",
            "Звоните 555; #help",
            "--dry-run",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let diff = stdout(&output);
    assert!(diff.starts_with("--- office.v8i\n+++ office.v8i\n"), "{diff}");
    assert!(diff.contains("+StartupErrorHelpText=Звоните 555; #help\r\n"));
    assert!(diff.contains("-StartupErrorHelpText=Сервер недоступен"));
    assert!(diff.contains("-StartupErrorHelpText=\r\n"));
    assert_eq!(fs::read(dir.path().join("office.v8i")).expect("read"), before);
    assert_eq!(files_in(dir.path()), ["office.v8i"]);
}

#[test]
fn set_help_changes_only_the_help_lines_and_keeps_a_backup() {
    let (dir, before) = copy_fixture("office.v8i");
    let url = "https://help.corp.local/1c?from=v8help#top";
    let output = v8help(
        dir.path(),
        &["bases", "set-help", "office.v8i", "--text", "Звоните 555", "--url", url],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = stdout(&output);
    assert!(report.contains("office.v8i:19: [Бухгалтерия] StartupErrorHelpText: changed"));
    assert!(report.contains("office.v8i:49: [Склад Самара] StartupErrorHelpText: added \"Звоните 555\""));
    assert!(report.contains("10 lines changed in 1 file"));
    assert!(report.contains("office.v8i: backup in office.v8i.bak"));

    let after = fs::read(dir.path().join("office.v8i")).expect("read");
    assert_eq!(fs::read(dir.path().join("office.v8i.bak")).expect("backup"), before);
    assert!(after.starts_with(b"\xEF\xBB\xBF"), "BOM lost");
    let after = String::from_utf8(after).expect("UTF-8");
    let before = String::from_utf8(before).expect("UTF-8");
    assert!(!after.replace("\r\n", "").contains('\n'), "a bare LF appeared");
    // Every line that is not a help line is still there, in the same order.
    let keep = |text: &str| -> Vec<String> {
        text.split("\r\n")
            .filter(|l| !l.starts_with("StartupErrorHelp"))
            .map(String::from)
            .collect()
    };
    assert_eq!(keep(&before), keep(&after));
    let help_lines = after.split("\r\n").filter(|l| l.starts_with("StartupErrorHelp"));
    for line in help_lines {
        assert!(
            line == "StartupErrorHelpText=Звоните 555" || line == format!("StartupErrorHelpURL={url}"),
            "unexpected help line {line:?}"
        );
    }
    // Five bases, two keys each; groups untouched.
    assert_eq!(after.matches("StartupErrorHelpText=Звоните 555").count(), 5);
    assert_eq!(after.matches("StartupErrorHelpURL=").count(), 5);

    let again = v8help(
        dir.path(),
        &["bases", "set-help", "office.v8i", "--text", "Звоните 555", "--url", url],
    );
    assert_eq!(code(&again), 0);
    assert!(stdout(&again).contains("office.v8i: already up to date"));
    assert_eq!(files_in(dir.path()), ["office.v8i", "office.v8i.bak"]);
}

#[test]
fn set_help_only_picks_bases_by_name_ignoring_case_or_by_id() {
    let (dir, _) = copy_fixture("office.v8i");
    let output = v8help(
        dir.path(),
        &[
            "bases",
            "set-help",
            "office.v8i",
            "--url",
            "https://h.example/",
            "--only",
            "склад самара",
            "--only",
            "11111111-2222-4333-8444-555555555555",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let listed = v8help(dir.path(), &["bases", "list", "--format", "json", "office.v8i"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("JSON");
    let with_new_url: Vec<_> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["startupErrorHelpUrl"] == "https://h.example/")
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(with_new_url, ["Склад Самара", "Тестовая \"копия\" (не для работы)"]);
}

#[test]
fn set_help_refuses_and_writes_nothing_when_a_selector_matches_no_base() {
    let (dir, before) = copy_fixture("office.v8i");
    let output = v8help(
        dir.path(),
        &[
            "bases",
            "set-help",
            "office.v8i",
            "--text",
            "x",
            "--only",
            "Бухгалтерия",
            "--only",
            "Бугалтерия",
        ],
    );
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("--only \"Бугалтерия\" matches no base"));
    assert_eq!(fs::read(dir.path().join("office.v8i")).expect("read"), before);
    assert_eq!(files_in(dir.path()), ["office.v8i"]);
}

#[test]
fn set_help_refuses_a_url_that_is_not_http() {
    let (dir, before) = copy_fixture("office.v8i");
    let output = v8help(
        dir.path(),
        &["bases", "set-help", "office.v8i", "--url", "help.corp.local"],
    );
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("not an http(s) URL"));
    assert_eq!(fs::read(dir.path().join("office.v8i")).expect("read"), before);
}

#[test]
fn set_help_refuses_a_list_that_is_not_utf8() {
    let (dir, before) = copy_fixture("legacy-cp1251.v8i");
    let output = v8help(dir.path(), &["bases", "set-help", "legacy-cp1251.v8i", "--text", "x"]);
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).contains("legacy-cp1251.v8i: not valid UTF-8 at byte offset 1"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fs::read(dir.path().join("legacy-cp1251.v8i")).expect("read"), before);
}

#[test]
fn set_help_needs_text_or_url() {
    let (dir, _) = copy_fixture("office.v8i");
    let output = v8help(dir.path(), &["bases", "set-help", "office.v8i"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("--text"));
}

#[test]
fn a_missing_list_named_by_the_cfg_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg: Vec<u8> = "\u{feff}CommonInfoBases=lists/gone.v8i\r\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    fs::write(dir.path().join("1CEStart.cfg"), cfg).expect("write");
    let output = v8help(dir.path(), &["bases", "list", "--cfg", "1CEStart.cfg"]);
    assert_eq!(code(&output), 2);
    let message = stderr(&output);
    assert!(
        message.contains("1CEStart.cfg:1: CommonInfoBases=lists/gone.v8i: cannot read lists/gone.v8i"),
        "{message}"
    );
}

#[test]
fn without_arguments_the_users_own_list_is_read() {
    let home = tempfile::tempdir().expect("tempdir");
    let own = home.path().join(".1C").join("1cestart");
    fs::create_dir_all(&own).expect("mkdir");
    fs::copy(fixtures().join("office.v8i"), own.join("ibases.v8i")).expect("copy");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_v8help"))
        .args(["bases", "list", "--format", "json"])
        .env("HOME", home.path())
        .env("APPDATA", home.path().join(".1C"))
        .output()
        .expect("runs");
    if cfg!(windows) {
        return;
    }
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(5));

    let empty = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_v8help"))
        .args(["bases", "check"])
        .env("HOME", empty.path())
        .output()
        .expect("runs");
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("no base list given"));
}

#[test]
fn set_help_url_template_gives_every_base_its_own_percent_encoded_page() {
    let (dir, before) = copy_fixture("office.v8i");
    let url = "https://help.example.ru/{name}/help?id={id}";
    let dry = v8help(
        dir.path(),
        &["bases", "set-help", "office.v8i", "--url", url, "--dry-run"],
    );
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    let diff = stdout(&dry);
    assert!(
        diff.contains(
            "+StartupErrorHelpURL=https://help.example.ru/%D0%A1%D0%BA%D0%BB%D0%B0%D0%B4%20%D0%A1%D0%B0%D0%BC%D0%B0%D1%80%D0%B0/help?id=e9f8d7c6-b5a4-4321-9876-fedcba012345"
        ),
        "{diff}"
    );
    assert_eq!(
        fs::read(dir.path().join("office.v8i")).expect("read"),
        before,
        "a dry run wrote"
    );

    let output = v8help(dir.path(), &["bases", "set-help", "office.v8i", "--url", url]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let after = fs::read(dir.path().join("office.v8i")).expect("read");
    let listed = v8help(dir.path(), &["bases", "list", "--format", "json", "office.v8i"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("JSON");
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 5);
    let mut urls = std::collections::HashSet::new();
    for row in rows {
        let got = row["startupErrorHelpUrl"].as_str().expect("a URL");
        let name: String = row["name"]
            .as_str()
            .unwrap()
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let id = row["id"].as_str().unwrap();
        assert_eq!(got, format!("https://help.example.ru/{name}/help?id={id}"));
        urls.insert(got.to_string());
    }
    assert_eq!(urls.len(), 5, "each base its own URL");
    // Only StartupErrorHelpURL lines changed: every other line is byte-for-byte the same.
    let keep = |b: &[u8]| -> Vec<Vec<u8>> {
        b.split(|&c| c == b'\n')
            .filter(|l| !l.starts_with(b"StartupErrorHelpURL="))
            .map(<[u8]>::to_vec)
            .collect()
    };
    assert_eq!(keep(&after), keep(&before));
}

#[test]
fn set_help_url_template_refuses_unknown_placeholders_and_bases_without_id() {
    let (dir, before) = copy_fixture("office.v8i");
    let output = v8help(
        dir.path(),
        &["bases", "set-help", "office.v8i", "--url", "https://h/{base}/"],
    );
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).contains("unknown placeholder {base}"),
        "{}",
        stderr(&output)
    );

    let list = "[Без ID]\r\nConnect=File=\"C:\\b\";\r\n";
    fs::write(dir.path().join("noid.v8i"), list).expect("write");
    let output = v8help(
        dir.path(),
        &[
            "bases",
            "set-help",
            "office.v8i",
            "noid.v8i",
            "--url",
            "https://h/{id}/",
        ],
    );
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("has no ID= for {id}"), "{}", stderr(&output));
    assert!(stderr(&output).contains("nothing written"));
    assert_eq!(fs::read(dir.path().join("office.v8i")).expect("read"), before);
}
