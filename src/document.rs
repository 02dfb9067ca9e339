//! The message document an admin edits (`message.json`): parsing, validation, the time
//! rules that decide whether it is served, and the choice of language.
//!
//! A document is either empty (an empty file or `{}`: "no message") or carries a
//! `userMessage`. Every rejection says where: the line and column of a syntax error, the
//! byte offset of invalid UTF-8, or the field whose meaning is wrong.
//!
//! (Over 600 lines: parsing, validation and the time rules of one document format stay in
//! one file so each rejection's wording sits beside the rule it enforces; about a third of
//! the lines are the unit tests.)

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value};

mod raw;

use crate::limits::MAX_ACCEPT_LANGUAGE_ENTRIES;
pub use crate::limits::MAX_LANGUAGES;
use crate::time::{Zone, parse_date_time};

/// Longest accepted text, in characters, of `userMessage` and of each `userMessages` entry.
/// The client shows it in an error dialog: 2,000 characters is a long page already.
pub(crate) const MAX_TEXT_CHARS: usize = 2000;
/// Longest accepted `helpUrl`, in bytes (what browsers and proxies reliably accept).
pub(crate) const MAX_URL_BYTES: usize = 2048;
/// Largest accepted message file. Real documents are a few hundred bytes; anything bigger
/// is a mistake (a log or a binary saved over the message), not a message.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// Why a message document was rejected, with where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The file is bigger than [`MAX_FILE_BYTES`], so it is not a message but a mistake.
    #[error("file is {}; a message document may be at most {limit} bytes", size_text(*size, *limit))]
    TooLarge {
        /// Size of the file, in bytes.
        size: usize,
        /// The largest size accepted, [`MAX_FILE_BYTES`].
        limit: usize,
    },
    /// The file is not UTF-8 text (often: saved in a legacy code page).
    #[error("line {line}, column {column}: not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
        /// 1-based line of that byte.
        line: usize,
        /// 1-based column, in characters, of that byte.
        column: usize,
    },
    /// The file is not valid JSON.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line where the JSON parser stopped.
        line: usize,
        /// 1-based column, in characters, where the JSON parser stopped.
        column: usize,
        /// What the JSON parser expected, without its own position suffix.
        message: String,
    },
    /// The file is valid JSON but not an object (an array, a string, …).
    #[error("the document must be a JSON object such as {{\"userMessage\": \"…\", \"expires\": \"…\"}}, not {found}")]
    NotAnObject {
        /// What the JSON value is instead, such as "an array".
        found: &'static str,
    },
    /// A field is missing, has the wrong type, or has a value the service cannot use.
    #[error("{}field \"{field}\": {problem}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Field {
        /// The field, such as `expires` or `userMessages.ru`.
        field: String,
        /// 1-based line where the field's key appears, when it can be found in the source.
        line: Option<usize>,
        /// What is wrong with it.
        problem: String,
    },
}

/// "10485760 bytes", or "more than 64 KiB" when only the limit plus one byte was read.
fn size_text(size: usize, limit: usize) -> String {
    if size == limit + 1 {
        format!("more than {} KiB", limit / 1024)
    } else {
        format!("{size} bytes")
    }
}

/// Whether a document is being served at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No document, or an empty one.
    None,
    /// `starts` is still ahead.
    Scheduled,
    /// Being served.
    Active,
    /// `expires` has passed.
    Expired,
}

impl State {
    /// The word `/healthz` and `message show` use.
    pub fn as_str(self) -> &'static str {
        match self {
            State::None => "none",
            State::Scheduled => "scheduled",
            State::Active => "active",
            State::Expired => "expired",
        }
    }

    /// Whether clients get the message (otherwise they get `{"userMessage": ""}`).
    pub(crate) fn is_active(self) -> bool {
        self == State::Active
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated message document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The default text; empty for an empty document.
    pub user_message: String,
    /// Language tag (lower case) → text, in the order the file lists them.
    pub translations: Vec<(String, String)>,
    /// Before this instant the message is not served.
    pub starts: Option<DateTime<FixedOffset>>,
    /// From this instant on the message is not served.
    pub expires: Option<DateTime<FixedOffset>>,
    /// The "Need help" link.
    pub help_url: Option<String>,
    /// Every field as written, in file order: the source of pass-through fields.
    pub fields: Map<String, Value>,
    /// Every top-level field as compact JSON text, in file order. Parsed from a file it is
    /// the file's own text of each value (whitespace removed), so that pass-through numbers
    /// keep every digit (`123456789012345678901234567890` stays as written).
    pub raw_fields: Vec<(String, String)>,
}

impl Document {
    /// The empty document: no message.
    pub fn empty() -> Document {
        Document {
            user_message: String::new(),
            translations: Vec::new(),
            starts: None,
            expires: None,
            help_url: None,
            fields: Map::new(),
            raw_fields: Vec::new(),
        }
    }

    /// Parses and validates a document; local date-times are read in `zone`.
    pub fn parse(bytes: &[u8], zone: Zone) -> Result<Document, DocumentError> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(DocumentError::TooLarge {
                size: bytes.len(),
                limit: MAX_FILE_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let offset = e.valid_up_to();
            let (line, column) = line_column(&bytes[..offset]);
            DocumentError::NotUtf8 { offset, line, column }
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Ok(Document::empty());
        }
        let value: Value = serde_json::from_str(text).map_err(|e| syntax_error(&e, text))?;
        let Value::Object(fields) = value else {
            return Err(DocumentError::NotAnObject {
                found: json_kind(&value),
            });
        };
        raw::refuse_duplicate_keys(text)?;
        let mut document = Document::from_fields(fields, text, zone)?;
        if !document.is_empty() {
            document.raw_fields = raw::top_level_fields(text)?;
        }
        Ok(document)
    }

    /// Validates an already parsed JSON object; `source` (the text it came from, possibly
    /// empty) is only used to point at the line of a rejected field.
    pub(crate) fn from_fields(fields: Map<String, Value>, source: &str, zone: Zone) -> Result<Document, DocumentError> {
        let field_error = |field: &str, problem: String| DocumentError::Field {
            field: field.to_string(),
            line: line_of_key(source, field),
            problem,
        };
        if fields.is_empty() {
            return Ok(Document::empty());
        }
        let user_message = match fields.get("userMessage") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(field_error(
                    "userMessage",
                    format!("must be a string, not {}", json_kind(other)),
                ));
            }
            None => {
                return Err(field_error(
                    "userMessage",
                    "is missing (a document with fields needs the text to show; write {} for no message)".into(),
                ));
            }
        };
        check_text(&user_message).map_err(|p| field_error("userMessage", p))?;

        let mut translations: Vec<(String, String)> = Vec::new();
        match fields.get("userMessages") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) if map.len() > MAX_LANGUAGES => {
                return Err(field_error(
                    "userMessages",
                    format!("has {} languages; the limit is {MAX_LANGUAGES}", map.len()),
                ));
            }
            Some(Value::Object(map)) => {
                for (tag, text) in map {
                    let name = format!("userMessages.{tag}");
                    let lower = tag.to_ascii_lowercase();
                    if !is_language_tag(tag) {
                        return Err(field_error(
                            &name,
                            "is not a language tag (expected ru, kk, kk-KZ, en, …)".into(),
                        ));
                    }
                    if translations.iter().any(|(t, _)| *t == lower) {
                        return Err(field_error(
                            &name,
                            "repeats a language tag (tags are compared without case)".into(),
                        ));
                    }
                    let Value::String(text) = text else {
                        return Err(field_error(&name, format!("must be a string, not {}", json_kind(text))));
                    };
                    check_text(text).map_err(|p| field_error(&name, p))?;
                    translations.push((lower, text.clone()));
                }
            }
            Some(other) => {
                return Err(field_error(
                    "userMessages",
                    format!("must be an object of language tag → text, not {}", json_kind(other)),
                ));
            }
        }

        let date_time = |field: &str| -> Result<Option<DateTime<FixedOffset>>, DocumentError> {
            match fields.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => parse_date_time(s, zone)
                    .map(Some)
                    .map_err(|e| field_error(field, e.to_string())),
                Some(other) => Err(field_error(
                    field,
                    format!("must be a date-time string, not {}", json_kind(other)),
                )),
            }
        };
        let starts = date_time("starts")?;
        let expires = date_time("expires")?;
        if let (Some(s), Some(e)) = (starts, expires)
            && e <= s
        {
            return Err(field_error(
                "expires",
                format!("{} is not after starts {}", e.to_rfc3339(), s.to_rfc3339()),
            ));
        }

        let help_url = match fields.get("helpUrl") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                check_url(s).map_err(|p| field_error("helpUrl", p))?;
                Some(s.clone())
            }
            Some(other) => {
                return Err(field_error(
                    "helpUrl",
                    format!("must be a string, not {}", json_kind(other)),
                ));
            }
        };

        let raw_fields = fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap_or_else(|_| "null".into())))
            .collect();
        Ok(Document {
            user_message,
            translations,
            starts,
            expires,
            help_url,
            fields,
            raw_fields,
        })
    }

    /// True for an empty file or `{}`.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Whether the document is served at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> State {
        if self.is_empty() {
            State::None
        } else if self.starts.is_some_and(|s| now < s) {
            State::Scheduled
        } else if self.expires.is_some_and(|e| now >= e) {
            State::Expired
        } else {
            State::Active
        }
    }

    /// The next instant after `now` at which [`Document::state`] changes, if any.
    pub(crate) fn next_transition(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        [self.starts, self.expires]
            .into_iter()
            .flatten()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > now)
            .min()
    }
}

/// Chooses one of `available` (lower-case tags) for a request: `?lang=` first, then the
/// `Accept-Language` entries by q-weight. Each wanted tag is tried exactly, then by its
/// primary subtag (kk-KZ → kk), then against the available tags' primary subtags
/// (kk → kk-KZ). `None` means the default `userMessage`.
pub(crate) fn negotiate<'a>(
    available: &'a [(String, String)],
    query: Option<&str>,
    accept: Option<&str>,
) -> Option<&'a str> {
    negotiate_index(available, query, accept).map(|i| available[i].0.as_str())
}

/// As [`negotiate`], giving the index in `available`. Only the first
/// [`MAX_ACCEPT_LANGUAGE_ENTRIES`] entries of `Accept-Language` are looked at, and nothing is
/// allocated: the cost is the same for a 16 KB header as for its first entries.
pub(crate) fn negotiate_index(
    available: &[(String, String)],
    query: Option<&str>,
    accept: Option<&str>,
) -> Option<usize> {
    if available.is_empty() {
        return None;
    }
    if let Some(found) = query.and_then(|q| lookup(available, q)) {
        return Some(found);
    }
    let accept = accept?;
    // (weight, position, tag): sorted by weight, equal weights keep the client's order.
    let mut wanted: [(u16, usize, &str); MAX_ACCEPT_LANGUAGE_ENTRIES] = [(0, 0, ""); MAX_ACCEPT_LANGUAGE_ENTRIES];
    let mut n = 0;
    for (position, item) in accept.split(',').take(MAX_ACCEPT_LANGUAGE_ENTRIES).enumerate() {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let mut q = 1000;
        // A language range has one parameter (q); a few more are tolerated, not thousands.
        for param in parts.take(4) {
            let param = param.trim();
            if let Some(v) = param.strip_prefix("q=").or_else(|| param.strip_prefix("Q=")) {
                q = parse_q(v).unwrap_or(0);
            }
        }
        if !tag.is_empty() && q > 0 {
            wanted[n] = (q, position, tag);
            n += 1;
        }
    }
    let wanted = &mut wanted[..n];
    wanted.sort_unstable_by_key(|&(q, position, _)| (std::cmp::Reverse(q), position));
    wanted
        .iter()
        .find_map(|&(_, _, tag)| if tag == "*" { None } else { lookup(available, tag) })
}

/// The index of the available tag matching `wanted` exactly, by `wanted`'s primary subtag,
/// or by an available tag's primary subtag; case and `_`/`-` do not matter.
fn lookup(available: &[(String, String)], wanted: &str) -> Option<usize> {
    let wanted = wanted.trim();
    let wanted_primary = primary(wanted);
    let find = |matches: &dyn Fn(&str) -> bool| available.iter().position(|(t, _)| matches(t));
    find(&|t| same_tag(t, wanted))
        .or_else(|| find(&|t| same_tag(t, wanted_primary)))
        .or_else(|| find(&|t| same_tag(primary(t), wanted_primary)))
}

fn primary(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or("")
}

fn same_tag(a: &str, b: &str) -> bool {
    let norm = |c: u8| if c == b'_' { b'-' } else { c.to_ascii_lowercase() };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

/// A q-value in thousandths: "1", "0.8", "0.125".
fn parse_q(v: &str) -> Option<u16> {
    let v = v.trim();
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    Some((whole + thousandths).min(1000))
}

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Text limits: length, and no control characters other than line breaks and tabs.
fn check_text(s: &str) -> Result<(), String> {
    let chars = s.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(format!("is {chars} characters long; the limit is {MAX_TEXT_CHARS}"));
    }
    if let Some((i, c)) = s
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        let at = s[..i].chars().count();
        return Err(format!(
            "contains control character U+{:04X} at character {at}",
            u32::from(c)
        ));
    }
    Ok(())
}

fn check_url(s: &str) -> Result<(), String> {
    if s.len() > MAX_URL_BYTES {
        return Err(format!("is {} bytes long; the limit is {MAX_URL_BYTES}", s.len()));
    }
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| format!("{s:?} is not an http:// or https:// link"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if s.contains('\\') {
        return Err(format!("{s:?} contains a backslash; write / (or %5C)"));
    }
    if host.contains('@') {
        return Err(format!(
            "{s:?} has user information before an @; a link must show its real host"
        ));
    }
    if let Some(c) = s.chars().find(|&c| is_invisible_or_bidi(c)) {
        return Err(format!(
            "{s:?} contains the invisible or text-direction character U+{:04X}; a link must read as it goes",
            u32::from(c)
        ));
    }
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{s:?} contains {c:?}; encode spaces as %20"));
    }
    Ok(())
}

/// Zero-width and text-direction characters: they make a link read as another host or path.
fn is_invisible_or_bidi(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

pub(crate) fn syntax_error(e: &serde_json::Error, source: &str) -> DocumentError {
    let text = e.to_string();
    let mut message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    if e.classify() == serde_json::error::Category::Eof {
        message = format!("the document ends too early ({message})");
    }
    let (mut line, mut column) = (e.line(), e.column());
    if column == 0 && line > 1 {
        // serde_json points just past a line break: point at the end of that line instead.
        line -= 1;
        column = source.lines().nth(line - 1).map_or(0, |l| l.chars().count()) + 1;
    }
    DocumentError::Syntax {
        line,
        column: column.max(1),
        message,
    }
}

/// 1-based line and column (in characters) of the position just after `before`.
fn line_column(before: &[u8]) -> (usize, usize) {
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

/// The line on which `"key"` (the last path segment of `field`) first appears as a key.
pub(crate) fn line_of_key(source: &str, field: &str) -> Option<usize> {
    let key = field.rsplit('.').next().unwrap_or(field);
    let quoted = serde_json::to_string(key).ok()?;
    let mut from = 0;
    while let Some(i) = source[from..].find(&quoted) {
        let at = from + i;
        let after = source[at + quoted.len()..].trim_start();
        if after.starts_with(':') {
            return Some(source[..at].matches('\n').count() + 1);
        }
        from = at + quoted.len();
    }
    None
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Document, DocumentError> {
        Document::parse(s.as_bytes(), Zone::UTC)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn tags(list: &[&str]) -> Vec<(String, String)> {
        list.iter().map(|t| (t.to_string(), format!("text {t}"))).collect()
    }

    #[test]
    fn empty_file_and_empty_object_mean_no_message() {
        for s in ["", "  \n", "{}", "\u{feff}{ }"] {
            let d = parse(s).unwrap();
            assert!(d.is_empty());
            assert_eq!(d.state(utc("2026-01-01T00:00:00Z")), State::None);
        }
    }

    #[test]
    fn state_follows_starts_and_expires_to_the_instant() {
        let d =
            parse(r#"{"userMessage":"x","starts":"2026-11-22T10:00:00Z","expires":"2026-11-22T14:00:00Z"}"#).unwrap();
        assert_eq!(d.state(utc("2026-11-22T09:59:59.999Z")), State::Scheduled);
        assert_eq!(d.state(utc("2026-11-22T10:00:00Z")), State::Active);
        assert_eq!(d.state(utc("2026-11-22T13:59:59.999Z")), State::Active);
        assert_eq!(d.state(utc("2026-11-22T14:00:00Z")), State::Expired);
        assert_eq!(
            d.next_transition(utc("2026-11-22T09:00:00Z")),
            Some(utc("2026-11-22T10:00:00Z"))
        );
        assert_eq!(
            d.next_transition(utc("2026-11-22T10:00:00Z")),
            Some(utc("2026-11-22T14:00:00Z"))
        );
        assert_eq!(d.next_transition(utc("2026-11-22T14:00:00Z")), None);
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse("{\n  \"userMessage\": \"x\"\n  \"expires\": 1\n}").unwrap_err();
        assert_eq!(
            err,
            DocumentError::Syntax {
                line: 3,
                column: 3,
                message: "expected `,` or `}`".into()
            }
        );
    }

    #[test]
    fn invalid_utf8_has_offset_line_and_column() {
        let err = Document::parse(b"{\n \"userMessage\": \"\xd0\xbe\xff\"}", Zone::UTC).unwrap_err();
        assert_eq!(
            err,
            DocumentError::NotUtf8 {
                offset: 21,
                line: 2,
                column: 19
            }
        );
    }

    #[test]
    fn expires_before_starts_names_the_field_and_line() {
        let err = parse(
            "{\"userMessage\":\"x\",\n\"starts\":\"2026-11-22T14:00:00Z\",\n\"expires\":\"2026-11-22T10:00:00Z\"}",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: field \"expires\": 2026-11-22T10:00:00+00:00 is not after starts 2026-11-22T14:00:00+00:00"
        );
    }

    #[test]
    fn meaning_errors_name_the_field() {
        let cases = [
            (r#"{"userMessage":5}"#, "userMessage", "must be a string, not a number"),
            (r#"{"expires":"2026-11-22T10:00:00Z"}"#, "userMessage", "is missing"),
            (
                r#"{"userMessage":"x","helpUrl":"ftp://h/x"}"#,
                "helpUrl",
                "is not an http:// or https:// link",
            ),
            (r#"{"userMessage":"x","helpUrl":"https://"}"#, "helpUrl", "has no host"),
            (
                r#"{"userMessage":"a\u0007b"}"#,
                "userMessage",
                "control character U+0007 at character 1",
            ),
            (
                r#"{"userMessage":"x","expires":"soon"}"#,
                "expires",
                "is not a date-time",
            ),
            (
                r#"{"userMessage":"x","userMessages":{"k k":"y"}}"#,
                "userMessages.k k",
                "is not a language tag",
            ),
            (
                r#"{"userMessage":"x","userMessages":{"kk":"a","KK":"b"}}"#,
                "userMessages.KK",
                "repeats",
            ),
            (
                r#"{"userMessage":"x","userMessages":{"kk":1}}"#,
                "userMessages.kk",
                "must be a string",
            ),
            (
                r#"{"userMessage":"x","userMessages":["kk"]}"#,
                "userMessages",
                "must be an object",
            ),
        ];
        for (doc, field, problem) in cases {
            match parse(doc) {
                Err(DocumentError::Field {
                    field: f, problem: p, ..
                }) => {
                    assert_eq!(f, field, "{doc}");
                    assert!(p.contains(problem), "{doc}: {p}");
                }
                other => panic!("{doc}: {other:?}"),
            }
        }
    }

    #[test]
    fn text_limit_is_characters_not_bytes() {
        let ok = format!(r#"{{"userMessage":"{}"}}"#, "ж".repeat(MAX_TEXT_CHARS));
        assert!(parse(&ok).is_ok());
        let long = format!(r#"{{"userMessage":"{}"}}"#, "ж".repeat(MAX_TEXT_CHARS + 1));
        assert!(matches!(parse(&long), Err(DocumentError::Field { .. })));
    }

    #[test]
    fn a_huge_file_is_refused_before_parsing() {
        let big = vec![b' '; MAX_FILE_BYTES + 1];
        assert!(matches!(
            Document::parse(&big, Zone::UTC),
            Err(DocumentError::TooLarge { .. })
        ));
    }

    #[test]
    fn not_an_object_says_what_it_is() {
        assert_eq!(
            parse("[1]").unwrap_err(),
            DocumentError::NotAnObject { found: "an array" }
        );
    }

    #[test]
    fn language_exact_then_primary_then_by_weight() {
        let av = tags(&["kk", "lv", "hy", "en-gb"]);
        assert_eq!(negotiate(&av, None, Some("kk-KZ")), Some("kk"));
        assert_eq!(negotiate(&av, None, Some("en")), Some("en-gb"));
        assert_eq!(
            negotiate(&av, None, Some("ru-RU, ru;q=0.9, lv;q=0.8, kk;q=0.7")),
            Some("lv")
        );
        assert_eq!(negotiate(&av, None, Some("kk;q=0.5, hy;q=0.9")), Some("hy"));
        assert_eq!(negotiate(&av, None, Some("hy;q=0, kk;q=0.1")), Some("kk"));
        assert_eq!(negotiate(&av, None, Some("ru, *;q=0.5")), None);
        assert_eq!(negotiate(&av, None, Some("de")), None);
        assert_eq!(negotiate(&av, None, None), None);
    }

    #[test]
    fn query_lang_overrides_accept_language() {
        let av = tags(&["kk", "lv"]);
        assert_eq!(negotiate(&av, Some("lv"), Some("kk")), Some("lv"));
        assert_eq!(negotiate(&av, Some("LV-lv"), None), Some("lv"));
        assert_eq!(negotiate(&av, Some("de"), Some("kk")), Some("kk"));
    }

    #[test]
    fn q_values_parse_strictly() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.8"), Some(800));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("2"), None);
    }
}
