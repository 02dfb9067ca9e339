//! Reading a base list from bytes: lines with their exact endings, sections and typed
//! entries, over the offsets [`super::syntax`] finds. Pure: no I/O, never fails.
//!
//! The model is a list of lines, each remembered as byte offsets into the input, so the
//! writer can splice new bytes in and leave every other byte as it was. What is odd about a
//! list is found by [`super::check`], on request.

use std::borrow::Cow;
use std::sync::OnceLock;

use super::connect::{Connect, ConnectKind};
use super::diagnostic::Diagnostic;
pub use super::syntax::InvalidUtf8;
use super::syntax::{BOM, Key, Kind, Line, NONE, SectionData, find_invalid_utf8, split};

/// A parsed base list. Holds the text and where every line, section and key is, so that
/// readers get exact values and the writer can change one line without touching the rest.
#[derive(Debug, Clone)]
pub struct BaseList<'a> {
    pub(super) text: Cow<'a, str>,
    has_bom: bool,
    pub(super) invalid_utf8: Option<InvalidUtf8>,
    pub(super) lines: Vec<Line>,
    pub(super) sections: Vec<SectionData>,
    /// Found on first request ([`BaseList::diagnostics`]).
    pub(super) diagnostics: OnceLock<Vec<Diagnostic>>,
}

/// What one line is, as the reader understood it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind<'l> {
    /// Empty or only spaces and tabs.
    Blank,
    /// `[name]`, possibly with spaces or tabs around the brackets.
    Header {
        /// Everything between the first `[` and the last `]`, as written.
        name: &'l str,
    },
    /// `key=value`, split at the first `=`.
    Key {
        /// Before the first `=`, spaces included.
        key: &'l str,
        /// After the first `=`, byte-exact.
        value: &'l str,
    },
    /// Anything else; kept as it is.
    Other,
}

/// One line of the file with its exact content and line ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRef<'l> {
    /// 1-based line number.
    pub number: usize,
    /// The line without its ending.
    pub content: &'l str,
    /// `"\r\n"`, `"\n"` or `""` (last line without a newline).
    pub ending: &'l str,
    /// How the reader classified the line.
    pub kind: LineKind<'l>,
}

/// One `key=value` line of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLine<'l> {
    /// 1-based line number.
    pub line: usize,
    /// The key exactly as written (spaces included).
    pub key: &'l str,
    /// The value exactly as written, after the first `=`.
    pub value: &'l str,
}

/// A `[section]` of the list: a base or a group.
#[derive(Debug, Clone, Copy)]
pub struct Section<'l> {
    list: &'l BaseList<'l>,
    index: usize,
}

/// Whether a section is a base or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Has a `Connect` key: something the client can start.
    Base,
    /// No `Connect`: a folder in the tree.
    Group,
}

impl EntryKind {
    /// The name used in JSON output and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Base => "base",
            EntryKind::Group => "group",
        }
    }
}

/// `OrderInList` as a number. The launcher writes integers, and fractional values when an
/// item is dropped between two others.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OrderInList {
    /// A whole number, e.g. `16384`.
    Integer(i64),
    /// A fractional number, e.g. `8192.5`.
    Fractional(f64),
}

impl OrderInList {
    /// Reads an `OrderInList` value; `None` when it is not a finite number.
    pub fn parse(value: &str) -> Option<OrderInList> {
        let value = value.trim();
        if let Ok(n) = value.parse::<i64>() {
            return Some(OrderInList::Integer(n));
        }
        match value.parse::<f64>() {
            Ok(x) if x.is_finite() && !value.is_empty() && value.bytes().all(is_number_byte) => {
                Some(OrderInList::Fractional(x))
            }
            _ => None,
        }
    }
}

/// `-12`, `8192.5`: the shapes the launcher writes, recognised without parsing a float.
/// Anything else goes to [`OrderInList::parse`].
pub(super) fn is_plain_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty() && digits.len() <= 300 && all_digits(whole) && all_digits(fraction)
}

fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')
}

/// The typed view of a section: the keys the platform and v8help care about, each the first
/// occurrence in the section, exactly as written (`Some("")` is present-but-empty, `None`
/// is absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'l> {
    /// Index of the section in the list (what the writer takes).
    pub section: usize,
    /// 1-based line of the `[name]` header.
    pub line: usize,
    /// The section name as written.
    pub name: &'l str,
    /// `Connect`, raw.
    pub connect: Option<&'l str>,
    /// `Folder`, raw.
    pub folder: Option<&'l str>,
    /// `ID`, raw.
    pub id: Option<&'l str>,
    /// `OrderInList`, raw.
    pub order_in_list: Option<&'l str>,
    /// `StartupErrorHelpText`, raw.
    pub help_text: Option<&'l str>,
    /// `StartupErrorHelpURL`, raw.
    pub help_url: Option<&'l str>,
}

impl<'l> Entry<'l> {
    /// A base if it has a `Connect` key (even an empty one), a group otherwise.
    pub fn kind(&self) -> EntryKind {
        if self.connect.is_some() {
            EntryKind::Base
        } else {
            EntryKind::Group
        }
    }

    /// The parsed `Connect` string, for bases.
    pub fn connect_parsed(&self) -> Option<Connect<'l>> {
        self.connect.map(Connect::parse)
    }

    /// The kind of connection, for bases.
    pub fn connect_kind(&self) -> Option<ConnectKind> {
        self.connect.map(|raw| Connect::scan(raw).0)
    }

    /// `OrderInList` as a number, when it is one.
    pub fn order(&self) -> Option<OrderInList> {
        self.order_in_list.and_then(OrderInList::parse)
    }
}

/// Parses a base list. Never fails: invalid UTF-8, odd lines and suspicious keys become
/// [`Diagnostic`]s (found when first asked for), and every byte stays reachable through the
/// returned [`BaseList`].
pub fn parse(bytes: &[u8]) -> BaseList<'_> {
    let (text, invalid_utf8) = match std::str::from_utf8(bytes) {
        Ok(text) => (Cow::Borrowed(text), None),
        Err(_) => (String::from_utf8_lossy(bytes), find_invalid_utf8(bytes)),
    };
    let has_bom = text.as_bytes().starts_with(BOM);
    let (lines, sections) = split(text.as_bytes(), if has_bom { BOM.len() } else { 0 });
    BaseList {
        text,
        has_bom,
        invalid_utf8,
        lines,
        sections,
        diagnostics: OnceLock::new(),
    }
}

impl<'a> BaseList<'a> {
    /// True when the file starts with a UTF-8 byte order mark (kept on write).
    pub fn has_bom(&self) -> bool {
        self.has_bom
    }

    /// Where the input is not UTF-8, if anywhere.
    pub fn invalid_utf8(&self) -> Option<InvalidUtf8> {
        self.invalid_utf8
    }

    /// The text as read (lossily decoded when the input is not UTF-8).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Number of lines (a final line ending does not start another line).
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Every line in order; joined with the BOM they give back the input.
    pub fn lines(&self) -> impl Iterator<Item = LineRef<'_>> + '_ {
        (0..self.lines.len()).map(move |i| self.line_ref(i))
    }

    /// All sections in file order.
    pub fn sections(&self) -> impl Iterator<Item = Section<'_>> + '_ {
        (0..self.sections.len()).map(move |index| Section { list: self, index })
    }

    /// Number of sections.
    pub fn section_count(&self) -> usize {
        self.sections.len()
    }

    /// The section at `index`, if there is one.
    pub fn section(&self, index: usize) -> Option<Section<'_>> {
        (index < self.sections.len()).then_some(Section { list: self, index })
    }

    /// The typed view of every section, bases and groups.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        self.sections().map(|s| s.entry())
    }

    /// The line ending most lines use: what a new line gets when its neighbours say nothing.
    /// CRLF (the platform's own) when the file has no line ending at all.
    pub(crate) fn dominant_line_ending(&self) -> &'static str {
        let crlf = self.lines.iter().filter(|l| l.end - l.content_end == 2).count();
        let lf = self.lines.iter().filter(|l| l.end - l.content_end == 1).count();
        if lf > crlf { "\n" } else { "\r\n" }
    }

    pub(super) fn line_ref(&self, index: usize) -> LineRef<'_> {
        let line = &self.lines[index];
        let text = &self.text[..];
        let kind = match line.kind {
            Kind::Blank => LineKind::Blank,
            Kind::Header { name_start, name_end } => LineKind::Header {
                name: &text[name_start..name_end],
            },
            Kind::Key { eq } => LineKind::Key {
                key: &text[line.start..eq],
                value: &text[eq + 1..line.content_end],
            },
            Kind::Other => LineKind::Other,
        };
        LineRef {
            number: index + 1,
            content: &text[line.start..line.content_end],
            ending: &text[line.content_end..line.end],
            kind,
        }
    }

    /// Byte range of a line: (start, end of content, end including the line ending).
    pub(super) fn line_span(&self, index: usize) -> (usize, usize, usize) {
        let line = &self.lines[index];
        (line.start, line.content_end, line.end)
    }

    /// The value of the first line of section `section` whose key is `key`.
    pub(super) fn known_value(&self, section: usize, key: Key) -> Option<&str> {
        let (start, end) = self.sections[section].known[key as usize];
        (start != NONE).then(|| &self.text[start..end])
    }

    /// Byte range of a key line's value, if the line is a key line.
    pub(super) fn value_span(&self, index: usize) -> Option<(usize, usize)> {
        match self.lines[index].kind {
            Kind::Key { eq } => Some((eq + 1, self.lines[index].content_end)),
            _ => None,
        }
    }
}

impl<'l> Section<'l> {
    /// Index of the section in the list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The name between the brackets, as written.
    pub fn name(&self) -> &'l str {
        let data = &self.list.sections[self.index];
        &self.list.text[data.name_start..data.name_end]
    }

    /// 1-based line of the header.
    pub fn line(&self) -> usize {
        self.list.sections[self.index].header + 1
    }

    /// Index of the header line and one past the section's last line.
    pub(super) fn line_indices(&self) -> (usize, usize) {
        let data = &self.list.sections[self.index];
        (data.header, data.end)
    }

    /// The `key=value` lines of the section, in order, duplicates included.
    pub fn keys(&self) -> impl Iterator<Item = KeyLine<'l>> + 'l {
        let list = self.list;
        let (header, end) = self.line_indices();
        (header + 1..end).filter_map(move |i| {
            let line = &list.lines[i];
            match line.kind {
                Kind::Key { eq } => Some(KeyLine {
                    line: i + 1,
                    key: &list.text[line.start..eq],
                    value: &list.text[eq + 1..line.content_end],
                }),
                _ => None,
            }
        })
    }

    /// The first value of `key` (compared exactly, as the platform does).
    pub fn get(&self, key: &str) -> Option<&'l str> {
        self.keys().find(|k| k.key == key).map(|k| k.value)
    }

    /// The typed view of this section.
    pub fn entry(&self) -> Entry<'l> {
        let list = self.list;
        let [connect, folder, id, order_in_list, help_text, help_url] =
            Key::ALL.map(|key| list.known_value(self.index, key));
        Entry {
            section: self.index,
            line: self.line(),
            name: self.name(),
            connect,
            folder,
            id,
            order_in_list,
            help_text,
            help_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v8i::{Finding, Severity};

    fn findings(list: &BaseList<'_>) -> Vec<(usize, Finding)> {
        list.diagnostics().iter().map(|d| (d.line, d.finding.clone())).collect()
    }

    #[test]
    fn lines_joined_with_the_bom_give_back_the_input() {
        let input = "\u{feff}[A]\r\nConnect=File=\"x\";\n\nodd line\r\nlast".as_bytes();
        let list = parse(input);
        assert!(list.has_bom());
        let mut joined = String::from("\u{feff}");
        for line in list.lines() {
            joined.push_str(line.content);
            joined.push_str(line.ending);
        }
        assert_eq!(joined.as_bytes(), input);
        let endings: Vec<_> = list.lines().map(|l| l.ending).collect();
        assert_eq!(endings, ["\r\n", "\n", "\n", "\r\n", ""]);
    }

    #[test]
    fn section_names_keep_equals_brackets_spaces_and_cyrillic() {
        let list = parse("[Бухгалтерия = 2024 [архив]]\nConnect=File=\"x\";\n".as_bytes());
        let names: Vec<_> = list.sections().map(|s| s.name()).collect();
        assert_eq!(names, ["Бухгалтерия = 2024 [архив]"]);
    }

    #[test]
    fn values_are_split_at_the_first_equals_and_kept_byte_exact() {
        let text = "[A]\nStartupErrorHelpText=Звоните; #42 \"дежурному\" = быстро  \n";
        let list = parse(text.as_bytes());
        let entry = list.entries().next().expect("one section");
        assert_eq!(entry.help_text, Some("Звоните; #42 \"дежурному\" = быстро  "));
    }

    #[test]
    fn present_but_empty_is_not_absent() {
        let list = parse(b"[A]\nConnect=File=\"x\";\nStartupErrorHelpText=\n");
        let entry = list.entries().next().expect("one section");
        assert_eq!(entry.help_text, Some(""));
        assert_eq!(entry.help_url, None);
    }

    #[test]
    fn keys_are_case_sensitive() {
        let list = parse(b"[A]\nconnect=File=\"x\";\n");
        let entry = list.entries().next().expect("one section");
        assert_eq!(entry.kind(), EntryKind::Group);
        assert!(findings(&list).iter().any(|(line, f)| *line == 2
            && matches!(
                f,
                Finding::KeyCase {
                    expected: "Connect",
                    ..
                }
            )));
    }

    #[test]
    fn duplicate_names_compare_cyrillic_without_case() {
        let list = parse("[Бухгалтерия]\nConnect=File=\"a\";\n[БУХГАЛТЕРИЯ]\nConnect=File=\"b\";\n".as_bytes());
        assert!(findings(&list).contains(&(
            3,
            Finding::DuplicateName {
                name: "БУХГАЛТЕРИЯ".into(),
                first_line: 1
            }
        )));
    }

    #[test]
    fn duplicate_ids_empty_connect_and_bad_url_are_errors() {
        let text = "[A]\nConnect=\nID=abc\nStartupErrorHelpURL=help.example.com\n[B]\nConnect=File=\"b\";\nID=ABC\n";
        let list = parse(text.as_bytes());
        let errors: Vec<_> = list
            .diagnostics()
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .map(|d| (d.line, d.finding.clone()))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    1,
                    Finding::HelpUrlNotHttp {
                        url: "help.example.com".into()
                    }
                ),
                (1, Finding::EmptyConnect { name: "A".into() }),
                (
                    5,
                    Finding::DuplicateId {
                        id: "ABC".into(),
                        first_line: 1
                    }
                ),
            ]
        );
    }

    #[test]
    fn spaces_around_equals_are_reported_on_their_line() {
        let list = parse(b"[A]\nConnect = File=\"x\";\nStartupErrorHelpText= hi\n");
        let found = findings(&list);
        assert!(found.contains(&(2, Finding::SpaceAroundKey { key: "Connect ".into() })));
        assert!(found.contains(&(
            3,
            Finding::SpaceAfterEquals {
                key: "StartupErrorHelpText".into()
            }
        )));
        assert_eq!(list.entries().next().map(|e| e.kind()), Some(EntryKind::Group));
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_byte_offset_and_line() {
        let list = parse(b"[A]\nConnect=File=\"\xc1\xf3\";\n");
        let bad = list.invalid_utf8().expect("invalid");
        assert_eq!((bad.offset, bad.line, bad.count), (18, 2, 2));
        let diagnostic = list
            .diagnostics()
            .iter()
            .find(|d| matches!(d.finding, Finding::InvalidUtf8 { .. }))
            .expect("reported");
        assert_eq!(diagnostic.line, 2);
        assert_eq!(diagnostic.severity(), Severity::Error);
        assert_eq!(
            diagnostic.finding.to_string(),
            "not valid UTF-8 at byte offset 18 (2 invalid sequences in all)"
        );
    }

    #[test]
    fn order_in_list_may_be_fractional() {
        assert_eq!(OrderInList::parse("8192.5"), Some(OrderInList::Fractional(8192.5)));
        assert_eq!(OrderInList::parse("16384"), Some(OrderInList::Integer(16384)));
        for plain in ["0", "-12", "8192.5", "16384.", "007"] {
            assert!(is_plain_number(plain), "{plain}");
            assert!(OrderInList::parse(plain).is_some(), "{plain}");
        }
        for other in ["", "-", ".5", "1e3", " 1", "1.2.3", "шесть"] {
            assert!(!is_plain_number(other), "{other}");
        }
        assert_eq!(OrderInList::parse("inf"), None);
        assert_eq!(OrderInList::parse("NaN"), None);
        assert_eq!(OrderInList::parse(""), None);
    }

    #[test]
    fn first_occurrence_of_a_repeated_key_counts_and_is_flagged() {
        let list = parse(b"[A]\nConnect=File=\"a\";\nConnect=File=\"b\";\n");
        let entry = list.entries().next().expect("one section");
        assert_eq!(entry.connect, Some("File=\"a\";"));
        assert!(findings(&list).contains(&(
            3,
            Finding::RepeatedKey {
                key: "Connect".into(),
                first_line: 2
            }
        )));
    }

    #[test]
    fn header_like_lines_with_text_after_the_bracket_are_not_headers() {
        let list = parse(b"[A]\n[B]=x\n");
        assert_eq!(list.section_count(), 1);
        assert_eq!(list.sections().next().and_then(|s| s.get("[B]")), Some("x"));
    }
}
