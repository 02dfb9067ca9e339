//! Keeps [`Messages`] in step with its directory: a notify watcher on the directory whose
//! callback only forwards which file changed, and a task that re-reads that file — only
//! that one — drops a base once its file stayed deleted for [`DELETE_GRACE`], re-checks a
//! file caught half-written after [`SETTLE_DELAY`], and re-checks the whole directory by
//! metadata on a ConfigMap `..data` swap, a lost event, SIGHUP and every `recheck`.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::time::Instant;

use super::name::{self, Entry};
use super::{DELETE_GRACE, Messages};
use crate::watch::SETTLE_DELAY;

/// What an event says changed.
#[derive(Debug)]
enum Change {
    /// `NAME.json`.
    File(String),
    /// A file that is no document (logged once).
    Ignored(OsString),
    /// Anything that may touch every file: a ConfigMap `..data` swap, the directory itself,
    /// lost events.
    All,
}

/// Keeps `messages` in step with its directory until `shutdown` completes; `force`
/// (SIGHUP) re-reads every document.
pub async fn watch(
    messages: Arc<Messages>,
    recheck: Duration,
    force: Arc<Notify>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (tx, mut rx) = unbounded_channel();
    let watcher = start(messages.dir(), tx);
    let poll = match (&watcher, recheck.is_zero()) {
        (Some(_), false) => recheck,
        (Some(_), true) => Duration::from_secs(5),
        (None, _) => Duration::from_millis(500),
    };
    let mut due = Due::default();
    // Saves made between the first load and the watch being in place produced no event.
    due.missing(messages.rescan());
    tokio::pin!(shutdown);
    let mut next_poll = Instant::now() + poll;
    loop {
        let wake = due.next().map_or(next_poll, |t| t.min(next_poll));
        let mut all = false;
        let mut changed: HashSet<String> = HashSet::new();
        tokio::select! {
            _ = &mut shutdown => return,
            change = rx.recv() => {
                let Some(change) = change else { return };
                collect(&messages, change, &mut changed, &mut all);
                // One save is several events: take every one already queued.
                while let Ok(change) = rx.try_recv() {
                    collect(&messages, change, &mut changed, &mut all);
                }
            }
            _ = force.notified() => {
                tracing::info!("SIGHUP: re-reading the messages directory");
                messages.reload_all();
                all = true;
            }
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= next_poll {
                    next_poll = Instant::now() + poll;
                    all = true;
                }
            }
        }
        for base in changed {
            let outcome = messages.refresh(&base);
            due.after(&base, &outcome);
        }
        if all {
            due.missing(messages.rescan());
        }
        let now = Instant::now();
        for base in due.take_settled(now) {
            // One re-check per event: a file that is still invalid waits for the next save.
            if messages.refresh(&base) == super::dir::Refreshed::Missing {
                due.missing(vec![base]);
            }
        }
        for base in due.take_deleted(now) {
            messages.drop_if_gone(&base);
        }
    }
}

fn collect(messages: &Messages, change: Change, changed: &mut HashSet<String>, all: &mut bool) {
    match change {
        Change::File(base) => {
            changed.insert(base);
        }
        Change::Ignored(file) => messages.note_ignored(&file),
        Change::All => *all = true,
    }
}

/// Per-base deadlines: when to re-check a file caught half-written, and when to drop a base
/// whose file went missing.
#[derive(Debug, Default)]
struct Due {
    settle: HashMap<String, Instant>,
    delete: HashMap<String, Instant>,
}

impl Due {
    fn next(&self) -> Option<Instant> {
        self.settle.values().chain(self.delete.values()).min().copied()
    }

    fn after(&mut self, base: &str, outcome: &super::dir::Refreshed) {
        use super::dir::Refreshed;
        match outcome {
            Refreshed::Missing => self.missing(vec![base.to_string()]),
            _ => {
                self.delete.remove(base);
                if outcome.needs_settling() {
                    self.settle
                        .entry(base.to_string())
                        .or_insert_with(|| Instant::now() + SETTLE_DELAY);
                }
            }
        }
    }

    /// The file of each base is missing: it is dropped once it stays missing (the clock
    /// starts at the first miss).
    fn missing(&mut self, bases: Vec<String>) {
        for base in bases {
            self.delete.entry(base).or_insert_with(|| Instant::now() + DELETE_GRACE);
        }
    }

    fn take_settled(&mut self, now: Instant) -> Vec<String> {
        take_due(&mut self.settle, now)
    }

    fn take_deleted(&mut self, now: Instant) -> Vec<String> {
        take_due(&mut self.delete, now)
    }
}

fn take_due(map: &mut HashMap<String, Instant>, now: Instant) -> Vec<String> {
    let due: Vec<String> = map.iter().filter(|(_, t)| **t <= now).map(|(b, _)| b.clone()).collect();
    for base in &due {
        map.remove(base);
    }
    due
}

/// A notify watcher on `dir` forwarding each change into `tx`; `None` (logged, polling
/// instead) when it cannot be set up.
fn start(dir: &Path, tx: UnboundedSender<Change>) -> Option<notify::RecommendedWatcher> {
    let watched: PathBuf = dir.to_path_buf();
    let canonical = std::fs::canonicalize(dir).ok();
    let handler = move |event: notify::Result<notify::Event>| {
        use notify::event::{AccessKind, AccessMode, EventKind};
        let Ok(event) = event else {
            let _ = tx.send(Change::All);
            return;
        };
        let is_write = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            // Reads (ours included) are not changes: forwarding them would make every
            // reload trigger the next.
            EventKind::Access(_) => false,
            _ => true,
        };
        if event.need_rescan() || event.paths.is_empty() {
            let _ = tx.send(Change::All);
            return;
        }
        if !is_write {
            return;
        }
        for path in &event.paths {
            let in_dir = path
                .parent()
                .is_some_and(|p| p == watched || canonical.as_deref() == Some(p));
            let Some(file) = path.file_name().filter(|_| in_dir) else {
                let _ = tx.send(Change::All);
                continue;
            };
            let change = match name::classify(file) {
                Entry::Base(base) => Change::File(base.to_string()),
                // The kubelet's `..data` swap re-points every key at once.
                Entry::Hidden if file.to_string_lossy().starts_with("..") => Change::All,
                Entry::Hidden => continue,
                Entry::Other => Change::Ignored(file.to_os_string()),
            };
            let _ = tx.send(change);
        }
    };
    let started = notify::recommended_watcher(handler).and_then(|mut w| {
        w.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    match started {
        Ok(w) => Some(w),
        Err(err) => {
            tracing::error!(
                dir = %dir.display(),
                "cannot watch the messages directory ({err}); polling it every 500 ms instead. If inotify \
                 limits are reached, raise them: sysctl fs.inotify.max_user_watches=524288 \
                 fs.inotify.max_user_instances=1024"
            );
            None
        }
    }
}
