//! The one reload loop, for everything that is re-read from files while the service runs
//! (the message, the certificate, the messages directory).
//!
//! [`keep`] waits for whichever comes first — a batch from the file-watch stage, the settle
//! re-check the last attempt asked for, SIGHUP, the periodic safety re-read, shutdown — and
//! then runs one [`Reloadable::reload`] on a blocking thread under
//! [`FILE_READ_DEADLINE`]: neither the serving threads nor
//! this runtime ever wait on the file system. Only this loop reads the clock; the target
//! decides by the [`Now`] it is given.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::files::{Changes, FileWatch, Scope};
use super::live::Now;
use crate::limits::FILE_READ_DEADLINE;

/// Why a reload runs.
#[derive(Debug)]
pub(crate) enum Cause {
    /// Once, when the watch is in place: a save made between the first load and the watch
    /// being set up produced no event.
    Start,
    /// The file-watch stage saw these changes.
    Changed(Changes),
    /// The re-check the last attempt asked for ([`After::recheck_at`]) is due.
    Due,
    /// The periodic safety re-read, for events the OS dropped.
    Poll,
    /// SIGHUP: re-read even what looks unchanged.
    Forced,
}

/// What an attempt asks of the loop.
#[derive(Debug, Default)]
pub(crate) struct After {
    /// Call again at this moment (a file caught half-written, a deletion's grace period),
    /// whatever else happens.
    pub recheck_at: Option<Instant>,
    /// The watch should be set up anew (a directory that could not be listed is back).
    pub rewatch: bool,
}

/// An attempt overran [`FILE_READ_DEADLINE`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stuck {
    /// This attempt did not return in time; it is left running on its thread.
    TimedOut(Duration),
    /// The attempt that overran earlier has still not returned, so no new one was started.
    StillRunning(Duration),
}

/// Something the loop keeps in step with its files.
pub(crate) trait Reloadable: Send + Sync + 'static {
    /// What the files are, for log lines ("message", "certificate").
    fn what(&self) -> &'static str;

    /// The files or directory to watch.
    fn scope(&self) -> Scope;

    /// How long to wait after a first event for the rest of a burst (a renewal replacing
    /// two files); zero by default: react at once.
    fn debounce(&self) -> Duration {
        Duration::ZERO
    }

    /// One attempt: read, validate, swap in or keep the last good version. Blocking (it
    /// runs on a blocking thread); decides by `now`, never by the clock.
    fn reload(&self, cause: Cause, now: Now) -> After;

    /// Records that an attempt overran its deadline (called on the loop, without waiting
    /// for the attempt).
    fn stuck(&self, stuck: Stuck);
}

/// How often the safety re-read runs: every `recheck` (5 s if zero) with a watch in place,
/// every 500 ms when none could be set up.
fn poll_interval(watching: bool, recheck: Duration) -> Duration {
    match (watching, recheck.is_zero()) {
        (true, false) => recheck,
        (true, true) => Duration::from_secs(5),
        (false, _) => Duration::from_millis(500),
    }
}

/// Keeps `target` in step with its files until `shutdown` is cancelled; `force` (SIGHUP)
/// makes it re-read at once.
pub(crate) async fn keep<T: Reloadable>(
    target: Arc<T>,
    recheck: Duration,
    force: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let start = || FileWatch::start(target.what(), target.scope(), target.debounce());
    let mut files = start();
    let mut poll = poll_interval(files.is_some(), recheck);
    let mut next_poll = tokio::time::Instant::now() + poll;
    let mut due: Option<tokio::time::Instant> = None;
    let mut pending = None;
    let mut cause = Cause::Start;
    loop {
        let after = tokio::select! {
            _ = shutdown.cancelled() => return,
            after = off_thread(&target, cause, &mut pending) => after,
        };
        if let Some(after) = after {
            if let Some(at) = after.recheck_at {
                let at = tokio::time::Instant::from_std(at);
                due = Some(due.map_or(at, |d| d.min(at)));
            }
            if after.rewatch {
                files = start();
                poll = poll_interval(files.is_some(), recheck);
            }
        }
        if let Some(files) = &files {
            files.follow_symlinks();
        }
        let settle = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let changed = async {
            match files.as_mut() {
                Some(files) => files.next().await,
                None => std::future::pending().await,
            }
        };
        cause = tokio::select! {
            _ = shutdown.cancelled() => return,
            changes = changed => Cause::Changed(changes),
            _ = settle => { due = None; Cause::Due }
            _ = force.notified() => Cause::Forced,
            _ = tokio::time::sleep_until(next_poll) => {
                next_poll = tokio::time::Instant::now() + poll;
                Cause::Poll
            }
        };
    }
}

/// One attempt on a blocking thread, given up after the deadline (a hung network mount).
/// `pending` holds an attempt that overran; no new one starts until it has returned, so a
/// stuck mount costs one thread, not one per re-check.
async fn off_thread<T: Reloadable>(
    target: &Arc<T>,
    cause: Cause,
    pending: &mut Option<tokio::task::JoinHandle<After>>,
) -> Option<After> {
    if let Some(stuck) = pending {
        if !stuck.is_finished() {
            target.stuck(Stuck::StillRunning(FILE_READ_DEADLINE));
            return None;
        }
        *pending = None;
    }
    let now = Now::read();
    let mut task = {
        let target = target.clone();
        tokio::task::spawn_blocking(move || target.reload(cause, now))
    };
    match tokio::time::timeout(FILE_READ_DEADLINE, &mut task).await {
        Ok(Ok(after)) => Some(after),
        Ok(Err(err)) => {
            tracing::error!("the {} reload failed: {err}", target.what());
            None
        }
        Err(_) => {
            target.stuck(Stuck::TimedOut(FILE_READ_DEADLINE));
            *pending = Some(task);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every cause; asks for one re-check after the first event.
    struct Recorder {
        dir: std::path::PathBuf,
        causes: Mutex<Vec<String>>,
    }

    impl Reloadable for Recorder {
        fn what(&self) -> &'static str {
            "test"
        }
        fn scope(&self) -> Scope {
            Scope::Files(vec![self.dir.join("f")])
        }
        fn reload(&self, cause: Cause, now: Now) -> After {
            let mut causes = self.causes.lock().unwrap();
            let first_change = matches!(cause, Cause::Changed(_)) && !causes.iter().any(|c| c == "changed");
            causes.push(
                match cause {
                    Cause::Start => "start",
                    Cause::Changed(_) => "changed",
                    Cause::Due => "due",
                    Cause::Poll => "poll",
                    Cause::Forced => "forced",
                }
                .into(),
            );
            After {
                recheck_at: first_change.then(|| now.instant + Duration::from_millis(50)),
                rewatch: false,
            }
        }
        fn stuck(&self, _: Stuck) {}
    }

    async fn wait_for(recorder: &Recorder, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !recorder.causes.lock().unwrap().iter().any(|c| c == what) {
            assert!(
                Instant::now() < deadline,
                "no {what}: {:?}",
                recorder.causes.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn one_loop_serves_events_rechecks_sighup_and_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder {
            dir: dir.path().to_path_buf(),
            causes: Mutex::new(Vec::new()),
        });
        let (force, shutdown) = (Arc::new(Notify::new()), CancellationToken::new());
        let task = tokio::spawn(keep(
            recorder.clone(),
            Duration::from_secs(3600),
            force.clone(),
            shutdown.clone(),
        ));
        wait_for(&recorder, "start").await;
        std::fs::write(dir.path().join("f"), "x").unwrap();
        wait_for(&recorder, "changed").await;
        wait_for(&recorder, "due").await;
        force.notify_one();
        wait_for(&recorder, "forced").await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert!(!recorder.causes.lock().unwrap().iter().any(|c| c == "poll"));
    }
}
