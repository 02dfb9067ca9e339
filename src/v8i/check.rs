//! The checks of a base list: what `bases check` reports within one file (duplicate names
//! and IDs, odd lines, spaces around `=`, keys in the wrong case, bases without help) and
//! across the files read together ([`cross_check`]). Reads the list through [`super::reader`];
//! nothing imports this module but the crate's surface.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::hash::{BuildHasherDefault, Hasher};

use super::connect::{Connect, ConnectKind};
use super::diagnostic::{Diagnostic, Finding, Presence};
use super::is_http_url;
use super::name::{fold_hash, folded_key, names_equal};
use super::reader::{BaseList, Entry, LineKind, OrderInList, Section, is_plain_number};
use super::syntax::{Key, Kind, trim_blanks};

impl BaseList<'_> {
    /// Everything odd about the list, in line order (found on first request: listing needs
    /// none of it, checking all of it).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        self.diagnostics.get_or_init(|| diagnose(self))
    }
}

/// A hasher for keys that are already hashes (see [`fold_hash`]).
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type FirstByHash = HashMap<u64, usize, BuildHasherDefault<Prehashed>>;

/// A hash equal for byte strings equal but for ASCII case (`0x20` is set in every byte,
/// which also merges a few non-letters; [`first_equal`] compares exactly), eight bytes at
/// a time since IDs are long.
fn ascii_fold_hash(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ bytes.len() as u64;
    for chunk in chunks.by_ref() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        hash = (hash ^ (u64::from_le_bytes(word) | 0x2020_2020_2020_2020)).wrapping_mul(0x100_0000_01b3);
        hash ^= hash >> 29;
    }
    for &b in chunks.remainder() {
        hash = (hash ^ u64::from(b | 0x20)).wrapping_mul(0x100_0000_01b3);
    }
    hash
}

/// Records `index` as the first holder of `hash` or returns the earlier section that is
/// `equal` to it. A hash shared by unequal keys falls back to a scan of the earlier sections.
fn first_equal(seen: &mut FirstByHash, hash: u64, index: usize, equal: impl Fn(usize) -> bool) -> Option<usize> {
    match seen.entry(hash) {
        Slot::Vacant(slot) => {
            slot.insert(index);
            None
        }
        Slot::Occupied(slot) if equal(*slot.get()) => Some(*slot.get()),
        Slot::Occupied(_) => (0..index).find(|&other| equal(other)),
    }
}

fn presence(value: Option<&str>) -> Presence {
    match value {
        None => Presence::Absent,
        Some("") => Presence::Empty,
        Some(_) => Presence::Present,
    }
}

/// Everything odd about one list, in line order.
fn diagnose(list: &BaseList<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(bad) = list.invalid_utf8 {
        out.push(Diagnostic {
            line: bad.line,
            finding: Finding::InvalidUtf8 {
                offset: bad.offset,
                count: bad.count,
                utf16: bad.utf16,
            },
        });
    }

    let preamble_end = list.sections.first().map_or(list.lines.len(), |s| s.header);
    for index in 0..preamble_end {
        let line = list.line_ref(index);
        match line.kind {
            LineKind::Key { key, .. } => out.push(Diagnostic {
                line: line.number,
                finding: Finding::KeyOutsideSection { key: key.into() },
            }),
            LineKind::Other => out.push(Diagnostic {
                line: line.number,
                finding: Finding::UnrecognizedLine,
            }),
            LineKind::Blank | LineKind::Header { .. } => {}
        }
    }

    let capacity = list.sections.len();
    let mut names = FirstByHash::with_capacity_and_hasher(capacity, Default::default());
    let mut ids = FirstByHash::with_capacity_and_hasher(capacity, Default::default());
    let mut seen_keys = Vec::new();
    let id_of = |index: usize| {
        list.known_value(index, Key::Id)
            .map(str::trim)
            .filter(|id| !id.is_empty())
    };
    for section in list.sections() {
        let name = section.name();
        let line = section.line();
        let hash = fold_hash(name);
        let same_name = |other: usize| list.section(other).is_some_and(|s| names_equal(s.name(), name));
        if let Some(first) = first_equal(&mut names, hash, section.index(), same_name) {
            out.push(Diagnostic {
                line,
                finding: Finding::DuplicateName {
                    name: name.into(),
                    first_line: list.sections[first].header + 1,
                },
            });
        }
        diagnose_lines(list, &section, &mut seen_keys, &mut out);

        let entry = section.entry();
        if let Some(id) = entry.id.map(str::trim).filter(|id| !id.is_empty()) {
            let hash = ascii_fold_hash(id.as_bytes());
            let same_id = |other: usize| id_of(other).is_some_and(|o| o.eq_ignore_ascii_case(id));
            if let Some(first) = first_equal(&mut ids, hash, section.index(), same_id) {
                out.push(Diagnostic {
                    line,
                    finding: Finding::DuplicateId {
                        id: id.into(),
                        first_line: list.sections[first].header + 1,
                    },
                });
            }
        }
        diagnose_entry(&entry, &mut out);
    }
    out.sort_by_key(|d| d.line);
    out
}

fn diagnose_lines<'l>(
    list: &'l BaseList<'_>,
    section: &Section<'_>,
    seen: &mut Vec<(&'l str, usize)>,
    out: &mut Vec<Diagnostic>,
) {
    let (header, end) = section.line_indices();
    let text = &list.text[..];
    seen.clear();
    // A 64-bit filter over (length, last byte): a key whose bit is clear has not been seen
    // in this section, so the scan of `seen` is only needed when the bit is set.
    let mut filter = 0u64;
    for index in header + 1..end {
        let line = &list.lines[index];
        let number = index + 1;
        let eq = match line.kind {
            Kind::Key { eq } => eq,
            Kind::Other => {
                out.push(Diagnostic {
                    line: number,
                    finding: Finding::UnrecognizedLine,
                });
                continue;
            }
            Kind::Blank | Kind::Header { .. } => continue,
        };
        let key = &text[line.start..eq];
        let mut push = |finding| out.push(Diagnostic { line: number, finding });
        let trimmed = trim_blanks(key);
        if trimmed.is_empty() {
            push(Finding::EmptyKey);
            continue;
        }
        if trimmed.len() != key.len() {
            push(Finding::SpaceAroundKey { key: key.into() });
        } else if matches!(text.as_bytes().get(eq + 1), Some(b' ' | b'\t')) && eq + 1 < line.content_end {
            push(Finding::SpaceAfterEquals { key: key.into() });
        }
        if let Some(expected) = Key::ALL
            .iter()
            .map(|k| k.name())
            .find(|k| k.len() == trimmed.len() && *k != trimmed && k.eq_ignore_ascii_case(trimmed))
        {
            push(Finding::KeyCase {
                key: key.into(),
                expected,
            });
        }
        let bit = 1u64 << ((key.len() * 31 + usize::from(key.as_bytes()[key.len() - 1])) % 64);
        let earlier = if filter & bit == 0 {
            None
        } else {
            seen.iter().find(|(k, _)| *k == key)
        };
        filter |= bit;
        match earlier {
            Some(&(_, first_line)) => push(Finding::RepeatedKey {
                key: key.into(),
                first_line,
            }),
            None => seen.push((key, number)),
        }
    }
}

fn diagnose_entry(entry: &Entry<'_>, out: &mut Vec<Diagnostic>) {
    let mut push = |finding| {
        out.push(Diagnostic {
            line: entry.line,
            finding,
        })
    };
    if let Some(url) = entry.help_url.filter(|u| !u.is_empty() && !is_http_url(u)) {
        push(Finding::HelpUrlNotHttp { url: url.into() });
    }
    if let Some(order) = entry
        .order_in_list
        .filter(|o| !is_plain_number(o) && OrderInList::parse(o).is_none())
    {
        push(Finding::OrderNotNumber { value: order.into() });
    }
    let Some(connect) = entry.connect else {
        return;
    };
    if connect.trim().is_empty() {
        push(Finding::EmptyConnect {
            name: entry.name.into(),
        });
    } else {
        let (kind, unclosed_quote) = Connect::scan(connect);
        if kind == ConnectKind::Unknown {
            push(Finding::UnknownConnect {
                name: entry.name.into(),
            });
        }
        if unclosed_quote {
            push(Finding::UnclosedQuote {
                name: entry.name.into(),
            });
        }
    }
    let (text, url) = (presence(entry.help_text), presence(entry.help_url));
    if text != Presence::Present || url != Presence::Present {
        push(Finding::MissingHelp {
            name: entry.name.into(),
            text,
            url,
        });
    }
}

/// Finds names and IDs that repeat across several lists read together (a user's list and
/// the shared lists of its `1CEStart.cfg`). The platform shows them side by side, so these
/// are warnings; repeats inside one file are already errors from [`BaseList::diagnostics`].
///
/// `lists` pairs each list with its file name as the user gave it; the result pairs each
/// diagnostic with the index of the list it belongs to.
pub(crate) fn cross_check(lists: &[(&str, &BaseList<'_>)]) -> Vec<(usize, Diagnostic)> {
    let mut names: HashMap<String, (usize, usize)> = HashMap::new();
    let mut ids: HashMap<String, (usize, usize)> = HashMap::new();
    let mut out = Vec::new();
    for (file_index, (_, list)) in lists.iter().enumerate() {
        let mut local_names: HashMap<String, (usize, usize)> = HashMap::new();
        let mut local_ids: HashMap<String, (usize, usize)> = HashMap::new();
        for entry in list.entries() {
            let name_key = folded_key(entry.name);
            if let Some(&(first_file, first_line)) = names.get(&name_key) {
                out.push((
                    file_index,
                    Diagnostic {
                        line: entry.line,
                        finding: Finding::DuplicateNameAcrossFiles {
                            name: entry.name.into(),
                            first_file: lists[first_file].0.into(),
                            first_line,
                        },
                    },
                ));
            }
            local_names.entry(name_key).or_insert((file_index, entry.line));
            let Some(id) = entry.id.map(str::trim).filter(|id| !id.is_empty()) else {
                continue;
            };
            let id_key = id.to_ascii_lowercase();
            if let Some(&(first_file, first_line)) = ids.get(&id_key) {
                out.push((
                    file_index,
                    Diagnostic {
                        line: entry.line,
                        finding: Finding::DuplicateIdAcrossFiles {
                            id: id.into(),
                            first_file: lists[first_file].0.into(),
                            first_line,
                        },
                    },
                ));
            }
            local_ids.entry(id_key).or_insert((file_index, entry.line));
        }
        for (key, at) in local_names {
            names.entry(key).or_insert(at);
        }
        for (key, at) in local_ids {
            ids.entry(key).or_insert(at);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v8i::parse;

    #[test]
    fn a_hash_shared_by_different_names_still_finds_the_real_duplicate() {
        let names = ["a", "b", "B"];
        let mut seen = FirstByHash::default();
        let same = |i: usize| move |other: usize| names_equal(names[other], names[i]);
        assert_eq!(first_equal(&mut seen, 7, 0, same(0)), None);
        // "b" collides with "a" but is not equal: no duplicate.
        assert_eq!(first_equal(&mut seen, 7, 1, same(1)), None);
        // "B" collides too and equals "b", which the scan finds.
        assert_eq!(first_equal(&mut seen, 7, 2, same(2)), Some(1));
    }

    #[test]
    fn ids_hash_alike_but_for_ascii_case() {
        assert_eq!(
            ascii_fold_hash(b"AAAAAAAA-0000-4000-8000-00000000000B"),
            ascii_fold_hash(b"aaaaaaaa-0000-4000-8000-00000000000b")
        );
    }

    #[test]
    fn cross_check_reports_the_later_file_and_points_at_the_first() {
        let user = parse("[Склад]\nConnect=File=\"a\";\nID=1\n".as_bytes());
        let shared = parse("[склад]\nConnect=File=\"b\";\nID=2\n[Other]\nConnect=File=\"c\";\nID=1\n".as_bytes());
        let found = cross_check(&[("ibases.v8i", &user), ("common.v8i", &shared)]);
        assert_eq!(
            found,
            [
                (
                    1,
                    Diagnostic {
                        line: 1,
                        finding: Finding::DuplicateNameAcrossFiles {
                            name: "склад".into(),
                            first_file: "ibases.v8i".into(),
                            first_line: 1
                        }
                    }
                ),
                (
                    1,
                    Diagnostic {
                        line: 4,
                        finding: Finding::DuplicateIdAcrossFiles {
                            id: "1".into(),
                            first_file: "ibases.v8i".into(),
                            first_line: 1
                        }
                    }
                ),
            ]
        );
    }
}
