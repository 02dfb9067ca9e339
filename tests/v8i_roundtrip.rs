//! Property tests over generated base lists: reading and writing back without changes is
//! byte-identical, the reader sees every line as it was generated, and setting help keys
//! changes only the intended lines.

use proptest::prelude::*;

use v8help::v8i::{self, HELP_TEXT_KEY, HELP_URL_KEY, LineKind, SetKey};

/// One generated line, as the generator meant it.
#[derive(Debug, Clone)]
enum Gen {
    Header(String),
    Key(String, String),
    Blank(String),
    Odd(String),
}

#[derive(Debug, Clone)]
struct GenFile {
    bom: bool,
    lines: Vec<(Gen, &'static str)>,
}

impl GenFile {
    fn render(&self) -> Vec<u8> {
        let mut out = String::new();
        if self.bom {
            out.push('\u{feff}');
        }
        for (line, ending) in &self.lines {
            match line {
                Gen::Header(name) => out.push_str(&format!("[{name}]")),
                Gen::Key(key, value) => out.push_str(&format!("{key}={value}")),
                Gen::Blank(spaces) | Gen::Odd(spaces) => out.push_str(spaces),
            }
            out.push_str(ending);
        }
        out.into_bytes()
    }
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9 =;#\"()\\[\\]._-]{1,16}",
        "[а-яА-ЯёЁ0-9 =\\[\\]]{1,16}",
        Just("Бухгалтерия".to_string()),
        Just("БУХГАЛТЕРИЯ".to_string()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Connect".to_string()),
        Just("ID".to_string()),
        Just("Folder".to_string()),
        Just("OrderInList".to_string()),
        Just(HELP_TEXT_KEY.to_string()),
        Just(HELP_URL_KEY.to_string()),
        Just("Connect ".to_string()),
        Just("startuperrorhelptext".to_string()),
        "[A-Za-z][A-Za-z0-9]{0,10}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\r\n]{0,24}",
        "[A-Za-zА-Яа-я0-9 ;#=\"\\\\:/?&.]{0,32}",
        Just(r#"Srvr="srv:1541";Ref="a;b""c";"#.to_string()),
        Just(String::new()),
    ]
}

fn line() -> impl Strategy<Value = Gen> {
    prop_oneof![
        2 => name().prop_map(Gen::Header),
        6 => (key(), value()).prop_map(|(k, v)| Gen::Key(k, v)),
        1 => "[ \t]{0,3}".prop_map(Gen::Blank),
        1 => "[a-zA-Zа-я;#][a-zA-Zа-я;# ]{0,12}".prop_map(Gen::Odd),
    ]
}

fn file() -> impl Strategy<Value = GenFile> {
    (
        any::<bool>(),
        prop::collection::vec((line(), prop_oneof![Just("\r\n"), Just("\n")]), 0..40),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(bom, mut lines, final_newline, final_cr)| {
            if !final_newline && let Some(last) = lines.last_mut() {
                last.1 = "";
                // A `\r` with no `\n` after it is data: only possible at the very end.
                if let Gen::Key(_, value) = &mut last.0
                    && final_cr
                {
                    value.push('\r');
                }
                // An empty last line without a newline is no line at all.
                if let Gen::Blank(spaces) = &mut last.0
                    && spaces.is_empty()
                {
                    spaces.push(' ');
                }
            }
            GenFile { bom, lines }
        })
}

fn help_value() -> impl Strategy<Value = String> {
    "[A-Za-zА-Яа-я0-9 ;#=\"/:?&.]{0,24}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn unchanged_round_trip_is_byte_identical(generated in file()) {
        let bytes = generated.render();
        let list = v8i::parse(&bytes);
        prop_assert_eq!(&v8i::apply(&list, &[]).expect("no edits").bytes, &bytes);

        let mut joined: Vec<u8> = if list.has_bom() { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
        for line in list.lines() {
            joined.extend_from_slice(line.content.as_bytes());
            joined.extend_from_slice(line.ending.as_bytes());
        }
        prop_assert_eq!(&joined, &bytes);

        prop_assert_eq!(list.line_count(), generated.lines.len());
        for (read, (meant, ending)) in list.lines().zip(&generated.lines) {
            prop_assert_eq!(read.ending, *ending);
            match (meant, read.kind) {
                (Gen::Header(name), LineKind::Header { name: got }) => prop_assert_eq!(got, name.as_str()),
                (Gen::Key(key, value), LineKind::Key { key: k, value: v }) => {
                    prop_assert_eq!(k, key.as_str());
                    prop_assert_eq!(v, value.as_str());
                }
                (Gen::Blank(_), LineKind::Blank) | (Gen::Odd(_), LineKind::Other) => {}
                (meant, read) => prop_assert!(false, "generated {:?}, read {:?}", meant, read),
            }
        }
    }

    #[test]
    fn set_help_changes_only_the_intended_lines(
        generated in file(),
        picks in prop::collection::vec(any::<bool>(), 40),
        text in help_value(),
        url in prop::option::of(help_value()),
    ) {
        let bytes = generated.render();
        let before = v8i::parse(&bytes);
        let chosen: Vec<usize> = (0..before.section_count()).filter(|i| picks[i % picks.len()]).collect();
        let mut sets = Vec::new();
        for &section in &chosen {
            sets.push(SetKey { section, key: HELP_TEXT_KEY, value: &text });
            if let Some(url) = &url {
                sets.push(SetKey { section, key: HELP_URL_KEY, value: url });
            }
        }
        let edited = v8i::apply(&before, &sets).expect("valid edit");
        let after = v8i::parse(&edited.bytes);

        prop_assert_eq!(after.has_bom(), before.has_bom());
        prop_assert_eq!(after.section_count(), before.section_count());
        let is_intended = |section: usize, key: &str| {
            chosen.contains(&section) && (key == HELP_TEXT_KEY || (url.is_some() && key == HELP_URL_KEY))
        };
        for (old, new) in before.sections().zip(after.sections()) {
            prop_assert_eq!(old.name(), new.name());
            let kept = |s: &v8i::Section<'_>| -> Vec<(String, String)> {
                s.keys()
                    .filter(|k| !is_intended(s.index(), k.key))
                    .map(|k| (k.key.to_string(), k.value.to_string()))
                    .collect()
            };
            prop_assert_eq!(kept(&old), kept(&new));
            if chosen.contains(&new.index()) {
                for (key, wanted) in [(HELP_TEXT_KEY, Some(&text)), (HELP_URL_KEY, url.as_ref())] {
                    let Some(wanted) = wanted else { continue };
                    let values: Vec<&str> = new.keys().filter(|k| k.key == key).map(|k| k.value).collect();
                    let old_count = old.keys().filter(|k| k.key == key).count();
                    prop_assert_eq!(values.len(), old_count.max(1));
                    prop_assert!(values.iter().all(|v| v == wanted));
                }
            }
        }

        // Line by line: drop the intended key lines from both files; the rest is identical,
        // except that a final line without a newline may have gained one.
        let section_of_line = |list: &v8i::BaseList<'_>| -> Vec<Option<usize>> {
            let mut owner = vec![None; list.line_count()];
            let starts: Vec<usize> = list.sections().map(|s| s.line()).collect();
            for (i, slot) in owner.iter_mut().enumerate() {
                *slot = starts.iter().rposition(|&start| start <= i + 1);
            }
            owner
        };
        let remaining = |list: &v8i::BaseList<'_>| -> Vec<(String, String)> {
            let owner = section_of_line(list);
            list.lines()
                .filter(|l| match (l.kind, owner[l.number - 1]) {
                    (LineKind::Key { key, .. }, Some(section)) => !is_intended(section, key),
                    _ => true,
                })
                .map(|l| (l.content.to_string(), l.ending.to_string()))
                .collect()
        };
        let old_rest = remaining(&before);
        let new_rest = remaining(&after);
        prop_assert_eq!(old_rest.len(), new_rest.len());
        for (old, new) in old_rest.iter().zip(&new_rest) {
            prop_assert_eq!(&old.0, &new.0);
            // Only the old last line has no ending; it may gain one when a line is added after it.
            if !old.1.is_empty() {
                prop_assert_eq!(&old.1, &new.1);
            }
        }

        // An added line takes the ending of the line above it (or none at the very end).
        let lines: Vec<_> = after.lines().collect();
        for change in edited.changes.iter().filter(|c| c.old.is_none()) {
            let added = lines[change.line - 1];
            let above = lines[change.line - 2];
            prop_assert!(added.ending == above.ending || (added.ending.is_empty() && change.line == lines.len()));
        }
    }
}
