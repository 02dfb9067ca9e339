//! The live state: the message being served, and the record of how it got there.
//!
//! [`LiveMessage`] holds the snapshot being served and swaps in a new one only after the
//! whole file was read, parsed and validated; on any error the last good snapshot stays.
//! [`LiveMessage::reload`] is one attempt, decided by the time it is given (`now`): it never
//! reads the clock for a decision and never sleeps, so its tests pass times instead. The
//! file is read before any lock is taken; the status readers see (`/healthz`, `/metrics`)
//! is published through an `ArcSwap`, so a request never waits for a reload.
//!
//! What calls `reload` and when (events, settle re-checks, safety re-reads, SIGHUP) is the
//! reload loop's business: see [`super::reload`].

use crate::platform::FileStamp;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::document::{Document, DocumentError, MAX_FILE_BYTES};
use crate::snapshot::Snapshot;
use crate::time::Zone;

/// How long after a read that looked half-written (an invalid or empty file, caught while
/// an editor rewrites it in place) the file is read again without waiting for an event.
pub(crate) const SETTLE_DELAY: Duration = Duration::from_millis(250);

/// The moment a reload is decided at, read once by the caller (the reload loop, or start-up)
/// so that the decision itself never reads the clock.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For durations: how long an empty file has stayed empty.
    pub instant: Instant,
    /// For the document: which state it is in, and when it was loaded.
    pub utc: DateTime<Utc>,
}

impl Now {
    /// Reads both clocks: for the outer layer only.
    pub fn read() -> Now {
        Now {
            instant: Instant::now(),
            utc: Utc::now(),
        }
    }
}

/// Why an attempt to load the message file failed; the last good message stays. Its text
/// (path first, then the cause) is what the log line and `/healthz` show; the cause is a
/// field, not an error `source`, so that a chain printer does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is there but cannot be read (permissions, not a regular file, I/O error).
    #[error("{}: cannot read: {cause}", path.display())]
    Unreadable { path: PathBuf, cause: std::io::Error },
    /// The file was read but is no valid message document.
    #[error("{}: {cause}", path.display())]
    Invalid {
        path: PathBuf,
        /// What is wrong with the document, and where.
        cause: DocumentError,
    },
    /// The read did not return within its deadline (a hung network mount).
    #[error("{}: reading the file took more than {} s (a hung network mount?)", path.display(), after.as_secs())]
    TimedOut {
        path: PathBuf,
        /// The deadline that passed.
        after: Duration,
    },
    /// A read that overran its deadline has still not returned, so no new one was started.
    #[error("{}: the previous read has not returned after {} s (a hung network mount?)", path.display(), after.as_secs())]
    StillReading {
        path: PathBuf,
        /// The deadline that passed.
        after: Duration,
    },
}

/// The served message and the record of how it got there.
#[derive(Debug)]
pub struct LiveMessage {
    path: PathBuf,
    zone: Zone,
    current: ArcSwap<Snapshot>,
    /// Taken by every attempt *after* its read, only to decide and record.
    record: Mutex<Record>,
    /// Numbers the reads: a read that started before one already applied is stale (two
    /// attempts at once, e.g. SIGHUP and an event) and must not undo it.
    reads: AtomicU64,
    /// A copy of the record's status, published after every attempt: readers (`/healthz`,
    /// `/metrics`) never wait for a reload in progress.
    published: ArcSwap<ReloadStatus>,
    /// Successful loads are logged at debug level (one of thousands of documents loading
    /// at start-up), not info.
    quiet: AtomicBool,
}

/// What `/healthz` reports about loading the message file.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// When the snapshot being served was loaded (`None`: nothing loaded yet).
    pub loaded_at: Option<DateTime<Utc>>,
    /// The error of the last attempt, if it failed (cleared by the next success), as shown.
    pub last_error: Option<String>,
    /// The file was not there at the last attempt.
    pub file_missing: bool,
    /// Times the file was looked at (events, settle re-checks, safety re-reads, SIGHUP).
    pub checks: u64,
    /// Successful loads that changed the served document.
    pub reloads: u64,
    /// Attempts that failed (each distinct failure counted once).
    pub failures: u64,
    /// How long the last successful load took (read, parse, render, swap).
    pub last_duration: Duration,
}

/// The record, and the bytes of the last attempt (to skip re-parsing and re-logging a file
/// that did not change).
#[derive(Debug, Default)]
struct Record {
    status: ReloadStatus,
    last_seen: Option<Vec<u8>>,
    /// When the file was first read empty, and which write of it that was: an empty file
    /// clears the message only once the same empty file has stayed for [`SETTLE_DELAY`].
    empty_since: Option<(Instant, FileStamp)>,
    /// The number of the last read decided on.
    read: u64,
    /// The error behind `status.last_error`, typed.
    failure: Option<Arc<ReloadError>>,
}

/// What one reload attempt did.
#[derive(Debug, Clone)]
pub enum Reload {
    /// A new document is being served.
    Loaded,
    /// The file holds what was already seen: nothing to do.
    Unchanged,
    /// The file is empty; it is applied only once it has stayed empty for `SETTLE_DELAY`
    /// (an in-place save truncates first), so the caller should re-check then.
    Settling,
    /// The file is missing; the last good message stays.
    Missing,
    /// The file is unreadable or invalid; the last good message stays.
    Failed(Arc<ReloadError>),
}

impl Reload {
    /// Whether the file may have been caught half-written (or emptied), so that it should be
    /// read again after [`SETTLE_DELAY`] without waiting for an event.
    pub(crate) fn needs_settling(&self) -> bool {
        matches!(self, Reload::Settling | Reload::Failed(_))
    }
}

/// What a read of the file gave: the bytes (at most one past the limit), which write of the
/// file they are, and the file's size.
type FileRead = std::io::Result<(Vec<u8>, FileStamp, u64)>;

impl LiveMessage {
    /// Starts with "no message" and tries to load `path` once. A missing or invalid file is
    /// logged, not fatal: the service serves `{"userMessage": ""}` until the file is valid.
    pub fn load(path: PathBuf, zone: Zone, now: Now) -> Arc<LiveMessage> {
        LiveMessage::load_logged(path, zone, false, now)
    }

    /// As [`LiveMessage::load`], logging the first successful load at debug level only:
    /// for the documents of a messages directory, which are summed up in one line.
    pub(crate) fn load_quietly(path: PathBuf, zone: Zone, now: Now) -> Arc<LiveMessage> {
        LiveMessage::load_logged(path, zone, true, now)
    }

    fn load_logged(path: PathBuf, zone: Zone, quiet: bool, now: Now) -> Arc<LiveMessage> {
        let live = Arc::new(LiveMessage {
            path,
            zone,
            current: ArcSwap::from_pointee(Snapshot::empty()),
            record: Mutex::new(Record::default()),
            reads: AtomicU64::new(0),
            published: ArcSwap::from_pointee(ReloadStatus::default()),
            quiet: quiet.into(),
        });
        if let Reload::Settling = live.reload(false, now) {
            live.reload(true, now); // at start-up an empty file is taken as it is
        }
        live.quiet.store(false, Ordering::Relaxed);
        live
    }

    /// The snapshot to answer a request with.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The message file's path, as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The reload record as of the last finished attempt (never waits for one in progress).
    pub fn status(&self) -> ReloadStatus {
        ReloadStatus::clone(&self.published.load())
    }

    /// Records, without waiting for an attempt in progress, that one did not finish in
    /// time (`problem` is [`ReloadError::TimedOut`] or [`ReloadError::StillReading`]).
    pub(crate) fn publish_stuck(&self, problem: ReloadError) {
        let problem = problem.to_string();
        let mut status = self.status();
        if status.last_error.as_deref() != Some(problem.as_str()) {
            tracing::error!("{problem}; the last good message stays");
            status.failures += 1;
        }
        status.last_error = Some(problem);
        self.published.store(Arc::new(status));
    }

    /// Reads, validates and swaps in the file, deciding by `now`. `force` (SIGHUP, start-up)
    /// re-parses an unchanged file and takes an empty file at once; otherwise an empty file
    /// is applied only once it has been read empty, with no other content in between, for
    /// `SETTLE_DELAY`.
    ///
    /// Blocking (it reads the file): the reload loop runs it on a blocking thread under a
    /// deadline.
    pub fn reload(&self, force: bool, now: Now) -> Reload {
        // Measured for the status only; nothing is decided by it.
        let started = Instant::now();
        let ticket = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        let read = read_limited(&self.path);
        let mut record = self.lock_record();
        let result = if ticket < record.read {
            // A read that started later was already decided on: this one saw older bytes.
            record.status.checks += 1;
            Reload::Unchanged
        } else {
            record.read = ticket;
            let result = self.decide(&mut record, read, force, now, started);
            match &result {
                Reload::Failed(e) => record.failure = Some(e.clone()),
                Reload::Loaded => record.failure = None,
                _ => {}
            }
            result
        };
        self.published.store(Arc::new(record.status.clone()));
        result
    }

    fn decide(&self, record: &mut Record, read: FileRead, force: bool, now: Now, started: Instant) -> Reload {
        let Record {
            status,
            last_seen,
            empty_since,
            ..
        } = record;
        status.checks += 1;
        let (bytes, stamp, size) = match read {
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if !status.file_missing {
                    let keeps = if status.loaded_at.is_some() {
                        "the last good message stays"
                    } else {
                        "serving no message until it appears"
                    };
                    tracing::warn!(path = %self.path.display(), "message file is missing; {keeps}");
                    status.file_missing = true;
                    *last_seen = None;
                    *empty_since = None;
                }
                return Reload::Missing;
            }
            Err(cause) => {
                *last_seen = None;
                return self.fail(
                    status,
                    ReloadError::Unreadable {
                        path: self.path.clone(),
                        cause,
                    },
                );
            }
        };
        status.file_missing = false;
        if bytes.is_empty() {
            // The same empty file (no write since) for the whole settle delay.
            let since = match *empty_since {
                Some((since, seen)) if seen == stamp => since,
                _ => empty_since.insert((now.instant, stamp)).0,
            };
            if !force && now.instant.saturating_duration_since(since) < SETTLE_DELAY {
                return Reload::Settling;
            }
        } else {
            *empty_since = None;
        }
        if last_seen.as_deref() == Some(&bytes[..]) && !force {
            return Reload::Unchanged;
        }
        match Document::parse(&bytes, self.zone) {
            Ok(document) => {
                let state = document.state(now.utc);
                let expires = document.expires.map(|e| e.to_rfc3339());
                self.current.store(Arc::new(Snapshot::new(document)));
                status.loaded_at = Some(now.utc);
                status.last_error = None;
                *last_seen = Some(bytes);
                status.reloads += 1;
                status.last_duration = started.elapsed();
                let took_us = status.last_duration.as_micros() as u64;
                let expires = expires.as_deref().unwrap_or("none");
                if self.quiet.load(Ordering::Relaxed) {
                    tracing::debug!(path = %self.path.display(), state = %state, expires, took_us, "message loaded");
                } else {
                    tracing::info!(path = %self.path.display(), state = %state, expires, took_us, "message loaded");
                }
                Reload::Loaded
            }
            Err(err) => {
                // The read stopped one byte past the limit: say the file's real size.
                let cause = match err {
                    DocumentError::TooLarge { limit, .. } => DocumentError::TooLarge {
                        size: usize::try_from(size).unwrap_or(usize::MAX),
                        limit,
                    },
                    other => other,
                };
                *last_seen = Some(bytes);
                self.fail(
                    status,
                    ReloadError::Invalid {
                        path: self.path.clone(),
                        cause,
                    },
                )
            }
        }
    }

    fn fail(&self, status: &mut ReloadStatus, problem: ReloadError) -> Reload {
        let shown = problem.to_string();
        if status.last_error.as_deref() != Some(shown.as_str()) {
            let keeps = if status.loaded_at.is_some() {
                "the last good message stays"
            } else {
                "serving no message until it is valid"
            };
            tracing::error!("{shown}; {keeps}");
            status.failures += 1;
        }
        status.last_error = Some(shown);
        Reload::Failed(Arc::new(problem))
    }

    /// What the first load did, for a document that has just appeared: `Failed` with the
    /// error it gave if it is not being served, else `Loaded`.
    pub(crate) fn first_outcome(&self) -> Reload {
        let record = self.lock_record();
        match (&record.failure, &record.status.last_error) {
            (Some(e), Some(_)) => Reload::Failed(e.clone()),
            _ => Reload::Loaded,
        }
    }

    fn lock_record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Reads at most [`MAX_FILE_BYTES`] + 1 bytes, so that a huge file is refused by the parser
/// without being read whole; also gives the file's size as `fstat` says.
///
/// The file is opened non-blocking and must be a regular file: a FIFO or a device put in
/// its place would otherwise block the open or the read forever.
fn read_limited(path: &Path) -> FileRead {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    crate::platform::open_nonblocking(&mut options);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device cannot hold the message)",
        ));
    }
    let stamp = FileStamp::of(&meta);
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes, stamp, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moment `ms` milliseconds after `start`.
    fn at(start: Now, ms: u64) -> Now {
        let later = Duration::from_millis(ms);
        Now {
            instant: start.instant + later,
            utc: start.utc + later,
        }
    }

    fn failed(r: &Reload) -> String {
        match r {
            Reload::Failed(e) => e.to_string(),
            other => panic!("{other:?}"),
        }
    }

    /// A message file holding `{"userMessage":"good"}`, loaded; the directory lives as long
    /// as the first value.
    fn serving_good() -> (tempfile::TempDir, std::path::PathBuf, Arc<LiveMessage>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("message.json");
        std::fs::write(&path, r#"{"userMessage":"good"}"#).unwrap();
        let live = LiveMessage::load(path.clone(), Zone::UTC, Now::read());
        (dir, path, live)
    }

    #[test]
    fn a_bad_edit_keeps_the_last_good_message() {
        let (_dir, path, live) = serving_good();
        let start = Now::read();
        assert_eq!(live.snapshot().document.user_message, "good");
        std::fs::write(&path, r#"{"userMessage":"bad""#).unwrap();
        let bad = live.reload(false, at(start, 10));
        assert!(failed(&bad).contains("line 1, column 20"), "{bad:?}");
        assert!(matches!(&bad, Reload::Failed(e) if matches!(**e, ReloadError::Invalid { .. })));
        assert_eq!(live.snapshot().document.user_message, "good");
        assert!(live.status().last_error.is_some());
        std::fs::write(&path, r#"{"userMessage":"fixed"}"#).unwrap();
        assert!(matches!(live.reload(false, at(start, 20)), Reload::Loaded));
        assert_eq!(live.snapshot().document.user_message, "fixed");
        assert_eq!(live.status().last_error, None);
        assert_eq!(live.status().loaded_at, Some(at(start, 20).utc));
    }

    #[test]
    fn an_empty_file_clears_only_once_settled() {
        let (_dir, path, live) = serving_good();
        let start = Now::read();
        std::fs::write(&path, "").unwrap();
        assert!(matches!(live.reload(false, at(start, 0)), Reload::Settling));
        assert_eq!(live.snapshot().document.user_message, "good");
        // Refilled and emptied again: the clock starts over.
        let settle = SETTLE_DELAY.as_millis() as u64;
        std::fs::write(&path, r#"{"userMessage":"good"}"#).unwrap();
        assert!(matches!(live.reload(false, at(start, settle)), Reload::Unchanged));
        std::fs::write(&path, "").unwrap();
        assert!(matches!(live.reload(false, at(start, settle + 1)), Reload::Settling));
        assert_eq!(live.snapshot().document.user_message, "good");
        // Still within the delay, counted from the second emptying.
        assert!(matches!(live.reload(false, at(start, 2 * settle)), Reload::Settling));
        assert!(matches!(live.reload(false, at(start, 2 * settle + 1)), Reload::Loaded));
        assert!(live.snapshot().document.is_empty());
    }

    #[test]
    fn a_missing_file_keeps_the_message_and_is_reported() {
        let (_dir, path, live) = serving_good();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(live.reload(false, Now::read()), Reload::Missing));
        assert!(live.status().file_missing);
        assert_eq!(live.snapshot().document.user_message, "good");
    }

    #[test]
    fn an_unreadable_path_is_an_error_naming_it() {
        let (_dir, path, live) = serving_good();
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap(); // reading a directory fails even for root
        let e = failed(&live.reload(false, Now::read()));
        assert!(e.starts_with(&format!("{}: cannot read", path.display())), "{e}");
        assert_eq!(live.status().last_error.as_deref(), Some(e.as_str()));
        assert_eq!(live.snapshot().document.user_message, "good");
    }

    #[test]
    fn missing_at_start_serves_no_message() {
        let dir = tempfile::tempdir().unwrap();
        let live = LiveMessage::load(dir.path().join("message.json"), Zone::UTC, Now::read());
        assert!(live.snapshot().document.is_empty());
        assert!(live.status().file_missing);
    }

    #[test]
    fn a_stuck_read_is_published_without_the_record_lock() {
        let (_dir, path, live) = serving_good();
        let _held = live.lock_record(); // as an attempt stuck in a hung mount would be
        let after = Duration::from_secs(5);
        live.publish_stuck(ReloadError::TimedOut { path, after });
        let status = live.status();
        assert!(
            status
                .last_error
                .unwrap()
                .ends_with("took more than 5 s (a hung network mount?)")
        );
        assert_eq!(status.failures, 1);
    }
}
