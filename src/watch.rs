//! Keeps the served snapshot in step with the message file on disk.
//!
//! [`LiveMessage`] holds the snapshot being served and swaps in a new one only after the
//! whole file was read, parsed and validated; on any error the last good snapshot stays.
//! [`watch`] drives it: a notify watcher on the file's *directory* (so that rename-over
//! saves, delete + recreate and Kubernetes ConfigMap `..data` swaps are all seen), a short
//! settle re-check after a read that looked half-written, and a periodic safety re-read
//! for events the OS dropped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use crate::document::{Document, DocumentError, MAX_FILE_BYTES};
use crate::limits::FILE_READ_DEADLINE;
use crate::snapshot::Snapshot;
use crate::time::Zone;

/// How long after a read that looked half-written (an invalid or empty file, caught while
/// an editor rewrites it in place) the file is read again without waiting for an event.
pub const SETTLE_DELAY: Duration = Duration::from_millis(250);

/// The served message and the record of how it got there.
#[derive(Debug)]
pub struct LiveMessage {
    path: PathBuf,
    zone: Zone,
    current: ArcSwap<Snapshot>,
    record: Mutex<Record>,
    /// A copy of the record's status, published after every attempt: readers (`/healthz`,
    /// `/metrics`) never wait for a reload in progress.
    published: ArcSwap<ReloadStatus>,
    /// Successful loads are logged at debug level (one of thousands of documents loading
    /// at start-up), not info.
    quiet: std::sync::atomic::AtomicBool,
}

/// What `/healthz` reports about loading the message file.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// When the snapshot being served was loaded (`None`: nothing loaded yet).
    pub loaded_at: Option<DateTime<Utc>>,
    /// The error of the last attempt, if it failed (cleared by the next success).
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
/// that did not change), behind one lock that also serializes reloads.
#[derive(Debug, Default)]
struct Record {
    status: ReloadStatus,
    last_seen: Option<Vec<u8>>,
    /// When the file was first read empty, and which write of it that was: an empty file
    /// clears the message only once the same empty file has stayed for [`SETTLE_DELAY`].
    empty_since: Option<(Instant, Stamp)>,
}

/// What one reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// A new document is being served.
    Loaded,
    /// The file holds what was already seen: nothing to do.
    Unchanged,
    /// The file is empty; it is applied only once it has stayed empty for [`SETTLE_DELAY`]
    /// (an in-place save truncates first), so the caller should re-check then.
    Settling,
    /// The file is missing; the last good message stays.
    Missing,
    /// The file is unreadable or invalid; the last good message stays.
    Failed(String),
}

impl LiveMessage {
    /// Starts with "no message" and tries to load `path` once. A missing or invalid file is
    /// logged, not fatal: the service serves `{"userMessage": ""}` until the file is valid.
    pub fn load(path: PathBuf, zone: Zone) -> Arc<LiveMessage> {
        LiveMessage::load_logged(path, zone, false)
    }

    /// As [`LiveMessage::load`], logging the first successful load at debug level only:
    /// for the documents of a messages directory, which are summed up in one line.
    pub fn load_quietly(path: PathBuf, zone: Zone) -> Arc<LiveMessage> {
        LiveMessage::load_logged(path, zone, true)
    }

    fn load_logged(path: PathBuf, zone: Zone, quiet: bool) -> Arc<LiveMessage> {
        let live = Arc::new(LiveMessage {
            path,
            zone,
            current: ArcSwap::from_pointee(Snapshot::empty()),
            record: Mutex::new(Record::default()),
            published: ArcSwap::from_pointee(ReloadStatus::default()),
            quiet: quiet.into(),
        });
        if live.reload(false) == Reload::Settling {
            live.reload(true); // at start-up an empty file is taken as it is
        }
        live.quiet.store(false, std::sync::atomic::Ordering::Relaxed);
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

    /// Records, without waiting for the reload lock, that an attempt did not finish in time.
    fn publish_stuck(&self, problem: String) {
        let mut status = self.status();
        if status.last_error.as_deref() != Some(problem.as_str()) {
            tracing::error!("{problem}; the last good message stays");
            status.failures += 1;
        }
        status.last_error = Some(problem);
        self.published.store(Arc::new(status));
    }

    /// Reads, validates and swaps in the file. `force` (SIGHUP, start-up) re-parses an
    /// unchanged file and takes an empty file at once; otherwise an empty file is applied
    /// only once it has been read empty, with no other content in between, for
    /// [`SETTLE_DELAY`].
    pub fn reload(&self, force: bool) -> Reload {
        let mut guard = self.lock_record();
        let result = self.reload_locked(&mut guard, force);
        self.published.store(Arc::new(guard.status.clone()));
        result
    }

    fn reload_locked(&self, record: &mut Record, force: bool) -> Reload {
        let started = Instant::now();
        let Record {
            status,
            last_seen,
            empty_since,
        } = record;
        status.checks += 1;
        let (bytes, stamp, size) = match read_limited(&self.path) {
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
            Err(err) => {
                let problem = format!("{}: cannot read: {err}", self.path.display());
                *last_seen = None;
                return self.fail(status, problem);
            }
        };
        status.file_missing = false;
        if bytes.is_empty() {
            // The same empty file (no write since) for the whole settle delay.
            let since = match *empty_since {
                Some((since, seen)) if seen == stamp => since,
                _ => empty_since.insert((started, stamp)).0,
            };
            if !force && started.duration_since(since) < SETTLE_DELAY {
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
                let now = Utc::now();
                let state = document.state(now);
                let expires = document.expires.map(|e| e.to_rfc3339());
                self.current.store(Arc::new(Snapshot::new(document)));
                status.loaded_at = Some(now);
                status.last_error = None;
                *last_seen = Some(bytes);
                status.reloads += 1;
                status.last_duration = started.elapsed();
                let took_us = status.last_duration.as_micros() as u64;
                let expires = expires.as_deref().unwrap_or("none");
                if self.quiet.load(std::sync::atomic::Ordering::Relaxed) {
                    tracing::debug!(path = %self.path.display(), state = %state, expires, took_us, "message loaded");
                } else {
                    tracing::info!(path = %self.path.display(), state = %state, expires, took_us, "message loaded");
                }
                Reload::Loaded
            }
            Err(err) => {
                // The read stopped one byte past the limit: say the file's real size.
                let err = match err {
                    DocumentError::TooLarge { limit, .. } => DocumentError::TooLarge {
                        size: usize::try_from(size).unwrap_or(usize::MAX),
                        limit,
                    },
                    other => other,
                };
                let problem = format!("{}: {err}", self.path.display());
                *last_seen = Some(bytes);
                self.fail(status, problem)
            }
        }
    }

    fn fail(&self, status: &mut ReloadStatus, problem: String) -> Reload {
        if status.last_error.as_deref() != Some(problem.as_str()) {
            let keeps = if status.loaded_at.is_some() {
                "the last good message stays"
            } else {
                "serving no message until it is valid"
            };
            tracing::error!("{problem}; {keeps}");
            status.failures += 1;
        }
        status.last_error = Some(problem.clone());
        Reload::Failed(problem)
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
fn read_limited(path: &Path) -> std::io::Result<(Vec<u8>, Stamp, u64)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device cannot hold the message)",
        ));
    }
    let stamp = Stamp::of(&meta);
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes, stamp, meta.len()))
}

/// One reload on a blocking thread, given up after [`FILE_READ_DEADLINE`] (a hung network
/// mount): the serving threads and the watcher's runtime never wait on the file system.
/// `pending` holds an attempt that overran; no new one starts until it has returned, so a
/// stuck mount costs one thread, not one per re-check.
async fn reload_off_thread(
    live: &Arc<LiveMessage>,
    force: bool,
    pending: &mut Option<tokio::task::JoinHandle<Reload>>,
) -> Option<Reload> {
    if let Some(stuck) = pending {
        if !stuck.is_finished() {
            live.publish_stuck(format!(
                "{}: the previous read has not returned after {} s (a hung network mount?)",
                live.path.display(),
                FILE_READ_DEADLINE.as_secs()
            ));
            return None;
        }
        *pending = None;
    }
    let task = {
        let live = live.clone();
        tokio::task::spawn_blocking(move || live.reload(force))
    };
    let mut task = task;
    match tokio::time::timeout(FILE_READ_DEADLINE, &mut task).await {
        Ok(Ok(result)) => Some(result),
        Ok(Err(err)) => {
            tracing::error!("the message reload failed: {err}");
            None
        }
        Err(_) => {
            live.publish_stuck(format!(
                "{}: reading the file took more than {} s (a hung network mount?)",
                live.path.display(),
                FILE_READ_DEADLINE.as_secs()
            ));
            *pending = Some(task);
            None
        }
    }
}

/// Which file, and which write of it: two reads with the same stamp saw no write in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            modified: meta.modified().ok(),
            inode,
        }
    }
}

/// Keeps `live` in step with its file until `shutdown` completes. Also reloads at once when
/// `force` is notified (SIGHUP).
pub async fn watch(
    live: Arc<LiveMessage>,
    recheck: Duration,
    force: Arc<Notify>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let changed = Arc::new(Notify::new());
    let mut watch = DirWatch::start("message", &[live.path()], changed.clone());
    let poll = match (&watch, recheck.is_zero()) {
        (Some(_), false) => recheck,
        (Some(_), true) => Duration::from_secs(5),
        (None, _) => Duration::from_millis(500),
    };
    let mut pending = None;
    // A save made between the first load and the watch being in place produced no event.
    tokio::select! {
        _ = &mut shutdown => return,
        _ = reload_off_thread(&live, false, &mut pending) => {}
    }
    let mut settle_at: Option<tokio::time::Instant> = None;
    let mut next_poll = tokio::time::Instant::now() + poll;
    loop {
        let settle = async {
            match settle_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let force = tokio::select! {
            _ = &mut shutdown => return,
            _ = changed.notified() => false,
            _ = settle => { settle_at = None; false }
            _ = force.notified() => { tracing::info!("SIGHUP: reloading the message file"); true }
            _ = tokio::time::sleep_until(next_poll) => { next_poll = tokio::time::Instant::now() + poll; false }
        };
        let reloaded = tokio::select! {
            _ = &mut shutdown => return,
            r = reload_off_thread(&live, force, &mut pending) => r,
        };
        match reloaded {
            // Possibly caught in the middle of an in-place save: look again shortly, even if
            // the writer's last event was merged with an earlier one. (A re-check only reads;
            // an empty file is applied only if it stayed empty all along.)
            Some(Reload::Settling | Reload::Failed(_)) if settle_at.is_none() => {
                settle_at = Some(tokio::time::Instant::now() + SETTLE_DELAY)
            }
            _ => {}
        }
        if let Some(w) = watch.as_mut() {
            w.follow_symlinks();
        }
    }
}

/// A notify watcher on the directories of some files, and on the directories their symlinks
/// point into (re-pointed by [`DirWatch::follow_symlinks`] when a link changes). It only
/// forwards: every change event notifies `changed`; the owner decides what to re-read.
pub struct DirWatch {
    watcher: notify::RecommendedWatcher,
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    targets: Vec<PathBuf>,
}

impl DirWatch {
    /// Starts watching; on failure (inotify limits) logs why with the fix and returns `None`,
    /// so that the caller falls back to polling. `what` names the files in the log.
    pub fn start(what: &str, files: &[&Path], changed: Arc<Notify>) -> Option<DirWatch> {
        let dirs: Vec<PathBuf> = files.iter().map(|f| parent_dir(f)).collect();
        match DirWatch::try_start(files, &dirs, changed) {
            Ok(mut w) => {
                w.follow_symlinks();
                Some(w)
            }
            Err(err) => {
                tracing::error!(
                    "cannot watch the {what} directory ({err}); polling instead. If inotify limits are reached,                      raise them: sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=1024"
                );
                None
            }
        }
    }

    fn try_start(files: &[&Path], dirs: &[PathBuf], changed: Arc<Notify>) -> notify::Result<DirWatch> {
        // A change counts when it touches one of the files by name, a ConfigMap `..` entry,
        // anything in a symlink target's directory (whatever the target is called), or when
        // the OS says events were lost. Writes to other files in the same directory (logs,
        // editors' swap files) do not make the service re-read. Reads (ours included) are not
        // changes: forwarding them would make every reload trigger the next.
        let names: Vec<std::ffi::OsString> = files.iter().filter_map(|f| f.file_name().map(Into::into)).collect();
        // Events name absolute paths even when the directory was given as a relative one
        // (`--message message.json` watches "."): compare against the absolute form, or every
        // write in the directory (the reports database beside the message) would count.
        let main_dirs: Vec<PathBuf> = dirs
            .iter()
            .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
            .collect();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            use notify::event::{AccessKind, AccessMode, EventKind};
            let Ok(event) = event else {
                changed.notify_one();
                return;
            };
            let is_write = match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => false,
                _ => true,
            };
            let relevant = event.need_rescan()
                || event.paths.is_empty()
                || event.paths.iter().any(|p| {
                    let name = p.file_name().unwrap_or_default();
                    let in_main_dir = p.parent().is_some_and(|d| main_dirs.iter().any(|m| m == d));
                    !in_main_dir || names.iter().any(|n| n == name) || name.to_string_lossy().starts_with("..")
                });
            if (is_write || event.need_rescan()) && relevant {
                changed.notify_one();
            }
        })?;
        let mut watched = Vec::new();
        for dir in dirs {
            if !watched.contains(dir) {
                watcher.watch(dir, RecursiveMode::NonRecursive)?;
                watched.push(dir.clone());
            }
        }
        Ok(DirWatch {
            watcher,
            files: files.iter().map(|f| f.to_path_buf()).collect(),
            dirs: watched,
            targets: Vec::new(),
        })
    }

    /// When a file is a symlink into another directory, watches that directory too, so that
    /// saves to the target are seen; drops watches of directories no link points into now.
    pub fn follow_symlinks(&mut self) {
        let main: Vec<PathBuf> = self.dirs.iter().filter_map(|d| std::fs::canonicalize(d).ok()).collect();
        let mut wanted: Vec<PathBuf> = Vec::new();
        for file in &self.files {
            if let Some(dir) = std::fs::canonicalize(file)
                .ok()
                .and_then(|t| t.parent().map(Path::to_path_buf))
                && !main.contains(&dir)
                && !wanted.contains(&dir)
            {
                wanted.push(dir);
            }
        }
        for old in self.targets.iter().filter(|t| !wanted.contains(t)) {
            let _ = self.watcher.unwatch(old);
        }
        let mut now = Vec::new();
        for dir in wanted {
            if self.targets.contains(&dir) {
                now.push(dir);
                continue;
            }
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => now.push(dir),
                Err(err) => tracing::warn!(dir = %dir.display(), "cannot watch a symlink target's directory: {err}"),
            }
        }
        self.targets = now;
    }
}

/// The directory to watch for a file: its parent (the current directory for a bare name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_edit_keeps_the_last_good_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("message.json");
        std::fs::write(&path, r#"{"userMessage":"good"}"#).unwrap();
        let live = LiveMessage::load(path.clone(), Zone::UTC);
        assert_eq!(live.snapshot().document.user_message, "good");
        std::fs::write(&path, r#"{"userMessage":"bad""#).unwrap();
        assert!(matches!(live.reload(false), Reload::Failed(e) if e.contains("line 1, column 20")));
        assert_eq!(live.snapshot().document.user_message, "good");
        assert!(live.status().last_error.is_some());
        std::fs::write(&path, r#"{"userMessage":"fixed"}"#).unwrap();
        assert_eq!(live.reload(false), Reload::Loaded);
        assert_eq!(live.snapshot().document.user_message, "fixed");
        assert_eq!(live.status().last_error, None);
    }

    #[test]
    fn an_empty_file_clears_only_once_settled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("message.json");
        std::fs::write(&path, r#"{"userMessage":"good"}"#).unwrap();
        let live = LiveMessage::load(path.clone(), Zone::UTC);
        std::fs::write(&path, "").unwrap();
        assert_eq!(live.reload(false), Reload::Settling);
        assert_eq!(live.snapshot().document.user_message, "good");
        // Refilled and emptied again: the clock starts over.
        std::thread::sleep(SETTLE_DELAY);
        std::fs::write(&path, r#"{"userMessage":"good"}"#).unwrap();
        assert_eq!(live.reload(false), Reload::Unchanged);
        std::fs::write(&path, "").unwrap();
        assert_eq!(live.reload(false), Reload::Settling);
        assert_eq!(live.snapshot().document.user_message, "good");
        std::thread::sleep(SETTLE_DELAY);
        assert_eq!(live.reload(false), Reload::Loaded);
        assert!(live.snapshot().document.is_empty());
    }

    #[test]
    fn a_missing_file_keeps_the_message_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("message.json");
        std::fs::write(&path, r#"{"userMessage":"good"}"#).unwrap();
        let live = LiveMessage::load(path.clone(), Zone::UTC);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(live.reload(false), Reload::Missing);
        assert!(live.status().file_missing);
        assert_eq!(live.snapshot().document.user_message, "good");
    }

    #[test]
    fn an_unreadable_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("message.json");
        std::fs::write(&path, r#"{"userMessage":"good"}"#).unwrap();
        let live = LiveMessage::load(path.clone(), Zone::UTC);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap(); // reading a directory fails even for root
        match live.reload(false) {
            Reload::Failed(e) => assert!(e.starts_with(&format!("{}: cannot read", path.display())), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(live.snapshot().document.user_message, "good");
    }

    #[test]
    fn missing_at_start_serves_no_message() {
        let dir = tempfile::tempdir().unwrap();
        let live = LiveMessage::load(dir.path().join("message.json"), Zone::UTC);
        assert!(live.snapshot().document.is_empty());
        assert!(live.status().file_missing);
    }
}
