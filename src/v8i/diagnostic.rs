//! What the checks ([`super::check`]) find wrong or suspicious in a base list, with the
//! line it is on: the types only, so that the reader can hold them without importing the
//! checks.
//!
//! Errors are things the platform gets wrong or that break a base (duplicate names or IDs,
//! an empty `Connect`, a key with spaces around `=`, a help link that is not http(s), bytes
//! that are not UTF-8). Warnings are worth a look but harmless to the file (bases without
//! help, repeated keys, odd lines).

use std::fmt;

/// How much a diagnostic matters: `bases check` exits 1 when there is any error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The platform will misread the list or a base will not start.
    Error,
    /// Worth a look; the list works.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Whether a key is there and has a value; "present but empty" and "absent" differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// No such key in the section.
    Absent,
    /// `Key=` with nothing after it.
    Empty,
    /// `Key=something`.
    Present,
}

/// One finding at one line of one file. The file name is the caller's to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line number.
    pub line: usize,
    /// What was found.
    pub finding: Finding,
}

impl Diagnostic {
    /// Error or warning, decided by the finding.
    pub(crate) fn severity(&self) -> Severity {
        self.finding.severity()
    }
}

/// Everything the reader can find, so that callers and tests can match on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The bytes stop being UTF-8 at `offset`.
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
        /// Number of invalid sequences.
        count: usize,
        /// The file starts with a UTF-16 byte order mark.
        utf16: bool,
    },
    /// A section name equal (ignoring case) to an earlier one in the same file.
    DuplicateName {
        /// The later name, as written.
        name: String,
        /// Line of the first section with that name.
        first_line: usize,
    },
    /// An `ID` equal (ignoring case) to an earlier one in the same file.
    DuplicateId {
        /// The later ID, as written.
        id: String,
        /// Line of the first section with that ID.
        first_line: usize,
    },
    /// A name already used in an earlier file of the same run.
    DuplicateNameAcrossFiles {
        /// The later name, as written.
        name: String,
        /// The earlier file, as given.
        first_file: String,
        /// Line in the earlier file.
        first_line: usize,
    },
    /// An ID already used in an earlier file of the same run.
    DuplicateIdAcrossFiles {
        /// The later ID, as written.
        id: String,
        /// The earlier file, as given.
        first_file: String,
        /// Line in the earlier file.
        first_line: usize,
    },
    /// `Connect=` with nothing usable after it.
    EmptyConnect {
        /// The base.
        name: String,
    },
    /// Spaces or tabs between the key and `=` (or before the key): the platform reads the
    /// key with them, so `Connect =` is not `Connect`.
    SpaceAroundKey {
        /// The key as written, spaces included.
        key: String,
    },
    /// The value starts with a space or tab, which is part of the value.
    SpaceAfterEquals {
        /// The key.
        key: String,
    },
    /// `StartupErrorHelpURL` is set but is not an absolute http(s) URL.
    HelpUrlNotHttp {
        /// The value as written.
        url: String,
    },
    /// A base without a help text or link (absent or empty).
    MissingHelp {
        /// The base.
        name: String,
        /// State of `StartupErrorHelpText`.
        text: Presence,
        /// State of `StartupErrorHelpURL`.
        url: Presence,
    },
    /// The same key twice in one section; the first one is what v8help reads.
    RepeatedKey {
        /// The key.
        key: String,
        /// Line of its first occurrence.
        first_line: usize,
    },
    /// A key that is a known key but for case, e.g. `connect`.
    KeyCase {
        /// The key as written.
        key: String,
        /// The key the platform knows.
        expected: &'static str,
    },
    /// A `key=value` line before the first section.
    KeyOutsideSection {
        /// The key.
        key: String,
    },
    /// A line that is not blank, not `[section]` and has no `=`.
    UnrecognizedLine,
    /// A line starting with `=`.
    EmptyKey,
    /// `Connect` with none of `File`, `Srvr`, `ws`.
    UnknownConnect {
        /// The base.
        name: String,
    },
    /// `Connect` with a quote that is never closed.
    UnclosedQuote {
        /// The base.
        name: String,
    },
    /// `OrderInList` that is not a number.
    OrderNotNumber {
        /// The value as written.
        value: String,
    },
}

impl Finding {
    /// Error or warning; see the module documentation for the line between them.
    pub(crate) fn severity(&self) -> Severity {
        match self {
            Finding::InvalidUtf8 { .. }
            | Finding::DuplicateName { .. }
            | Finding::DuplicateId { .. }
            | Finding::EmptyConnect { .. }
            | Finding::SpaceAroundKey { .. }
            | Finding::HelpUrlNotHttp { .. } => Severity::Error,
            Finding::DuplicateNameAcrossFiles { .. }
            | Finding::DuplicateIdAcrossFiles { .. }
            | Finding::SpaceAfterEquals { .. }
            | Finding::MissingHelp { .. }
            | Finding::RepeatedKey { .. }
            | Finding::KeyCase { .. }
            | Finding::KeyOutsideSection { .. }
            | Finding::UnrecognizedLine
            | Finding::EmptyKey
            | Finding::UnknownConnect { .. }
            | Finding::UnclosedQuote { .. }
            | Finding::OrderNotNumber { .. } => Severity::Warning,
        }
    }
}

fn missing_phrase(key: &str, presence: Presence) -> Option<String> {
    match presence {
        Presence::Absent => Some(format!("no {key}")),
        Presence::Empty => Some(format!("an empty {key}")),
        Presence::Present => None,
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::InvalidUtf8 { offset, count, utf16 } => {
                write!(f, "not valid UTF-8 at byte offset {offset}")?;
                if *count > 1 {
                    write!(f, " ({count} invalid sequences in all)")?;
                }
                if *utf16 {
                    write!(f, "; the file looks like UTF-16, base lists are UTF-8")?;
                }
                Ok(())
            }
            Finding::DuplicateName { name, first_line } => {
                write!(f, "duplicate base name {name:?} (first at line {first_line})")
            }
            Finding::DuplicateId { id, first_line } => {
                write!(f, "duplicate ID {id:?} (first at line {first_line})")
            }
            Finding::DuplicateNameAcrossFiles {
                name,
                first_file,
                first_line,
            } => write!(f, "base name {name:?} is also used in {first_file}:{first_line}"),
            Finding::DuplicateIdAcrossFiles {
                id,
                first_file,
                first_line,
            } => write!(f, "ID {id:?} is also used in {first_file}:{first_line}"),
            Finding::EmptyConnect { name } => write!(f, "base {name:?} has an empty Connect"),
            Finding::SpaceAroundKey { key } => write!(
                f,
                "spaces around \"=\" in key {key:?}: the platform reads the key with the spaces"
            ),
            Finding::SpaceAfterEquals { key } => write!(
                f,
                "value of {key} starts with a space, which is kept as part of the value"
            ),
            Finding::HelpUrlNotHttp { url } => {
                write!(f, "StartupErrorHelpURL {url:?} is not an http(s) URL")
            }
            Finding::MissingHelp { name, text, url } => {
                let parts: Vec<String> = [
                    missing_phrase("StartupErrorHelpText", *text),
                    missing_phrase("StartupErrorHelpURL", *url),
                ]
                .into_iter()
                .flatten()
                .collect();
                write!(f, "base {name:?} has {}", parts.join(" and "))
            }
            Finding::RepeatedKey { key, first_line } => write!(
                f,
                "key {key:?} repeated in the section (first at line {first_line}); v8help reads the first"
            ),
            Finding::KeyCase { key, expected } => write!(f, "key {key:?} is not {expected:?}: keys are case-sensitive"),
            Finding::KeyOutsideSection { key } => {
                write!(f, "key {key:?} before the first [section] belongs to no base")
            }
            Finding::UnrecognizedLine => {
                write!(f, "line is not [section], key=value or blank; kept as it is")
            }
            Finding::EmptyKey => write!(f, "line starts with \"=\": the key is empty"),
            Finding::UnknownConnect { name } => {
                write!(f, "base {name:?}: Connect names no File, Srvr or ws")
            }
            Finding::UnclosedQuote { name } => {
                write!(f, "base {name:?}: Connect has an unclosed quote")
            }
            Finding::OrderNotNumber { value } => {
                write!(f, "OrderInList {value:?} is not a number")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_help_names_what_is_missing() {
        let finding = Finding::MissingHelp {
            name: "Склад".into(),
            text: Presence::Empty,
            url: Presence::Absent,
        };
        assert_eq!(
            finding.to_string(),
            "base \"Склад\" has an empty StartupErrorHelpText and no StartupErrorHelpURL"
        );
    }
}
