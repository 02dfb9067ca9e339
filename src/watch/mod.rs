//! Keeping what is served in step with files on disk, in three stages:
//!
//! ```text
//! notify callback ──channel──▶ files (filter, merge, debounce) ──Changes──▶ reload (one loop)
//!                                                 SIGHUP, settle re-check, safety re-read ─┘
//!      reload ──spawn_blocking + deadline──▶ Reloadable::reload(cause, now) ──▶ live state
//! ```
//!
//! - `files`: the file-watch stage. The notify callback only forwards events; an async
//!   task owning the watcher filters them and hands over one batch at a time.
//! - `live`: the live state, [`LiveMessage`]: the snapshot being served and its status,
//!   swapped only after a whole file was read, parsed and validated.
//! - `reload`: the one loop every file-backed thing uses (the message, the certificate,
//!   the messages directory), through the `Reloadable` trait.
//!
//! The loop is generic; what to re-read and how lives with each target. The wiring (which
//! targets, which SIGHUP, which shutdown) is in [`crate::service`].

mod files;
mod live;
mod reload;

pub(crate) use files::{Changes, Scope, parent_dir};
pub use live::{LiveMessage, Now, Reload};
pub(crate) use live::{ReloadError, SETTLE_DELAY};
pub(crate) use reload::{After, Cause, Reloadable, Stuck, keep};

/// The single message file as a reload target: every cause but SIGHUP reads it as usual,
/// SIGHUP re-parses it even if unchanged.
impl Reloadable for LiveMessage {
    fn what(&self) -> &'static str {
        "message"
    }

    fn scope(&self) -> Scope {
        Scope::Files(vec![self.path().to_path_buf()])
    }

    fn reload(&self, cause: Cause, now: Now) -> After {
        let force = matches!(cause, Cause::Forced);
        if force {
            tracing::info!("SIGHUP: reloading the message file");
        }
        let result = LiveMessage::reload(self, force, now);
        // Possibly caught in the middle of an in-place save: look again shortly, even if the
        // writer's last event was merged with an earlier one. (A re-check only reads; an
        // empty file is applied only if it stayed empty all along.)
        After {
            recheck_at: result.needs_settling().then(|| now.instant + SETTLE_DELAY),
            rewatch: false,
        }
    }

    fn stuck(&self, stuck: Stuck) {
        let path = self.path().to_path_buf();
        self.publish_stuck(match stuck {
            Stuck::TimedOut(after) => ReloadError::TimedOut { path, after },
            Stuck::StillRunning(after) => ReloadError::StillReading { path, after },
        });
    }
}
