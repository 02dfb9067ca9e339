//! Checking a report archive before it is stored, and reading one file back out of it.
//!
//! An archive comes from an untrusted client, so nothing in it is believed: every entry is
//! decompressed (into nothing but a counter, and the `report.json` buffer) and the bytes
//! that actually come out are counted against the limits — not the sizes the headers claim.
//! Too many entries, a path that leaves the archive (`../`, absolute, drive letters), more
//! output than [`MAX_RATIO`] times the archive or [`MAX_EXPANDED`] in all, an encrypted
//! entry, a bad CRC or a broken structure: the archive is refused.

use std::io::{Cursor, Read};

use bytes::Bytes;

use crate::store::ArchiveFile;

/// Most entries an archive may hold.
pub const MAX_ENTRIES: usize = 1000;
/// Most an archive may expand to, as a multiple of its own size.
pub const MAX_RATIO: u64 = 10;
/// Most an archive may expand to, in bytes, whatever its size.
pub const MAX_EXPANDED: u64 = 200 * 1024 * 1024;
/// Largest `report.json` that is parsed (a larger one is kept in the archive, unparsed).
pub const MAX_REPORT_JSON: u64 = 16 * 1024 * 1024;

/// Why an archive is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    /// Not a ZIP archive, or a broken one (bad structure, bad CRC, unsupported method).
    #[error("not a readable ZIP archive: {0}")]
    Unreadable(String),
    /// More entries than [`MAX_ENTRIES`].
    #[error("{entries} entries, more than the {MAX_ENTRIES} allowed")]
    TooManyEntries {
        /// Entries the central directory lists.
        entries: usize,
    },
    /// An entry's name points outside the archive.
    #[error("entry {name:?} points outside the archive")]
    Traversal {
        /// The entry's name as stored.
        name: String,
    },
    /// An encrypted entry (a report never has one).
    #[error("entry {name:?} is encrypted")]
    Encrypted {
        /// The entry's name as stored.
        name: String,
    },
    /// Decompressing produced more than allowed (a zip bomb).
    #[error("expands past {limit} bytes (archive of {archive} bytes) at entry {name:?}")]
    TooLarge {
        /// The limit that was reached: [`MAX_RATIO`] × the archive size or [`MAX_EXPANDED`].
        limit: u64,
        /// The archive's own size.
        archive: u64,
        /// The entry being decompressed when the limit was reached.
        name: String,
    },
}

/// What a checked archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Every entry with its decompressed size, in archive order.
    pub files: Vec<ArchiveFile>,
    /// The bytes of `report.json` (at the archive's root, any case), if present and not
    /// larger than [`MAX_REPORT_JSON`].
    pub report_json: Option<Vec<u8>>,
}

/// The output limit for an archive of `size` bytes.
fn limit_for(size: usize) -> u64 {
    (size as u64).saturating_mul(MAX_RATIO).min(MAX_EXPANDED)
}

fn unreadable(e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Unreadable(e.to_string())
}

/// Checks every entry of `archive` against the limits and returns its listing and
/// `report.json`.
pub fn check(archive: &[u8]) -> Result<Checked, ArchiveError> {
    let limit = limit_for(archive.len());
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).map_err(unreadable)?;
    if zip.len() > MAX_ENTRIES {
        return Err(ArchiveError::TooManyEntries { entries: zip.len() });
    }
    let mut total: u64 = 0;
    let mut files = Vec::with_capacity(zip.len());
    let mut report_json = None;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(unreadable)?;
        let name = entry.name().to_string();
        let escapes = name.starts_with('/') || name.contains('\\') || name.contains(':');
        if escapes || entry.enclosed_name().is_none() {
            return Err(ArchiveError::Traversal { name });
        }
        if entry.encrypted() {
            return Err(ArchiveError::Encrypted { name });
        }
        let is_report = name.eq_ignore_ascii_case("report.json");
        let mut kept = Vec::new();
        let mut size: u64 = 0;
        loop {
            let n = entry.read(&mut buf).map_err(unreadable)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            total += n as u64;
            if total > limit {
                return Err(ArchiveError::TooLarge {
                    limit,
                    archive: archive.len() as u64,
                    name,
                });
            }
            if is_report && size <= MAX_REPORT_JSON {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        if is_report && size <= MAX_REPORT_JSON && report_json.is_none() {
            report_json = Some(kept);
        }
        files.push(ArchiveFile { name, size });
    }
    Ok(Checked { files, report_json })
}

/// One file of an already stored archive, by its exact name; `None` when there is no such
/// entry. The same limits apply as when the archive was taken.
pub fn extract(archive: &[u8], name: &str) -> Result<Option<Bytes>, ArchiveError> {
    let limit = limit_for(archive.len());
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).map_err(unreadable)?;
    let Some(index) = zip.index_for_name(name) else {
        return Ok(None);
    };
    let entry = zip.by_index(index).map_err(unreadable)?;
    let mut out = Vec::new();
    let read = entry.take(limit + 1).read_to_end(&mut out).map_err(unreadable)?;
    if read as u64 > limit {
        return Err(ArchiveError::TooLarge {
            limit,
            archive: archive.len() as u64,
            name: name.to_string(),
        });
    }
    Ok(Some(Bytes::from(out)))
}
