//! Many bases, one service: the messages directory (`--messages DIR`), where every
//! `NAME.json` is the message document of base NAME, served at `/NAME/`,
//! `/NAME/message.json` and `/NAME/help`.
//!
//! [`Messages`] holds one [`LiveMessage`] per document — so each has the guarantees of the
//! single message file: parsed fully before it is swapped in, a bad edit keeps that base's
//! last good version, an empty file is taken only once it stays empty — in a map that is
//! itself swapped whole (`ArcSwap`) when a base appears or goes. A request is one map
//! lookup by the `&str` of its path and one snapshot load: no allocation, no lock.
//!
//! `DirReload` keeps the map in step with the directory, as a target of the one reload
//! loop (`crate::watch::keep`; so every read runs on a blocking thread under the file-read
//! deadline): an event names a file, and only that file is re-read and re-rendered; a deleted file is dropped only once it has stayed
//! deleted for [`DELETE_GRACE`]; a ConfigMap `..data` swap or a lost event re-checks every
//! file by its metadata, reading only those that changed.

mod dir;
pub use dir::Refreshed;
pub(crate) mod name;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::document::State;
use crate::time::Zone;
use crate::watch::{LiveMessage, Now};
pub(crate) use watch::DirReload;

/// How long a document's file must stay missing before its base stops being served: a save
/// that deletes and recreates the file, or moves it aside first, leaves a gap shorter
/// than this.
pub const DELETE_GRACE: Duration = Duration::from_secs(1);

/// Why the messages directory cannot be used at start-up.
#[derive(Debug, thiserror::Error)]
pub enum MessagesError {
    /// `--messages DIR` cannot be listed (missing, not a directory, no permission).
    #[error("--messages {}: cannot read the directory: {source}", path.display())]
    Read {
        /// The directory as given.
        path: PathBuf,
        /// Why listing it failed.
        source: std::io::Error,
    },
}

/// Base name → its live document. Swapped whole when a base is added or removed.
type Map = HashMap<Box<str>, Arc<LiveMessage>>;

/// The documents of a messages directory, each served as its base's message.
#[derive(Debug)]
pub struct Messages {
    dir: PathBuf,
    zone: Zone,
    bases: ArcSwap<Map>,
    /// Serializes changes to the map and holds what the watcher remembers about the files.
    writer: Mutex<dir::Files>,
    /// How long the first load of the whole directory took.
    loaded_in: Duration,
}

impl Messages {
    /// Loads every `NAME.json` of `dir`. An invalid document is logged and its base serves
    /// no message until the file is valid; only a directory that cannot be listed is an error.
    pub fn open(dir: PathBuf, zone: Zone) -> Result<Arc<Messages>, MessagesError> {
        let started = std::time::Instant::now();
        let mut files = dir::Files::default();
        let map = dir::load_all(&dir, zone, &mut files, Now::read()).map_err(|source| MessagesError::Read {
            path: dir.clone(),
            source,
        })?;
        let loaded_in = started.elapsed();
        let failing = map.values().filter(|l| l.status().last_error.is_some()).count();
        tracing::info!(
            dir = %dir.display(),
            documents = map.len(),
            failing,
            took_ms = loaded_in.as_secs_f64() * 1000.0,
            "messages directory loaded"
        );
        Ok(Arc::new(Messages {
            dir,
            zone,
            bases: ArcSwap::from_pointee(map),
            writer: Mutex::new(files),
            loaded_in,
        }))
    }

    /// The live document of base `name`, if there is one. The request path: one hash
    /// lookup, no allocation.
    pub fn get(&self, name: &str) -> Option<Arc<LiveMessage>> {
        self.bases.load().get(name).cloned()
    }

    /// The directory, as configured.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many bases are served.
    pub fn len(&self) -> usize {
        self.bases.load().len()
    }

    /// Whether no base is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long loading the whole directory took at start-up.
    pub(crate) fn loaded_in(&self) -> Duration {
        self.loaded_in
    }

    /// Every base's name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.bases.load().keys().map(|k| k.to_string()).collect();
        names.sort_unstable();
        names
    }

    /// Re-reads one base's file now (what an event for `NAME.json` does), adding the base
    /// if the file is new. A missing file is only noted: see `Messages::drop_if_gone`.
    pub fn refresh(&self, name: &str, now: Now) -> dir::Refreshed {
        let mut files = self.lock();
        dir::refresh(self, &mut files, name, now)
    }

    /// Removes base `name` if its file is (still) missing; returns whether it was removed.
    pub(crate) fn drop_if_gone(&self, name: &str) -> bool {
        let mut files = self.lock();
        dir::drop_if_gone(self, &mut files, name)
    }

    /// Lists the directory and re-reads every file whose metadata changed since it was last
    /// read, adds new ones; returns the bases whose files are missing (to drop once they
    /// stay missing).
    pub(crate) fn rescan(&self, now: Now) -> Vec<String> {
        let mut files = self.lock();
        dir::rescan(self, &mut files, now)
    }

    /// Whether the directory came back after it could not be listed, since the last call
    /// (the watcher then watches it anew: a directory moved away and back, or remounted).
    pub(crate) fn take_relisted(&self) -> bool {
        std::mem::take(&mut self.lock().relisted)
    }

    /// Re-reads every document, unchanged ones too (SIGHUP).
    pub(crate) fn reload_all(&self, now: Now) {
        let _files = self.lock();
        for live in self.bases.load().values() {
            live.reload(true, now);
        }
    }

    /// Logs, once per name, a file of the directory that is no message document.
    pub(crate) fn note_ignored(&self, file: &std::ffi::OsStr) {
        let mut files = self.lock();
        files.ignore(&self.dir, &file.to_os_string(), dir::NOT_A_DOCUMENT);
    }

    /// Counts by state, and the documents whose last load failed.
    pub(crate) fn summary(&self, now: DateTime<Utc>) -> Summary {
        let mut s = Summary::default();
        for live in self.bases.load().values() {
            s.documents += 1;
            match live.snapshot().document.state(now) {
                State::Active => s.active += 1,
                State::Scheduled => s.scheduled += 1,
                State::Expired => s.expired += 1,
                State::None => s.none += 1,
            }
            let status = live.status();
            if status.last_error.is_some() {
                s.failing += 1;
            }
            s.reloads += status.reloads;
            s.failures += status.failures;
        }
        s
    }

    /// One document's state, for `/healthz`.
    pub(crate) fn report(&self, name: &str, now: DateTime<Utc>) -> Option<BaseReport> {
        self.get(name).map(|live| BaseReport::of(name, &live, now))
    }

    /// Every document's state, sorted by base name.
    pub(crate) fn reports(&self, now: DateTime<Utc>) -> Vec<BaseReport> {
        let map = self.bases.load();
        let mut all: Vec<BaseReport> = map.iter().map(|(n, l)| BaseReport::of(n, l, now)).collect();
        all.sort_unstable_by(|a, b| a.base.cmp(&b.base));
        all
    }

    fn lock(&self) -> MutexGuard<'_, dir::Files> {
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Counts over every document of the directory (`/healthz`, `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Summary {
    /// Documents served.
    pub documents: u64,
    /// Documents whose message is being served now.
    pub active: u64,
    /// Documents whose `starts` is still ahead.
    pub scheduled: u64,
    /// Documents whose `expires` has passed.
    pub expired: u64,
    /// Empty documents (and documents never loaded valid).
    pub none: u64,
    /// Documents whose last load failed (they keep their last good version).
    pub failing: u64,
    /// Loads that changed a served document, summed.
    pub reloads: u64,
    /// Loads that were refused, summed.
    pub failures: u64,
}

/// What `/healthz` says about one document.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct BaseReport {
    /// The base name (the file stem).
    pub base: String,
    /// `active`, `scheduled`, `expired` or `none`, at the moment asked.
    pub state: &'static str,
    /// The document's file.
    pub source: String,
    /// When the version served was loaded.
    pub loaded_at: Option<String>,
    /// The error of the last load, if it failed (the last good version is served).
    pub last_error: Option<String>,
    /// The file was missing at the last look (the base is dropped once it stays missing).
    pub file_missing: bool,
    /// `expires` of the document served.
    pub expires: Option<String>,
    /// `starts` of the document served.
    pub starts: Option<String>,
    /// Times the file was read (events for it, settle re-checks, changed metadata, SIGHUP).
    pub checks: u64,
    /// Loads that changed the served document.
    pub reloads: u64,
}

impl BaseReport {
    fn of(name: &str, live: &LiveMessage, now: DateTime<Utc>) -> BaseReport {
        let snapshot = live.snapshot();
        let doc = &snapshot.document;
        let status = live.status();
        BaseReport {
            base: name.to_string(),
            state: doc.state(now).as_str(),
            source: live.path().display().to_string(),
            loaded_at: status.loaded_at.map(|t| t.to_rfc3339()),
            last_error: status.last_error,
            file_missing: status.file_missing,
            expires: doc.expires.map(|t| t.to_rfc3339()),
            starts: doc.starts.map(|t| t.to_rfc3339()),
            checks: status.checks,
            reloads: status.reloads,
        }
    }
}
