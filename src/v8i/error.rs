//! Errors of the v8i module, each carrying where it happened (file, line, byte offset).
//!
//! The pure functions know no file names: [`EditError`] and [`CfgError`] say where in the
//! bytes, and [`V8iError`] adds the path when the file layer or the CLI wraps them.

use std::io;
use std::path::PathBuf;

/// Why [`super::apply`] refuses an edit. Nothing is changed when it returns one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The file is not UTF-8 (perhaps a legacy code page); writing UTF-8 into it would mix
    /// encodings.
    #[error("not valid UTF-8 at byte offset {offset} (line {line}); refusing to write into a file in another encoding")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
        /// Its 1-based line.
        line: usize,
    },
    /// A value with a line break would split into two lines.
    #[error("the value for {key} contains a line break; values are one line")]
    LineBreakInValue {
        /// The key being set.
        key: String,
    },
    /// The key could not be read back as the same key.
    #[error("{key:?} cannot be written as a key (empty, or has \"=\", a line break or a leading \"[\")")]
    BadKey {
        /// The key as asked.
        key: String,
    },
    /// The caller named a section the list does not have.
    #[error("there is no section number {index}")]
    NoSuchSection {
        /// The index asked for.
        index: usize,
    },
    /// The same key was asked for twice in one section, with no way to say which wins.
    #[error("{key} is set twice in section number {index}")]
    SetTwice {
        /// The key.
        key: String,
        /// The section index.
        index: usize,
    },
}

/// Why `1CEStart.cfg` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CfgError {
    /// The bytes are not text in the encoding the file announces (or looks like).
    #[error("not valid {encoding} text at byte offset {offset}")]
    Decode {
        /// Byte offset of the first bad unit.
        offset: usize,
        /// The encoding tried.
        encoding: &'static str,
    },
}

/// Errors with the file they concern, for the file layer and the CLI.
#[derive(Debug, thiserror::Error)]
pub(crate) enum V8iError {
    /// Reading or writing a file failed.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A `1CEStart.cfg` could not be decoded.
    #[error("{}", path.display())]
    Cfg {
        path: PathBuf,
        #[source]
        source: CfgError,
    },
    /// A base list named by `CommonInfoBases=` could not be read.
    #[error("{}:{line}: CommonInfoBases={entry}: cannot read {}", cfg.display(), resolved.display())]
    ListedFile {
        cfg: PathBuf,
        /// 1-based line of the entry in the cfg.
        line: usize,
        entry: String,
        /// The path tried (relative entries are taken from the cfg's folder).
        resolved: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Someone else changed the file between our read and our write.
    #[error("{} changed since it was read; nothing written to it", path.display())]
    ChangedSinceRead { path: PathBuf },
}
