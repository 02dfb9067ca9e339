//! What must hold for any input bytes, shared by the fuzz target (`fuzz/`) and the
//! regression test that replays the fuzzer's findings (`tests/v8i_fuzz_regressions.rs`).
//! Panics when a promise is broken.

use v8help::v8i::{self, EntryKind, HELP_TEXT_KEY, HELP_URL_KEY, SetKey};

const TEXT: &str = "Звоните 555; #help \"=\"";
const URL: &str = "https://help.example/?a=1;b#c";

/// Reads `data` every way v8help can, then checks: the lines give back the input, an empty
/// edit is byte-identical, and setting help in every base reads back with names, kinds,
/// `Connect`, IDs and the other sections' help unchanged.
pub fn check(data: &[u8]) {
    let list = v8i::parse(data);
    let _ = list.diagnostics();
    for entry in list.entries() {
        let _ = entry.order();
        if let Some(connect) = entry.connect_parsed() {
            let _ = (connect.describe(), connect.kind(), connect.unclosed_quote());
        }
    }
    let _ = v8i::parse_start_cfg(data);

    if list.invalid_utf8().is_some() {
        assert!(v8i::apply(&list, &[]).is_err(), "a non-UTF-8 list must not be written");
        return;
    }
    let mut joined = Vec::with_capacity(data.len());
    if list.has_bom() {
        joined.extend_from_slice(b"\xEF\xBB\xBF");
    }
    for line in list.lines() {
        joined.extend_from_slice(line.content.as_bytes());
        joined.extend_from_slice(line.ending.as_bytes());
    }
    assert_eq!(joined, data, "lines do not give back the input");
    let unchanged = v8i::apply(&list, &[]).expect("an empty edit of UTF-8 succeeds");
    assert_eq!(unchanged.bytes, data, "an empty edit changed bytes");

    let bases: Vec<usize> = list
        .entries()
        .filter(|e| e.kind() == EntryKind::Base)
        .map(|e| e.section)
        .collect();
    let sets: Vec<SetKey<'_>> = bases
        .iter()
        .flat_map(|&section| {
            [
                SetKey {
                    section,
                    key: HELP_TEXT_KEY,
                    value: TEXT,
                },
                SetKey {
                    section,
                    key: HELP_URL_KEY,
                    value: URL,
                },
            ]
        })
        .collect();
    let edited = v8i::apply(&list, &sets).expect("setting help in bases succeeds");
    let after = v8i::parse(&edited.bytes);
    assert_eq!(after.section_count(), list.section_count());
    for (old, new) in list.entries().zip(after.entries()) {
        assert_eq!(old.name, new.name);
        assert_eq!(old.kind(), new.kind());
        assert_eq!(old.connect, new.connect);
        assert_eq!(old.id, new.id);
        assert_eq!(old.folder, new.folder);
        assert_eq!(old.order_in_list, new.order_in_list);
        if bases.contains(&old.section) {
            assert_eq!(new.help_text, Some(TEXT));
            assert_eq!(new.help_url, Some(URL));
        } else {
            assert_eq!(old.help_text, new.help_text);
            assert_eq!(old.help_url, new.help_url);
        }
    }
}
