//! Reading a base list from bytes: lines with their exact endings, sections, typed entries
//! and diagnostics. Pure: no I/O, never fails.
//!
//! The model is a list of lines, each remembered as byte offsets into the input, so the
//! writer can splice new bytes in and leave every other byte as it was. A line ends at `\n`;
//! a `\r` just before it belongs to the line ending (CRLF), any other `\r` is data.
//!
//! (Over 600 lines: reading, name folding and diagnostics still live together here; the
//! split into syntax, name, reader and check modules is the next change to this folder.)

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::connect::{Connect, ConnectKind};
use super::diagnostic::{Diagnostic, Finding, Presence};
use super::{CONNECT_KEY, FOLDER_KEY, HELP_TEXT_KEY, HELP_URL_KEY, ID_KEY, ORDER_KEY, is_http_url};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The keys whose spelling matters to the platform; a key equal to one of these but for
/// case is worth a warning, since keys are case-sensitive. The order is that of the fields
/// of [`Entry`], which [`Section::entry`] relies on.
const KNOWN_KEYS: [&str; 6] = [CONNECT_KEY, FOLDER_KEY, ID_KEY, ORDER_KEY, HELP_TEXT_KEY, HELP_URL_KEY];

/// A parsed base list. Holds the text and where every line, section and key is, so that
/// readers get exact values and the writer can change one line without touching the rest.
#[derive(Debug, Clone)]
pub struct BaseList<'a> {
    text: Cow<'a, str>,
    has_bom: bool,
    invalid_utf8: Option<InvalidUtf8>,
    lines: Vec<Line>,
    sections: Vec<SectionData>,
    /// Found on first request: listing needs none of it, checking all of it.
    diagnostics: OnceLock<Vec<Diagnostic>>,
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
struct Line {
    start: usize,
    content_end: usize,
    end: usize,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Blank,
    Header { name_start: usize, name_end: usize },
    Key { eq: usize },
    Other,
}

#[derive(Debug, Clone)]
struct SectionData {
    /// Index of the header line.
    header: usize,
    /// Index one past the section's last line.
    end: usize,
    name_start: usize,
    name_end: usize,
    /// Value span of the first occurrence of each of [`KNOWN_KEYS`], `(NONE, NONE)` if
    /// absent.
    known: [(usize, usize); KNOWN_KEYS.len()],
}

const NONE: usize = usize::MAX;
/// Where `ID` is in [`KNOWN_KEYS`].
const ID_SLOT: usize = 2;

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
fn is_plain_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty() && digits.len() <= 300 && all_digits(whole) && all_digits(fraction)
}

/// `s` without spaces and tabs at either end (a byte loop: the char-set pattern of
/// `str::trim_matches` is slow on the reader's hot path).
pub(super) fn trim_blanks(s: &str) -> &str {
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

fn find_invalid_utf8(bytes: &[u8]) -> Option<InvalidUtf8> {
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
fn split(bytes: &[u8], start: usize) -> (Vec<Line>, Vec<SectionData>) {
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
                    known: [(NONE, NONE); KNOWN_KEYS.len()],
                });
            }
            Kind::Key { eq } => {
                if let Some(section) = sections.last_mut() {
                    section.end = index + 1;
                    if let Some(slot) = known_slot(&bytes[line_start..eq])
                        && section.known[slot].0 == NONE
                    {
                        section.known[slot] = (eq + 1, content_end);
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

/// Where a key goes in [`KNOWN_KEYS`] (and so in [`Entry`]).
fn known_slot(key: &[u8]) -> Option<usize> {
    match key {
        b"Connect" => Some(0),
        b"Folder" => Some(1),
        b"ID" => Some(2),
        b"OrderInList" => Some(3),
        b"StartupErrorHelpText" => Some(4),
        b"StartupErrorHelpURL" => Some(5),
        _ => None,
    }
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

    /// Everything odd about the list, in line order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        self.diagnostics.get_or_init(|| diagnose(self))
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
    pub fn dominant_line_ending(&self) -> &'static str {
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

    /// The value of the first line of section `section` whose key is `KNOWN_KEYS[slot]`.
    fn known_value(&self, section: usize, slot: usize) -> Option<&str> {
        let (start, end) = self.sections[section].known[slot];
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
        // In the order of KNOWN_KEYS.
        let [connect, folder, id, order_in_list, help_text, help_url] =
            [0, 1, 2, 3, 4, 5].map(|slot| list.known_value(self.index, slot));
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

/// One character in lower case, the way names are compared: a fast path for ASCII and
/// Cyrillic, the full Unicode mapping for the rest.
enum Folded {
    One(Option<char>),
    Many(std::char::ToLowercase),
}

impl Iterator for Folded {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        match self {
            Folded::One(c) => c.take(),
            Folded::Many(chars) => chars.next(),
        }
    }
}

fn fold_char(c: char) -> Folded {
    match c {
        'A'..='Z' => Folded::One(Some(c.to_ascii_lowercase())),
        // А..Я → а..я, and Ѐ..Џ (Ё among them) → ѐ..џ.
        '\u{0410}'..='\u{042F}' => Folded::One(char::from_u32(c as u32 + 0x20)),
        '\u{0400}'..='\u{040F}' => Folded::One(char::from_u32(c as u32 + 0x50)),
        _ if c.is_ascii() || ('\u{0430}'..='\u{045F}').contains(&c) => Folded::One(Some(c)),
        _ => Folded::Many(c.to_lowercase()),
    }
}

fn folded(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars().flat_map(fold_char)
}

/// True when two base names are the same for the platform, which ignores case
/// (`Бухгалтерия` and `БУХГАЛТЕРИЯ` are one name).
pub fn names_equal(a: &str, b: &str) -> bool {
    a == b || folded(a).eq(folded(b))
}

/// FNV-1a over the case-folded characters: equal for names that [`names_equal`] says are
/// equal, so names can be grouped without allocating a lower-case copy of each. The
/// single-character cases of [`fold_char`] are taken without building its iterator.
fn fold_hash(name: &str) -> u64 {
    let step = |hash: u64, c: char| (hash ^ u64::from(u32::from(c))).wrapping_mul(0x100_0000_01b3);
    name.chars().fold(0xcbf2_9ce4_8422_2325, |hash, c| match fold_char(c) {
        Folded::One(Some(folded)) => step(hash, folded),
        other => other.fold(hash, step),
    })
}

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
        list.known_value(index, ID_SLOT)
            .map(str::trim)
            .filter(|id| !id.is_empty())
    };
    for section in list.sections() {
        let name = section.name();
        let line = section.line();
        let hash = fold_hash(name);
        let same_name = |other: usize| list.section(other).is_some_and(|s| names_equal(s.name(), name));
        if let Some(first) = first_equal(&mut names, hash, section.index, same_name) {
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
            if let Some(first) = first_equal(&mut ids, hash, section.index, same_id) {
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
        if let Some(expected) = KNOWN_KEYS
            .iter()
            .find(|k| k.len() == trimmed.len() && **k != trimmed && k.eq_ignore_ascii_case(trimmed))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v8i::Severity;

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
    fn known_slots_follow_the_known_keys() {
        for (slot, key) in KNOWN_KEYS.iter().enumerate() {
            assert_eq!(known_slot(key.as_bytes()), Some(slot));
        }
        assert_eq!(KNOWN_KEYS[ID_SLOT], ID_KEY);
        assert_eq!(known_slot(b"connect"), None);
    }

    #[test]
    fn folding_agrees_with_unicode_lowercase() {
        for c in (0..0x2000).filter_map(char::from_u32) {
            let ours: String = fold_char(c).collect();
            let std: String = c.to_lowercase().collect();
            assert_eq!(ours, std, "{c:?}");
        }
        assert!(names_equal("Склад ЁЛКИ", "склад ёлки"));
        assert!(!names_equal("Склад", "Склад "));
        assert_eq!(fold_hash("БУХГАЛТЕРИЯ Ёлка İ"), fold_hash("бухгалтерия ёлка i̇"));
        assert_ne!(fold_hash("Склад"), fold_hash("Склад "));
        assert_eq!(
            ascii_fold_hash(b"AAAAAAAA-0000-4000-8000-00000000000B"),
            ascii_fold_hash(b"aaaaaaaa-0000-4000-8000-00000000000b")
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
