//! The file-watch stage: a notify watcher whose callback only forwards events into a
//! channel, and an async task — which owns the watcher — that filters them, merges a burst
//! into one [`Changes`] batch (after an optional debounce), and hands batches to the reload
//! loop one at a time. While the loop is busy reloading, new events merge into the batch
//! waiting to be taken, so a storm of saves costs one reload per pass, not one per event.
//!
//! Directories are watched, not files: rename-over saves, delete + recreate and Kubernetes
//! ConfigMap `..data` swaps replace the file, and a watch on the file itself would be lost.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::sync::mpsc;

/// What to watch.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    /// These files, through their directories (and, for symlinks, the directories they
    /// point into). Only changes that touch them count.
    Files(Vec<PathBuf>),
    /// Every file directly in this directory; the consumer decides what each path means.
    Dir(PathBuf),
}

/// What changed since the last batch was taken.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// The paths the events named (only for [`Scope::Dir`]; empty for [`Scope::Files`]).
    pub paths: Vec<PathBuf>,
    /// Anything may have changed: events were lost, or an event named no path.
    pub rescan: bool,
}

impl Changes {
    fn merge(&mut self, other: Changes) {
        self.paths.extend(other.paths);
        self.rescan |= other.rescan;
    }
}

/// A running watch stage; dropping it stops the task and the watcher.
#[derive(Debug)]
pub(super) struct FileWatch {
    batches: mpsc::Receiver<Changes>,
    follow: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FileWatch {
    /// Starts watching `scope` on the current runtime; `debounce` (zero: none) is how long
    /// to wait after a first event for the rest of a burst. On failure (inotify limits) logs
    /// why with the fix and returns `None`, so that the caller polls instead. `what` names
    /// the files in the log.
    pub(super) fn start(what: &str, scope: Scope, debounce: Duration) -> Option<FileWatch> {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let _ = raw_tx.send(event);
        });
        let started = watcher.and_then(|watcher| Inner::new(watcher, &scope));
        let inner = match started {
            Ok(inner) => inner,
            Err(err) => {
                tracing::error!(
                    "cannot watch the {what} directory ({err}); polling every 500 ms instead. If inotify \
                     limits are reached, raise them: sysctl fs.inotify.max_user_watches=524288 \
                     fs.inotify.max_user_instances=1024"
                );
                return None;
            }
        };
        let (tx, batches) = mpsc::channel(1);
        let follow = Arc::new(Notify::new());
        let task = tokio::spawn(inner.run(raw_rx, tx, follow.clone(), debounce));
        Some(FileWatch { batches, follow, task })
    }

    /// The next batch of changes; pending forever if the stage has stopped.
    pub(super) async fn next(&mut self) -> Changes {
        match self.batches.recv().await {
            Some(changes) => changes,
            None => std::future::pending().await,
        }
    }

    /// Asks the stage to check where the watched files' symlinks point now (after a reload
    /// that no event caused, e.g. a safety re-read).
    pub(super) fn follow_symlinks(&self) {
        self.follow.notify_one();
    }
}

/// The task's side: the watcher and what it needs to filter events.
struct Inner {
    watcher: notify::RecommendedWatcher,
    filter: Filter,
    /// Files whose symlink targets' directories are watched too (for [`Scope::Files`]).
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    targets: Vec<PathBuf>,
}

enum Filter {
    /// A change counts when it touches one of the files by name, a ConfigMap `..` entry,
    /// anything outside the main directories (a symlink target's directory, whatever the
    /// target is called), or when the OS says events were lost. Writes to other files in
    /// the same directory (logs, editors' swap files) do not make the service re-read.
    Files {
        names: Vec<OsString>,
        /// Events name absolute paths even when the directory was given as a relative one
        /// (`--message message.json` watches "."): compare against the absolute form, or
        /// every write in the directory (the reports database beside the message) would count.
        main_dirs: Vec<PathBuf>,
    },
    /// Every write in the directory counts, with its path.
    Dir,
}

impl Inner {
    fn new(mut watcher: notify::RecommendedWatcher, scope: &Scope) -> notify::Result<Inner> {
        let (files, dirs, filter) = match scope {
            Scope::Files(files) => {
                let dirs: Vec<PathBuf> = files.iter().map(|f| parent_dir(f)).collect();
                let names = files.iter().filter_map(|f| f.file_name().map(Into::into)).collect();
                let main_dirs = dirs
                    .iter()
                    .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
                    .collect();
                (files.clone(), dirs, Filter::Files { names, main_dirs })
            }
            Scope::Dir(dir) => (Vec::new(), vec![dir.clone()], Filter::Dir),
        };
        let mut watched = Vec::new();
        for dir in dirs {
            if !watched.contains(&dir) {
                watcher.watch(&dir, RecursiveMode::NonRecursive)?;
                watched.push(dir);
            }
        }
        let mut inner = Inner {
            watcher,
            filter,
            files,
            dirs: watched,
            targets: Vec::new(),
        };
        inner.follow_symlinks();
        Ok(inner)
    }

    async fn run(
        mut self,
        mut raw: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
        out: mpsc::Sender<Changes>,
        follow: Arc<Notify>,
        debounce: Duration,
    ) {
        let mut waiting: Option<Changes> = None;
        loop {
            tokio::select! {
                event = raw.recv() => {
                    let Some(event) = event else { return };
                    let mut batch = Changes::default();
                    let mut any = self.filter.take(event, &mut batch);
                    if any && !debounce.is_zero() {
                        tokio::time::sleep(debounce).await;
                    }
                    // One save is several events: take every one already queued.
                    while let Ok(event) = raw.try_recv() {
                        any |= self.filter.take(event, &mut batch);
                    }
                    if !any {
                        continue;
                    }
                    // A link re-pointed: watch where it points now, before the reload reads it.
                    self.follow_symlinks();
                    match &mut waiting {
                        Some(w) => w.merge(batch),
                        None => waiting = Some(batch),
                    }
                }
                permit = out.reserve(), if waiting.is_some() => {
                    let Ok(permit) = permit else { return };
                    if let Some(batch) = waiting.take() {
                        permit.send(batch);
                    }
                }
                _ = follow.notified() => self.follow_symlinks(),
                _ = out.closed() => return,
            }
        }
    }

    /// When a file is a symlink into another directory, watches that directory too, so that
    /// saves to the target are seen; drops watches of directories no link points into now.
    fn follow_symlinks(&mut self) {
        if self.files.is_empty() {
            return;
        }
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

impl Filter {
    /// Adds what `event` says to `batch`; returns whether it counts as a change. Reads
    /// (ours included) are not changes: forwarding them would make every reload trigger
    /// the next.
    fn take(&self, event: notify::Result<notify::Event>, batch: &mut Changes) -> bool {
        use notify::event::{AccessKind, AccessMode, EventKind};
        let Ok(event) = event else {
            batch.rescan = true;
            return true;
        };
        let is_write = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        };
        match self {
            Filter::Files { names, main_dirs } => {
                let relevant = event.need_rescan()
                    || event.paths.is_empty()
                    || event.paths.iter().any(|p| {
                        let name = p.file_name().unwrap_or_default();
                        let in_main_dir = p.parent().is_some_and(|d| main_dirs.iter().any(|m| m == d));
                        !in_main_dir || names.iter().any(|n| n == name) || name.to_string_lossy().starts_with("..")
                    });
                (is_write || event.need_rescan()) && relevant
            }
            Filter::Dir => {
                if event.need_rescan() || event.paths.is_empty() {
                    batch.rescan = true;
                    return true;
                }
                if !is_write {
                    return false;
                }
                batch.paths.extend(event.paths);
                true
            }
        }
    }
}

/// The directory to watch for a file: its parent (the current directory for a bare name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
