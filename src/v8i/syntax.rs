//! The syntax of a base list: lines with their exact endings, `[section]` headers and
//! `key=value` lines, as byte offsets into the text, and the keys the platform knows. The
//! lowest layer of the reader: it imports nothing else of `v8i`'s but the key names.
//!
//! A line ends at `\n`; a `\r` just before it belongs to the line ending (CRLF), any other
//! `\r` is data.

use super::{CONNECT_KEY, FOLDER_KEY, HELP_TEXT_KEY, HELP_URL_KEY, ID_KEY, ORDER_KEY};

/// The UTF-8 byte order mark, kept on write when a file has it.
pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The keys whose spelling matters to the platform, in the order of the fields of
/// [`super::Entry`]. Keys are case-sensitive: one equal to these but for case is worth a
/// warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Connect,
    Folder,
    Id,
    OrderInList,
    HelpText,
    HelpUrl,
}

impl Key {
    /// Every known key, in slot order (`Key as usize`).
    pub(super) const ALL: [Key; 6] = [
        Key::Connect,
        Key::Folder,
        Key::Id,
        Key::OrderInList,
        Key::HelpText,
        Key::HelpUrl,
    ];

    /// The key as the platform spells it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Key::Connect => CONNECT_KEY,
            Key::Folder => FOLDER_KEY,
            Key::Id => ID_KEY,
            Key::OrderInList => ORDER_KEY,
            Key::HelpText => HELP_TEXT_KEY,
            Key::HelpUrl => HELP_URL_KEY,
        }
    }

    /// The known key spelled exactly `key`, if any.
    pub(super) fn of(key: &[u8]) -> Option<Key> {
        Some(match key {
            b"Connect" => Key::Connect,
            b"Folder" => Key::Folder,
            b"ID" => Key::Id,
            b"OrderInList" => Key::OrderInList,
            b"StartupErrorHelpText" => Key::HelpText,
            b"StartupErrorHelpURL" => Key::HelpUrl,
            _ => return None,
        })
    }
}

/// Where the input stops being UTF-8. Such a file is still listed (with U+FFFD in place of
/// the bad bytes) but never written: it may be in a legacy code page, and writing UTF-8 into
/// it would mix encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8 {
    /// Byte offset of the first invalid sequence in the input.
    pub offset: usize,
    /// 1-based line of that offset.
    pub line: usize,
    /// How many invalid sequences the input has in all.
    pub count: usize,
    /// The input starts with a UTF-16 byte order mark.
    pub utf16: bool,
}

#[derive(Debug, Clone, Copy)]
/// One line as byte offsets: content from `start` to `content_end`, its ending up to `end`.
pub(super) struct Line {
    pub(super) start: usize,
    pub(super) content_end: usize,
    pub(super) end: usize,
    pub(super) kind: Kind,
}

#[derive(Debug, Clone, Copy)]
/// What a line is; offsets into the text.
pub(super) enum Kind {
    Blank,
    Header { name_start: usize, name_end: usize },
    Key { eq: usize },
    Other,
}

#[derive(Debug, Clone)]
/// A `[section]`: its lines and where its name and known keys are.
pub(super) struct SectionData {
    /// Index of the header line.
    pub(super) header: usize,
    /// Index one past the section's last line.
    pub(super) end: usize,
    pub(super) name_start: usize,
    pub(super) name_end: usize,
    /// Value span of the first occurrence of each [`Key`] (by `Key as usize`),
    /// `(NONE, NONE)` if absent.
    pub(super) known: [(usize, usize); Key::ALL.len()],
}

/// An absent span in [`SectionData::known`].
pub(super) const NONE: usize = usize::MAX;

/// `s` without spaces and tabs at either end (a byte loop: the char-set pattern of
/// `str::trim_matches` is slow on the reader's hot path).
pub(crate) fn trim_blanks(s: &str) -> &str {
    let bytes = s.as_bytes();
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &s[start..end]
}

pub(super) fn find_invalid_utf8(bytes: &[u8]) -> Option<InvalidUtf8> {
    let mut offset = 0;
    let mut first = None;
    let mut count = 0;
    for chunk in bytes.utf8_chunks() {
        offset += chunk.valid().len();
        if !chunk.invalid().is_empty() {
            count += 1;
            first.get_or_insert(offset);
            offset += chunk.invalid().len();
        }
    }
    let offset = first?;
    Some(InvalidUtf8 {
        offset,
        line: 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count(),
        count,
        utf16: bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF"),
    })
}

/// Splits the text into lines and sections in one sweep: a single `memchr2` pass finds
/// every `\n` and `=`, so each line costs a few comparisons.
pub(super) fn split(bytes: &[u8], start: usize) -> (Vec<Line>, Vec<SectionData>) {
    let mut lines = Vec::with_capacity(memchr::memchr_iter(b'\n', bytes).count() + 1);
    let mut sections: Vec<SectionData> = Vec::new();
    let mut line_start = start;
    let mut first_eq = None;
    let mut push = |line_start: usize, newline: Option<usize>, first_eq: Option<usize>| {
        let (content_end, end) = match newline {
            Some(newline) if newline > line_start && bytes[newline - 1] == b'\r' => (newline - 1, newline + 1),
            Some(newline) => (newline, newline + 1),
            None => (bytes.len(), bytes.len()),
        };
        let kind = classify(bytes, line_start, content_end, first_eq);
        let index = lines.len();
        match kind {
            Kind::Header { name_start, name_end } => {
                sections.push(SectionData {
                    header: index,
                    end: index + 1,
                    name_start,
                    name_end,
                    known: [(NONE, NONE); Key::ALL.len()],
                });
            }
            Kind::Key { eq } => {
                if let Some(section) = sections.last_mut() {
                    section.end = index + 1;
                    if let Some(key) = Key::of(&bytes[line_start..eq])
                        && section.known[key as usize].0 == NONE
                    {
                        section.known[key as usize] = (eq + 1, content_end);
                    }
                }
            }
            Kind::Blank | Kind::Other => {
                if let Some(section) = sections.last_mut() {
                    section.end = index + 1;
                }
            }
        }
        lines.push(Line {
            start: line_start,
            content_end,
            end,
            kind,
        });
    };
    for pos in memchr::memchr2_iter(b'\n', b'=', &bytes[start..]) {
        let pos = start + pos;
        if bytes[pos] == b'=' {
            first_eq.get_or_insert(pos);
            continue;
        }
        push(line_start, Some(pos), first_eq.take());
        line_start = pos + 1;
    }
    if line_start < bytes.len() {
        push(line_start, None, first_eq);
    }
    (lines, sections)
}

fn classify(bytes: &[u8], start: usize, end: usize, first_eq: Option<usize>) -> Kind {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let Some(first) = bytes[start..end].iter().position(|b| !is_space(b)) else {
        return Kind::Blank;
    };
    let trimmed_start = start + first;
    if bytes[trimmed_start] == b'[' {
        let trimmed_end = end - bytes[start..end].iter().rev().take_while(|b| is_space(b)).count();
        if trimmed_end - trimmed_start >= 2 && bytes[trimmed_end - 1] == b']' {
            return Kind::Header {
                name_start: trimmed_start + 1,
                name_end: trimmed_end - 1,
            };
        }
    }
    match first_eq {
        Some(eq) => Kind::Key { eq },
        None => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_found_by_its_own_spelling_only() {
        for key in Key::ALL {
            assert_eq!(Key::of(key.name().as_bytes()), Some(key));
            assert_eq!(Key::ALL[key as usize], key);
        }
        assert_eq!(Key::of(b"connect"), None);
        assert_eq!(Key::of(b"Id"), None);
    }
}
