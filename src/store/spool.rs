//! The spool: a [`Store`] in front of a shared database that keeps taking reports while the
//! database cannot be reached.
//!
//! A report whose write fails with [`StoreError::Unavailable`] is written to a file in the
//! spool directory (a temporary file, fsync'd, renamed to its sequence number, then the
//! directory fsync'd) and only then acknowledged. From then on, new reports go to the spool
//! too, behind it, so that the database receives them in the order they came. A replay
//! thread puts the spooled reports into the database oldest first, removing each file only
//! after its commit, and hands writing back to the database when the spool is empty. The
//! spool is bounded (`--reports-spool-max`): past it a report is refused (503), never
//! dropped after being acknowledged. A report acknowledged from the spool has number 0 until
//! it is replayed. A crash between a replayed commit and the file's removal replays that
//! report once more on the next start (stored twice rather than lost).
//! Everything other than `put_report` goes straight to the database.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};

use crate::platform::sync_dir;

use super::{
    ArchiveFile, Bucket, Claim, Delivery, GroupQuery, GroupSummary, LoginFailure, Mark, NewReport, OutboxItem,
    OutboxStats, Purged, ReportDetail, ReportFields, ReportId, ReportSummary, Session, Store, StoreError, StoreFuture,
    StoreHealth,
};

/// How long the replay waits before trying an unreachable database again.
const RETRY: Duration = Duration::from_secs(1);

/// A store that spools reports while the database behind it is unreachable (see the module
/// documentation).
#[derive(Debug)]
pub struct SpooledStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    inner: Arc<dyn Store>,
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Spooled files by sequence number, with their sizes.
    files: BTreeMap<u64, u64>,
    next: u64,
    bytes: u64,
}

/// A spooled report's description (the archive follows it in the file).
#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    received_at_ms: i64,
    client_addr: Option<String>,
    group_key: String,
    fields: ReportFields,
    report_json: serde_json::Value,
    files: Vec<ArchiveFile>,
}

fn io_err<'a>(operation: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> StoreError + 'a {
    move |e| StoreError::Backend {
        operation,
        message: format!("{}: {e}", path.display()),
    }
}

impl SpooledStore {
    /// Puts a spool in `dir` (created if needed) in front of `inner`; reports already there
    /// from an earlier run are replayed first.
    pub fn open(inner: Arc<dyn Store>, dir: &Path, max_bytes: u64) -> Result<SpooledStore, StoreError> {
        let open_err = |e: std::io::Error| StoreError::Open {
            path: dir.display().to_string(),
            message: format!("cannot use the spool directory: {e}"),
        };
        std::fs::create_dir_all(dir).map_err(open_err)?;
        let mut state = State::default();
        for entry in std::fs::read_dir(dir).map_err(open_err)? {
            let entry = entry.map_err(open_err)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                // Never acknowledged: its write did not finish.
                let _ = std::fs::remove_file(entry.path());
            } else if let Some(seq) = name.strip_suffix(".report").and_then(|n| n.parse::<u64>().ok()) {
                let size = entry.metadata().map_err(open_err)?.len();
                state.files.insert(seq, size);
                state.bytes += size;
            }
        }
        state.next = state.files.keys().next_back().map_or(1, |n| n + 1);
        let shared = Arc::new(Shared {
            inner,
            dir: dir.to_path_buf(),
            max_bytes,
            state: Mutex::new(state),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("v8help-spool".into())
            .spawn(move || replay(weak))
            .map_err(open_err)?;
        Ok(SpooledStore { shared })
    }

    /// Reports waiting in the spool.
    pub fn spooled(&self) -> u64 {
        self.shared.state.lock().map_or(0, |s| s.files.len() as u64)
    }
}

impl Shared {
    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.report"))
    }

    /// Writes a report to the spool durably; fails when the spool is full.
    fn spool(&self, report: &NewReport) -> Result<(), StoreError> {
        let meta = Meta {
            received_at_ms: report.received_at.timestamp_millis(),
            client_addr: report.client_addr.clone(),
            group_key: report.group_key.clone(),
            fields: report.fields.clone(),
            report_json: report.report_json.clone(),
            files: report.files.clone(),
        };
        let meta = serde_json::to_vec(&meta).map_err(|e| StoreError::Backend {
            operation: "spool a report",
            message: e.to_string(),
        })?;
        let size = (8 + meta.len() + report.archive.len()) as u64;
        // The sequence number is taken under the lock, so files are named in arrival order.
        let seq = {
            let mut state = self.state.lock().map_err(|_| StoreError::Closed)?;
            if state.bytes + size > self.max_bytes {
                return Err(StoreError::Unavailable {
                    operation: "spool a report",
                    message: format!(
                        "the database is unreachable and the spool {} is full ({} bytes)",
                        self.dir.display(),
                        state.bytes
                    ),
                });
            }
            let seq = state.next;
            state.next += 1;
            state.bytes += size;
            seq
        };
        let written = self.write_file(seq, &meta, &report.archive);
        let mut state = self.state.lock().map_err(|_| StoreError::Closed)?;
        match written {
            Ok(()) => {
                state.files.insert(seq, size);
                self.wake.notify_one();
                Ok(())
            }
            Err(e) => {
                state.bytes -= size;
                Err(e)
            }
        }
    }

    fn write_file(&self, seq: u64, meta: &[u8], archive: &[u8]) -> Result<(), StoreError> {
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let err = io_err("spool a report", &tmp);
        let mut f = File::create(&tmp).map_err(&err)?;
        f.write_all(&(meta.len() as u64).to_le_bytes()).map_err(&err)?;
        f.write_all(meta).map_err(&err)?;
        f.write_all(archive).map_err(&err)?;
        f.sync_all().map_err(&err)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(&err)?;
        sync_dir(&self.dir).map_err(io_err("spool a report", &self.dir))
    }

    /// Reads spooled report `seq` back.
    fn read(&self, seq: u64) -> Result<NewReport, StoreError> {
        let path = self.path(seq);
        let bytes = std::fs::read(&path).map_err(io_err("read a spooled report", &path))?;
        let bad = |message: String| StoreError::Backend {
            operation: "read a spooled report",
            message: format!("{}: {message}", path.display()),
        };
        let len = bytes
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| bad("shorter than its header".into()))? as usize;
        let meta_end = 8usize
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad("truncated".into()))?;
        let meta: Meta = serde_json::from_slice(&bytes[8..meta_end]).map_err(|e| bad(e.to_string()))?;
        let received_at: DateTime<Utc> = Utc
            .timestamp_millis_opt(meta.received_at_ms)
            .single()
            .ok_or_else(|| bad("bad time".into()))?;
        Ok(NewReport {
            received_at,
            client_addr: meta.client_addr,
            group_key: meta.group_key,
            fields: meta.fields,
            report_json: meta.report_json,
            files: meta.files,
            archive: Bytes::from(bytes).slice(meta_end..),
        })
    }
}

/// The replay thread: puts spooled reports into the database oldest first; stops when the
/// store is gone.
fn replay(shared: Weak<Shared>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        tracing::error!("the report spool cannot start its replay");
        return;
    };
    loop {
        let Some(s) = shared.upgrade() else { return };
        let next = {
            let Ok(state) = s.state.lock() else { return };
            let state = match state.files.is_empty() {
                true => match s.wake.wait_timeout(state, RETRY) {
                    Ok((st, _)) => st,
                    Err(_) => return,
                },
                false => state,
            };
            state.files.iter().next().map(|(&seq, &size)| (seq, size))
        };
        let Some((seq, size)) = next else { continue };
        let outcome = s.read(seq).and_then(|report| rt.block_on(s.inner.put_report(report)));
        match outcome {
            Ok(id) => {
                let path = s.path(seq);
                // No directory fsync here: a removal lost in a crash only replays the report again.
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::error!("spooled report {} stored as {id} but not removed: {e}", path.display());
                }
                if let Ok(mut state) = s.state.lock() {
                    state.files.remove(&seq);
                    state.bytes = state.bytes.saturating_sub(size);
                    if state.files.is_empty() {
                        tracing::info!("report spool replayed; reports go to the database again");
                    }
                }
            }
            Err(StoreError::Unavailable { .. }) => {
                drop(s);
                std::thread::sleep(RETRY);
            }
            Err(e) => {
                // Not the database's absence: set the file aside (kept, not lost) and go on.
                let path = s.path(seq);
                tracing::error!(
                    "spooled report {} cannot be stored: {e}; kept as .failed",
                    path.display()
                );
                let _ = std::fs::rename(&path, path.with_extension("failed"));
                if let Ok(mut state) = s.state.lock() {
                    state.files.remove(&seq);
                    state.bytes = state.bytes.saturating_sub(size);
                }
            }
        }
    }
}

impl Store for SpooledStore {
    fn put_report(&self, report: NewReport) -> StoreFuture<'_, ReportId> {
        Box::pin(async move {
            let spooling = self.spooled() > 0;
            if !spooling {
                match self.shared.inner.put_report(report.clone()).await {
                    Err(StoreError::Unavailable { operation, message }) => {
                        tracing::warn!("report database unreachable ({operation}: {message}); spooling reports");
                    }
                    other => return other,
                }
            }
            let shared = self.shared.clone();
            tokio::task::spawn_blocking(move || shared.spool(&report))
                .await
                .map_err(|_| StoreError::Closed)??;
            Ok(0)
        })
    }

    fn put_login_failures(&self, events: Vec<LoginFailure>) -> StoreFuture<'_, ()> {
        self.shared.inner.put_login_failures(events)
    }
    fn list_groups(&self, query: GroupQuery) -> StoreFuture<'_, Vec<GroupSummary>> {
        self.shared.inner.list_groups(query)
    }
    fn group(&self, key: &str) -> StoreFuture<'_, Option<GroupSummary>> {
        self.shared.inner.group(key)
    }
    fn group_reports(&self, key: &str, limit: usize) -> StoreFuture<'_, Vec<ReportSummary>> {
        self.shared.inner.group_reports(key, limit)
    }
    fn reports_per_hour(&self, key: &str, since: DateTime<Utc>) -> StoreFuture<'_, Vec<Bucket>> {
        self.shared.inner.reports_per_hour(key, since)
    }
    fn report(&self, id: ReportId) -> StoreFuture<'_, Option<ReportDetail>> {
        self.shared.inner.report(id)
    }
    fn archive(&self, id: ReportId) -> StoreFuture<'_, Option<Bytes>> {
        self.shared.inner.archive(id)
    }
    fn archive_file(&self, id: ReportId, name: &str) -> StoreFuture<'_, Option<Bytes>> {
        self.shared.inner.archive_file(id, name)
    }
    fn login_failures_per_minute(&self, since: DateTime<Utc>) -> StoreFuture<'_, Vec<Bucket>> {
        self.shared.inner.login_failures_per_minute(since)
    }
    fn login_failures(&self, since: DateTime<Utc>, limit: usize) -> StoreFuture<'_, Vec<LoginFailure>> {
        self.shared.inner.login_failures(since, limit)
    }
    fn set_mark(&self, key: &str, mark: Mark) -> StoreFuture<'_, ()> {
        self.shared.inner.set_mark(key, mark)
    }
    fn clear_mark(&self, key: &str) -> StoreFuture<'_, ()> {
        self.shared.inner.clear_mark(key)
    }
    fn marks(&self) -> StoreFuture<'_, Vec<(String, Mark)>> {
        self.shared.inner.marks()
    }
    fn create_session(&self, session: Session) -> StoreFuture<'_, ()> {
        self.shared.inner.create_session(session)
    }
    fn session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreFuture<'_, Option<Session>> {
        self.shared.inner.session(token_hash, now)
    }
    fn delete_session(&self, token_hash: &str) -> StoreFuture<'_, ()> {
        self.shared.inner.delete_session(token_hash)
    }
    fn purge_sessions(&self, now: DateTime<Utc>) -> StoreFuture<'_, u64> {
        self.shared.inner.purge_sessions(now)
    }
    fn purge_older_than(&self, cutoff: DateTime<Utc>) -> StoreFuture<'_, Purged> {
        self.shared.inner.purge_older_than(cutoff)
    }
    fn purge_to_size(&self, max_bytes: u64) -> StoreFuture<'_, Purged> {
        self.shared.inner.purge_to_size(max_bytes)
    }
    fn total_bytes(&self) -> StoreFuture<'_, u64> {
        self.shared.inner.total_bytes()
    }
    fn claim_outbox(&self, claim: Claim) -> StoreFuture<'_, Vec<OutboxItem>> {
        self.shared.inner.claim_outbox(claim)
    }
    fn finish_outbox(&self, id: i64, token: &str, outcome: Delivery, now: DateTime<Utc>) -> StoreFuture<'_, bool> {
        self.shared.inner.finish_outbox(id, token, outcome, now)
    }
    fn outbox_stats(&self) -> StoreFuture<'_, OutboxStats> {
        self.shared.inner.outbox_stats()
    }
    fn outbox_problems(&self, limit: usize) -> StoreFuture<'_, Vec<OutboxItem>> {
        self.shared.inner.outbox_problems(limit)
    }

    fn health(&self) -> StoreHealth {
        let spooled = self.spooled();
        let mut health = self.shared.inner.health();
        health.spooled = spooled;
        health
    }
}
