//! Keeps [`Messages`] in step with its directory, as a target of the one reload loop
//! ([`crate::watch::keep`]): the file-watch stage names which files changed, and
//! [`DirReload`] re-reads those — only those — on a blocking thread under the file-read
//! deadline, drops a base once its file stayed deleted for [`DELETE_GRACE`], re-checks a
//! file caught half-written after [`SETTLE_DELAY`], and re-checks the whole directory by
//! metadata on a ConfigMap `..data` swap, a lost event, SIGHUP and every `recheck`.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::dir::Refreshed;
use super::name::{self, Entry};
use super::{DELETE_GRACE, Messages};
use crate::watch::{After, Cause, Changes, Now, Reloadable, SETTLE_DELAY, Scope, Stuck};

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

/// The messages directory as a reload target; SIGHUP re-reads every document.
#[derive(Debug)]
pub(crate) struct DirReload {
    messages: Arc<Messages>,
    /// The per-base deadlines, between attempts (the loop runs one attempt at a time).
    due: Mutex<Due>,
}

impl DirReload {
    /// The target for `messages`' directory.
    pub(crate) fn new(messages: Arc<Messages>) -> DirReload {
        DirReload {
            messages,
            due: Mutex::new(Due::default()),
        }
    }
}

impl Reloadable for DirReload {
    fn what(&self) -> &'static str {
        "messages"
    }

    fn scope(&self) -> Scope {
        Scope::Dir(self.messages.dir().to_path_buf())
    }

    fn reload(&self, cause: Cause, now: Now) -> After {
        let messages = &self.messages;
        let mut due = self.due.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut all = false;
        let mut changed: HashSet<String> = HashSet::new();
        match cause {
            // Saves made between the first load and the watch being in place produced no event.
            Cause::Start | Cause::Poll => all = true,
            Cause::Changed(changes) => {
                for change in classify(messages.dir(), changes) {
                    match change {
                        Change::File(base) => {
                            changed.insert(base);
                        }
                        Change::Ignored(file) => messages.note_ignored(&file),
                        Change::All => all = true,
                    }
                }
            }
            Cause::Forced => {
                tracing::info!("SIGHUP: re-reading the messages directory");
                messages.reload_all(now);
                all = true;
            }
            Cause::Due => {}
        }
        for base in changed {
            let outcome = messages.refresh(&base, now);
            due.after(&base, &outcome, now.instant);
        }
        let mut rewatch = false;
        if all {
            due.missing(messages.rescan(now), now.instant);
            rewatch = messages.take_relisted();
        }
        for base in due.take_settled(now.instant) {
            // One re-check per event: a file that is still invalid waits for the next save.
            if let Refreshed::Missing = messages.refresh(&base, now) {
                due.missing(vec![base], now.instant);
            }
        }
        for base in due.take_deleted(now.instant) {
            messages.drop_if_gone(&base);
        }
        After {
            recheck_at: due.next(),
            rewatch,
        }
    }

    fn stuck(&self, stuck: Stuck) {
        if let Stuck::TimedOut(after) = stuck {
            tracing::error!(
                dir = %self.messages.dir().display(),
                "reading the messages directory took more than {} s (a hung network mount?); \
                 every base keeps its last good version",
                after.as_secs()
            );
        }
    }
}

/// What the paths of a batch mean for the directory.
fn classify(dir: &Path, changes: Changes) -> Vec<Change> {
    let mut out = Vec::new();
    if changes.rescan {
        out.push(Change::All);
    }
    let canonical = std::fs::canonicalize(dir).ok();
    for path in &changes.paths {
        let in_dir = path
            .parent()
            .is_some_and(|p| p == dir || canonical.as_deref() == Some(p));
        let Some(file) = path.file_name().filter(|_| in_dir) else {
            out.push(Change::All);
            continue;
        };
        out.push(match name::classify(file) {
            Entry::Base(base) => Change::File(base.to_string()),
            // The kubelet's `..data` swap re-points every key at once.
            Entry::Hidden if file.to_string_lossy().starts_with("..") => Change::All,
            Entry::Hidden => continue,
            Entry::Other => Change::Ignored(file.to_os_string()),
        });
    }
    out
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

    fn after(&mut self, base: &str, outcome: &Refreshed, now: Instant) {
        match outcome {
            Refreshed::Missing => self.missing(vec![base.to_string()], now),
            _ => {
                self.delete.remove(base);
                if outcome.needs_settling() {
                    self.settle.entry(base.to_string()).or_insert(now + SETTLE_DELAY);
                }
            }
        }
    }

    /// The file of each base is missing: it is dropped once it stays missing (the clock
    /// starts at the first miss).
    fn missing(&mut self, bases: Vec<String>, now: Instant) {
        for base in bases {
            self.delete.entry(base).or_insert(now + DELETE_GRACE);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_missing_base_is_due_for_dropping_after_the_grace_from_its_first_miss() {
        let start = Instant::now();
        let mut due = Due::default();
        due.missing(vec!["a".into()], start);
        due.missing(vec!["a".into()], start + Duration::from_millis(500));
        assert_eq!(due.next(), Some(start + DELETE_GRACE));
        assert!(
            due.take_deleted(start + DELETE_GRACE - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(due.take_deleted(start + DELETE_GRACE), vec!["a".to_string()]);
        assert_eq!(due.next(), None);
    }

    #[test]
    fn events_name_bases_and_a_configmap_swap_means_everything() {
        let dir = tempfile::tempdir().unwrap();
        let changes = Changes {
            paths: vec![
                dir.path().join("acc.json"),
                dir.path().join(".acc.json.swp"),
                dir.path().join("notes.txt"),
                dir.path().join("..data"),
            ],
            rescan: false,
        };
        let seen: Vec<String> = classify(dir.path(), changes).iter().map(|c| format!("{c:?}")).collect();
        assert_eq!(seen, ["File(\"acc\")", "Ignored(\"notes.txt\")", "All"]);
    }
}
