//! Setting keys in a base list by splicing the original bytes.
//!
//! An existing `key=value` line gets a new value and keeps its key, spelling and line
//! ending; a missing key is added after the section's last key line with that line's ending
//! (or the file's dominant one). Every other byte — BOM, blank and odd lines, unknown keys,
//! duplicates, the final newline or its absence — is copied as it was. With no edits the
//! output is the input, byte for byte.

use super::error::EditError;
use super::reader::{BaseList, LineKind};

/// One key to set in one section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetKey<'k> {
    /// Index of the section ([`super::Entry::section`]).
    pub section: usize,
    /// The key, compared exactly (keys are case-sensitive).
    pub key: &'k str,
    /// The new value, one line.
    pub value: &'k str,
}

/// One line the writer changed or added, for the "what changed" report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Index of the section.
    pub section: usize,
    /// Its name, as written.
    pub section_name: String,
    /// 1-based line in the new file.
    pub line: usize,
    /// The key.
    pub key: String,
    /// The value before, `None` when the key was added.
    pub old: Option<String>,
    /// The value after.
    pub new: String,
}

/// The result of [`apply`]: the new bytes and what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The whole new file.
    pub bytes: Vec<u8>,
    /// Changed and added lines in file order; empty when nothing had to change.
    pub changes: Vec<Change>,
}

struct Splice {
    /// Byte range of the input replaced by `insert`.
    from: usize,
    to: usize,
    insert: String,
    /// Line number (1-based, in the input) the change concerns; for an insertion, the line
    /// it goes after.
    line: usize,
    added_line: bool,
    change: Change,
}

/// Sets each key in its section and returns the new file. A key present several times in a
/// section is set at every occurrence, so no reader can pick a stale one. Refuses (and
/// changes nothing) when the list is not UTF-8 or a key or value cannot be written as one
/// line.
pub fn apply(list: &BaseList<'_>, sets: &[SetKey<'_>]) -> Result<Edited, EditError> {
    if let Some(bad) = list.invalid_utf8() {
        return Err(EditError::InvalidUtf8 {
            offset: bad.offset,
            line: bad.line,
        });
    }
    let mut splices = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        check_key(set.key)?;
        if set.value.contains(['\r', '\n']) {
            return Err(EditError::LineBreakInValue { key: set.key.into() });
        }
        if sets[..i].iter().any(|s| s.section == set.section && s.key == set.key) {
            return Err(EditError::SetTwice {
                key: set.key.into(),
                index: set.section,
            });
        }
        plan(list, set, &mut splices)?;
    }
    // At one position a value replacement (inside a line) goes before a line insertion
    // (after it): they meet when the last line has an empty value and no line ending.
    splices.sort_by_key(|s| (s.from, s.added_line));

    let text = list.text();
    let mut bytes = Vec::with_capacity(text.len() + splices.iter().map(|s| s.insert.len()).sum::<usize>());
    let mut copied = 0;
    let mut added_before = 0;
    let mut changes = Vec::with_capacity(splices.len());
    for splice in splices {
        bytes.extend_from_slice(&text.as_bytes()[copied..splice.from]);
        bytes.extend_from_slice(splice.insert.as_bytes());
        copied = splice.to;
        let mut change = splice.change;
        if splice.added_line {
            added_before += 1;
            change.line = splice.line + added_before;
        } else {
            change.line = splice.line + added_before;
        }
        changes.push(change);
    }
    bytes.extend_from_slice(&text.as_bytes()[copied..]);
    Ok(Edited { bytes, changes })
}

fn check_key(key: &str) -> Result<(), EditError> {
    let trimmed = key.trim_matches([' ', '\t']);
    if trimmed.is_empty() || key.contains(['=', '\r', '\n']) || trimmed.starts_with('[') {
        return Err(EditError::BadKey { key: key.into() });
    }
    Ok(())
}

fn plan(list: &BaseList<'_>, set: &SetKey<'_>, splices: &mut Vec<Splice>) -> Result<(), EditError> {
    let section = list
        .section(set.section)
        .ok_or(EditError::NoSuchSection { index: set.section })?;
    let change = |old: Option<&str>| Change {
        section: set.section,
        section_name: section.name().into(),
        line: 0,
        key: set.key.into(),
        old: old.map(Into::into),
        new: set.value.into(),
    };
    let (header, end) = section.line_indices();
    let mut last_key_line = header;
    let mut found = false;
    for index in header + 1..end {
        let LineKind::Key { key, value } = list.line_ref(index).kind else {
            continue;
        };
        last_key_line = index;
        if key != set.key {
            continue;
        }
        found = true;
        if value == set.value {
            continue;
        }
        let Some((from, to)) = list.value_span(index) else {
            continue;
        };
        splices.push(Splice {
            from,
            to,
            insert: set.value.into(),
            line: index + 1,
            added_line: false,
            change: change(Some(value)),
        });
    }
    if found {
        return Ok(());
    }
    let (_, content_end, line_end) = list.line_span(last_key_line);
    let new_line = format!("{}={}", set.key, set.value);
    let splice = if line_end > content_end {
        let ending = &list.text()[content_end..line_end];
        Splice {
            from: line_end,
            to: line_end,
            insert: format!("{new_line}{ending}"),
            line: last_key_line + 1,
            added_line: true,
            change: change(None),
        }
    } else {
        // The anchor is the last line of the file and has no ending: give it one and leave
        // the new last line without, as the file was. A `\r` ending that line is data (no
        // `\n` follows it); a bare `\n` after it would turn it into a CRLF ending and cut it
        // from the value, so such a line gets a full CRLF.
        let ending = if list.text()[..content_end].ends_with('\r') {
            "\r\n"
        } else {
            list.dominant_line_ending()
        };
        Splice {
            from: content_end,
            to: content_end,
            insert: format!("{ending}{new_line}"),
            line: last_key_line + 1,
            added_line: true,
            change: change(None),
        }
    };
    splices.push(splice);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v8i::parse;

    fn set(list: &BaseList<'_>, sets: &[SetKey<'_>]) -> (String, Vec<Change>) {
        let edited = apply(list, sets).expect("edit");
        (String::from_utf8(edited.bytes).expect("utf-8"), edited.changes)
    }

    #[test]
    fn no_edits_give_back_the_input() {
        let input = "\u{feff}[A]\r\nConnect=x\n\n  junk\r\n[A]\nk=v".as_bytes();
        let list = parse(input);
        assert_eq!(apply(&list, &[]).expect("edit").bytes, input);
    }

    #[test]
    fn added_key_goes_after_the_last_key_line_with_its_ending() {
        let list = parse(b"[A]\r\nConnect=x\r\n\r\n[B]\nConnect=y\n");
        let (out, changes) = set(
            &list,
            &[SetKey {
                section: 0,
                key: "StartupErrorHelpText",
                value: "Звоните 123",
            }],
        );
        assert_eq!(
            out,
            "[A]\r\nConnect=x\r\nStartupErrorHelpText=Звоните 123\r\n\r\n[B]\nConnect=y\n"
        );
        assert_eq!(changes[0].line, 3);
        assert_eq!(changes[0].old, None);
    }

    #[test]
    fn existing_key_is_replaced_in_place_at_every_occurrence() {
        let list = parse(b"[A]\nConnect=x\nStartupErrorHelpURL=old\nZ=1\nStartupErrorHelpURL=older\r\n");
        let (out, changes) = set(
            &list,
            &[SetKey {
                section: 0,
                key: "StartupErrorHelpURL",
                value: "https://h/?a=1#b",
            }],
        );
        assert_eq!(
            out,
            "[A]\nConnect=x\nStartupErrorHelpURL=https://h/?a=1#b\nZ=1\nStartupErrorHelpURL=https://h/?a=1#b\r\n"
        );
        let lines: Vec<_> = changes.iter().map(|c| (c.line, c.old.clone())).collect();
        assert_eq!(lines, [(3, Some("old".to_string())), (5, Some("older".to_string()))]);
    }

    #[test]
    fn a_last_line_without_newline_stays_without() {
        let list = parse(b"[A]\r\nConnect=x");
        let (out, _) = set(
            &list,
            &[
                SetKey {
                    section: 0,
                    key: "StartupErrorHelpText",
                    value: "t",
                },
                SetKey {
                    section: 0,
                    key: "StartupErrorHelpURL",
                    value: "https://u",
                },
            ],
        );
        assert_eq!(
            out,
            "[A]\r\nConnect=x\r\nStartupErrorHelpText=t\r\nStartupErrorHelpURL=https://u"
        );
    }

    #[test]
    fn empty_last_value_without_newline_is_replaced_on_its_own_line() {
        // Found by the property test: the replaced value ended up on the added line.
        let list = parse(b"[a]\r\nStartupErrorHelpURL=");
        let (out, changes) = set(
            &list,
            &[
                SetKey {
                    section: 0,
                    key: "StartupErrorHelpText",
                    value: "",
                },
                SetKey {
                    section: 0,
                    key: "StartupErrorHelpURL",
                    value: "0",
                },
            ],
        );
        assert_eq!(out, "[a]\r\nStartupErrorHelpURL=0\r\nStartupErrorHelpText=");
        let lines: Vec<_> = changes.iter().map(|c| (c.key.as_str(), c.line)).collect();
        assert_eq!(lines, [("StartupErrorHelpURL", 2), ("StartupErrorHelpText", 3)]);
    }

    #[test]
    fn a_lone_cr_ending_the_file_stays_in_its_value() {
        // Found by the fuzzer: with LF as the dominant ending, the added "\n" joined the
        // final "\r" into a CRLF and the ID lost its last byte.
        let list = parse(b"[a]\nConnect=x\nID=7\r");
        let (out, _) = set(
            &list,
            &[SetKey {
                section: 0,
                key: "StartupErrorHelpText",
                value: "t",
            }],
        );
        assert_eq!(out, "[a]\nConnect=x\nID=7\r\r\nStartupErrorHelpText=t");
        let reread = parse(out.as_bytes());
        assert_eq!(reread.entries().next().and_then(|e| e.id), Some("7\r"));
    }

    #[test]
    fn change_lines_count_the_lines_added_above() {
        let list = parse(b"[A]\nConnect=x\n[B]\nConnect=y\nStartupErrorHelpText=old\n");
        let (_, changes) = set(
            &list,
            &[
                SetKey {
                    section: 1,
                    key: "StartupErrorHelpText",
                    value: "new",
                },
                SetKey {
                    section: 0,
                    key: "StartupErrorHelpText",
                    value: "new",
                },
            ],
        );
        let lines: Vec<_> = changes.iter().map(|c| (c.section_name.as_str(), c.line)).collect();
        assert_eq!(lines, [("A", 3), ("B", 6)]);
    }

    #[test]
    fn unchanged_values_make_no_change() {
        let list = parse(b"[A]\nStartupErrorHelpText=same\n");
        let (out, changes) = set(
            &list,
            &[SetKey {
                section: 0,
                key: "StartupErrorHelpText",
                value: "same",
            }],
        );
        assert_eq!(out, "[A]\nStartupErrorHelpText=same\n");
        assert!(changes.is_empty());
    }

    #[test]
    fn refuses_line_breaks_bad_keys_and_non_utf8_files() {
        let list = parse(b"[A]\n");
        let one = |key, value| apply(&list, &[SetKey { section: 0, key, value }]);
        assert!(matches!(one("K", "a\nb"), Err(EditError::LineBreakInValue { .. })));
        assert!(matches!(one("K=1", "a"), Err(EditError::BadKey { .. })));
        assert!(matches!(one("[K]", "a"), Err(EditError::BadKey { .. })));
        assert!(matches!(
            apply(
                &list,
                &[SetKey {
                    section: 3,
                    key: "K",
                    value: "a"
                }]
            ),
            Err(EditError::NoSuchSection { index: 3 })
        ));
        let cp1251 = parse(b"[\xc1]\n");
        assert!(matches!(
            apply(
                &cp1251,
                &[SetKey {
                    section: 0,
                    key: "K",
                    value: "a"
                }]
            ),
            Err(EditError::InvalidUtf8 { offset: 1, line: 1 })
        ));
    }
}
