//! The SQLite store's archive files: each report's original archive, byte for byte, in a
//! file of its own under `DB-archives/` beside the database (`DB-archives/YYYY-MM-DD/…zip`,
//! by the day it was received), the row in the database naming it.
//!
//! In the database an archive would be written twice, into the write-ahead log and again by
//! the checkpoint; as a file it is written once. The writer thread writes a batch's files,
//! starts their write-back together, waits for each (`fdatasync`), makes their directory
//! entries durable, and only then commits the rows that name them: a row never names a file
//! that a crash could take away. A crash before the commit leaves files no row names; they
//! are never shown, and [`ArchiveDir::sweep`] removes them once they are an hour old (a
//! younger one may be another process's upload whose commit is still coming). Files of
//! purged reports are removed after the purge commits.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::platform::{start_write_back, sync_dir};

/// How old a file no row names must be before the sweep removes it.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// The directory of one database's archive files.
#[derive(Debug)]
pub(super) struct ArchiveDir {
    root: PathBuf,
    /// Makes names unique within this process (with the process id, across processes).
    next: AtomicU64,
}

/// A file written but not yet durable: [`ArchiveDir::persist`] waits for it.
pub(super) struct Pending {
    file: File,
    /// The name the row stores, relative to the root (`YYYY-MM-DD/….zip`).
    pub name: String,
}

impl ArchiveDir {
    /// The archive directory of the database at `db`: `DB-archives` beside it.
    pub fn beside(db: &Path) -> ArchiveDir {
        let mut root = db.as_os_str().to_owned();
        root.push("-archives");
        ArchiveDir {
            root: PathBuf::from(root),
            next: AtomicU64::new(0),
        }
    }

    /// Where the archive files live.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes one archive into a new file and starts its write-back; durable only after
    /// [`ArchiveDir::persist`].
    pub fn write(&self, received_at: DateTime<Utc>, archive: &[u8]) -> io::Result<Pending> {
        let day = received_at.format("%Y-%m-%d").to_string();
        let dir = self.root.join(&day);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)?;
            // The new day's entry in the root must survive a crash as the files in it do.
            sync_dir(&self.root)?;
            if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let name = format!(
                "{day}/{}-{}-{n}.zip",
                received_at.timestamp_millis(),
                std::process::id()
            );
            let mut file = match File::options().write(true).create_new(true).open(self.root.join(&name)) {
                Ok(f) => f,
                // A file of an earlier process with the same id: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            file.write_all(archive)?;
            start_write_back(&file);
            return Ok(Pending { file, name });
        }
    }

    /// Waits until every file in `pending` and its directory entry are on disk.
    pub fn persist(&self, pending: &[Pending]) -> io::Result<()> {
        let mut days = BTreeSet::new();
        for p in pending {
            p.file.sync_data()?;
            days.insert(p.name.split('/').next().unwrap_or_default());
        }
        for day in days {
            sync_dir(&self.root.join(day))?;
        }
        Ok(())
    }

    /// Reads the archive stored as `name`.
    pub fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(name)?)
    }

    /// Removes the files of `names` (of purged reports, or of rows that were not committed);
    /// one that cannot be removed is logged and left to the sweep.
    pub fn remove<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            let removed = self.path(name).and_then(std::fs::remove_file);
            if let Err(e) = removed
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(file = %self.root.join(name).display(), error = %e, "cannot remove an archive file");
            }
        }
    }

    /// Removes files older than an hour that no row names (`named` answers whether a row
    /// does), and day directories left empty; returns how many files it removed.
    pub fn sweep(&self, named: impl Fn(&str) -> rusqlite::Result<bool>) -> io::Result<u64> {
        let now = SystemTime::now();
        let mut removed = 0;
        let days = match std::fs::read_dir(&self.root) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        for day in days {
            let day = day?;
            if !day.file_type()?.is_dir() {
                continue;
            }
            let day_name = day.file_name().to_string_lossy().into_owned();
            let mut left = 0;
            for entry in std::fs::read_dir(day.path())? {
                let entry = entry?;
                let name = format!("{day_name}/{}", entry.file_name().to_string_lossy());
                if older_than_an_hour(&entry.metadata()?, now) && !named(&name).map_err(io::Error::other)? {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                } else {
                    left += 1;
                }
            }
            if left == 0 && older_than_an_hour(&day.metadata()?, now) {
                // Fails harmlessly if a file arrived meanwhile.
                let _ = std::fs::remove_dir(day.path());
            }
        }
        Ok(removed)
    }

    /// The path of a stored name; refuses names that would lead outside the directory.
    fn path(&self, name: &str) -> io::Result<PathBuf> {
        let relative = Path::new(name);
        if relative.components().all(|c| matches!(c, Component::Normal(_))) {
            Ok(self.root.join(relative))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("archive file name {name:?} leads outside {}", self.root.display()),
            ))
        }
    }
}

/// Whether what `metadata` describes was last changed over [`ORPHAN_AGE`] before `now`.
fn older_than_an_hour(metadata: &std::fs::Metadata, now: SystemTime) -> bool {
    metadata
        .modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|age| age > ORPHAN_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_archive_reads_back_and_names_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let files = ArchiveDir::beside(&dir.path().join("reports.db"));
        let at = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z").unwrap().to_utc();
        let pending = files.write(at, b"PK archive").unwrap();
        files.persist(std::slice::from_ref(&pending)).unwrap();
        assert!(pending.name.starts_with("2026-12-02/"), "{}", pending.name);
        assert!(dir.path().join("reports.db-archives").join(&pending.name).is_file());
        assert_eq!(files.read(&pending.name).unwrap(), b"PK archive");
        let second = files.write(at, b"other").unwrap();
        assert_ne!(second.name, pending.name);
        for bad in ["../reports.db", "/etc/passwd", "2026-12-02/../../x"] {
            assert_eq!(files.read(bad).unwrap_err().kind(), io::ErrorKind::InvalidData, "{bad}");
        }
        files.remove([pending.name.as_str()]);
        assert_eq!(files.read(&pending.name).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn the_sweep_removes_only_old_files_no_row_names() {
        let dir = tempfile::tempdir().unwrap();
        let files = ArchiveDir::beside(&dir.path().join("reports.db"));
        let at = DateTime::parse_from_rfc3339("2026-01-05T10:00:00Z").unwrap().to_utc();
        let named = files.write(at, b"kept: a row names it").unwrap();
        let orphan = files.write(at, b"a crash left it").unwrap();
        let young = files.write(at, b"another process may commit it yet").unwrap();
        let hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
        for p in [&named, &orphan] {
            p.file.set_modified(hours_ago).unwrap();
        }
        let removed = files.sweep(|name| Ok(name == named.name)).unwrap();
        assert_eq!(removed, 1);
        assert!(files.read(&named.name).is_ok());
        assert!(files.read(&orphan.name).is_err());
        assert!(files.read(&young.name).is_ok());
    }
}
