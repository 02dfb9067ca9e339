//! Differential test against `configparser`, an independent INI reader, on the inputs where
//! it can be faithful to a v8i: case-sensitive, no comment symbols, only `=` as delimiter,
//! BOM removed, unique section names and keys, no spaces at the edges of names, keys and
//! values (it trims them), no lines outside `[section]`/`key=value`. On those, both readers
//! must agree on every section, key and value.
//!
//! The last test shows why v8help does not simply use an INI library: with its defaults,
//! configparser cuts `Connect` strings and help texts at `;` and `#`.

mod common;

use std::collections::{BTreeMap, HashMap};

use configparser::ini::{Ini, IniDefault};
use proptest::prelude::*;

use v8help::v8i;

type Sections = HashMap<String, HashMap<String, Option<String>>>;

fn faithful_configparser() -> Ini {
    let mut defaults = IniDefault::default();
    defaults.case_sensitive = true;
    defaults.comment_symbols = Vec::new();
    defaults.inline_comment_symbols = Some(Vec::new());
    defaults.enable_inline_comments = false;
    defaults.delimiters = vec!['='];
    defaults.multiline = false;
    Ini::new_from_defaults(defaults)
}

/// What v8help reads, in configparser's shape.
fn v8help_map(bytes: &[u8]) -> Sections {
    let list = v8i::parse(bytes);
    list.sections()
        .map(|section| {
            let keys = section
                .keys()
                .map(|k| (k.key.to_string(), Some(k.value.to_string())))
                .collect();
            (section.name().to_string(), keys)
        })
        .collect()
}

fn configparser_map(text: &str) -> Sections {
    let mut ini = faithful_configparser();
    ini.read(text.to_string()).expect("configparser reads it");
    ini.get_map_ref()
        .iter()
        .map(|(section, keys)| (section.clone(), keys.clone().into_iter().collect()))
        .collect()
}

/// Printable text without spaces at either end (configparser trims them).
fn edge_trimmed(max_inner: usize) -> impl Strategy<Value = String> {
    let edge = "[!-~а-яА-ЯёЁ]";
    prop_oneof![
        Just(String::new()),
        proptest::string::string_regex(edge).expect("regex"),
        proptest::string::string_regex(&format!("{edge}[ !-~а-яА-ЯёЁ]{{0,{max_inner}}}{edge}")).expect("regex"),
    ]
}

fn section_name() -> impl Strategy<Value = String> {
    edge_trimmed(20).prop_filter("a name", |n| !n.is_empty() && n != "default")
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Connect".to_string()),
        Just("ID".to_string()),
        Just("Folder".to_string()),
        Just("OrderInList".to_string()),
        Just("StartupErrorHelpText".to_string()),
        Just("StartupErrorHelpURL".to_string()),
        "[A-Za-z][A-Za-z0-9_.]{0,12}",
    ]
}

fn list() -> impl Strategy<Value = (BTreeMap<String, BTreeMap<String, String>>, u64)> {
    (
        prop::collection::btree_map(
            section_name(),
            prop::collection::btree_map(key(), edge_trimmed(30), 0..8),
            0..12,
        ),
        any::<u64>(),
    )
}

fn render(sections: &BTreeMap<String, BTreeMap<String, String>>, endings: u64) -> String {
    let mut out = String::new();
    let mut n = 0;
    let mut ending = || {
        n += 1;
        if endings >> (n % 64) & 1 == 1 { "\r\n" } else { "\n" }
    };
    for (name, keys) in sections {
        out.push_str(&format!("[{name}]{}", ending()));
        for (key, value) in keys {
            out.push_str(&format!("{key}={value}{}", ending()));
        }
        out.push_str(ending());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn both_readers_agree_on_every_key_and_value((sections, endings) in list()) {
        let text = render(&sections, endings);
        prop_assert_eq!(v8help_map(text.as_bytes()), configparser_map(&text));
    }
}

#[test]
fn both_readers_agree_on_the_office_fixture_without_its_bom() {
    let bytes = std::fs::read(common::v8i::fixtures().join("office.v8i")).expect("fixture");
    let text = std::str::from_utf8(&bytes[3..]).expect("UTF-8 after the BOM");
    let ours = v8help_map(&bytes);
    assert_eq!(ours, configparser_map(text));
    assert_eq!(
        ours["Бухгалтерия"]["StartupErrorHelpText"].as_deref(),
        Some("Сервер недоступен; звоните дежурному: +7 (495) 123-45-67, доб. #2 — \"горячая линия\"")
    );
}

#[test]
fn default_configparser_loses_v8i_data_that_v8help_keeps() {
    let bytes = std::fs::read(common::v8i::fixtures().join("office.v8i")).expect("fixture");
    let text = String::from_utf8(bytes.clone()).expect("UTF-8");
    let mut ini = Ini::new_cs();
    ini.read(text).expect("reads");
    // The BOM hides the first header: `[Отделы]` becomes a key of the default section and its
    // keys land there too.
    assert!(!ini.sections().iter().any(|s| s == "Отделы"));
    let default = &ini.get_map_ref()["default"];
    assert!(default.contains_key("\u{feff}[Отделы]"));
    assert_eq!(
        default.get("ID").cloned().flatten().as_deref(),
        Some("3f0b6a52-1c2e-4d5b-9a1f-0c8e2b7d4a11")
    );
    // `;` starts an inline comment: the Connect string and the help text are cut.
    assert_eq!(
        ini.get("Бухгалтерия", "Connect").as_deref(),
        Some("Srvr=\"srv1c-01.corp.local:1541\"")
    );
    assert_eq!(
        ini.get("Бухгалтерия", "StartupErrorHelpText").as_deref(),
        Some("Сервер недоступен")
    );
    let ours = v8help_map(&bytes);
    assert_eq!(
        ours["Бухгалтерия"]["Connect"].as_deref(),
        Some("Srvr=\"srv1c-01.corp.local:1541\";Ref=\"buh_2024\";")
    );
}
