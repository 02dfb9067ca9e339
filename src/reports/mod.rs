//! Error reports: the 1C error-registration protocol (`getInfo`, `pushReport`) and the
//! login-failure events thin clients POST after a failed start, taken on the public
//! listeners and kept in the [`crate::store`].
//!
//! The flow: `intake` reads the request; getInfo is answered from memory by the live
//! `rules` and the in-memory set of groups support marked "known" (never the store);
//! pushReport's archive is checked ([`archive`]), its `report.json` read (`report`) and
//! the report stored, answered 200 only once committed. Login failures go through a bounded
//! queue to the store in batches; a full queue drops (and counts) the event, so the message
//! answer never waits. [`Reports`] holds all of it for the server, the console and the CLI.
//! Its background work also re-reads the marks from the store every `MARKS_REFRESH` (a
//! mark set on another replica reaches this one's getInfo), and runs the forwarding
//! delivery task ([`crate::forward`]).

pub mod archive;
pub mod config;
pub(crate) mod intake;
pub(crate) mod metrics;
mod report;
mod rules;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore, mpsc};

pub use config::{ReportsArgs, ReportsConfig};

use crate::background::Background;
use crate::store::{LoginFailure, Mark, MarkState, NewReport, ReportId, Store, StoreError};
use rules::{Answer, LiveRules, Request};

/// Login-failure events waiting for the store; more are dropped (and counted).
pub(crate) const EVENT_QUEUE: usize = 8192;
/// Memory the uploads being read, checked and stored may hold at once (at least one
/// largest archive): further uploads wait before their body is read.
pub(crate) const UPLOAD_BUDGET: u64 = 64 * 1024 * 1024;
/// How often retention and the size limit are applied, and the size gauge refreshed.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// How often the marks are read again from the store (a shared store: other replicas mark too).
pub(crate) const MARKS_REFRESH: Duration = Duration::from_secs(2);

/// What became of a pushReport, as counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stored durably and answered 200.
    Stored,
    /// Larger than `--reports-max-size` (413).
    TooLarge,
    /// Not a readable ZIP archive (400).
    BadArchive,
    /// Expanded past the limits or too many entries (400).
    ZipBomb,
    /// An entry's path leaves the archive (400).
    Traversal,
    /// Not a POST, the body could not be read or came too slowly.
    BadRequest,
    /// The store failed to commit it (503).
    StoreFailed,
}

const OUTCOMES: [(Outcome, &str); 7] = [
    (Outcome::Stored, "stored"),
    (Outcome::TooLarge, "too_large"),
    (Outcome::BadArchive, "bad_archive"),
    (Outcome::ZipBomb, "zip_bomb"),
    (Outcome::Traversal, "traversal"),
    (Outcome::BadRequest, "bad_request"),
    (Outcome::StoreFailed, "store_failed"),
];

/// How getInfo answered, as counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The report is wanted.
    Send,
    /// A rule said not to send it.
    Skip,
    /// The group is marked known: its note, no upload.
    Known,
}

const DECISIONS: [(Decision, &str); 3] = [
    (Decision::Send, "send"),
    (Decision::Skip, "skip"),
    (Decision::Known, "known"),
];

/// The counters of the report intake, read at `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ReportMetrics {
    outcomes: [AtomicU64; OUTCOMES.len()],
    decisions: [AtomicU64; DECISIONS.len()],
    login_failures: AtomicU64,
    login_failures_dropped: AtomicU64,
    login_failures_lost: AtomicU64,
    store_bytes: AtomicU64,
    /// Forwarding's figures (shared with the [`crate::forward::Forwarder`]).
    pub forward: Arc<crate::forward::ForwardMetrics>,
}

impl ReportMetrics {
    fn outcome(&self, o: Outcome) {
        let i = OUTCOMES.iter().position(|(x, _)| *x == o).unwrap_or(0);
        self.outcomes[i].fetch_add(1, Ordering::Relaxed);
    }

    fn decision(&self, d: Decision) {
        let i = DECISIONS.iter().position(|(x, _)| *x == d).unwrap_or(0);
        self.decisions[i].fetch_add(1, Ordering::Relaxed);
    }

    /// pushReport outcomes: (label, count).
    pub(crate) fn outcomes(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        OUTCOMES
            .iter()
            .zip(&self.outcomes)
            .map(|((_, l), n)| (*l, n.load(Ordering::Relaxed)))
    }

    /// getInfo decisions: (label, count).
    pub(crate) fn decisions(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DECISIONS
            .iter()
            .zip(&self.decisions)
            .map(|((_, l), n)| (*l, n.load(Ordering::Relaxed)))
    }

    /// Login-failure events taken into the queue.
    pub(crate) fn login_failures(&self) -> u64 {
        self.login_failures.load(Ordering::Relaxed)
    }

    /// Login-failure events dropped because the queue was full.
    pub(crate) fn login_failures_dropped(&self) -> u64 {
        self.login_failures_dropped.load(Ordering::Relaxed)
    }

    /// Login-failure events the store failed to write.
    pub(crate) fn login_failures_lost(&self) -> u64 {
        self.login_failures_lost.load(Ordering::Relaxed)
    }

    /// Archive bytes in the store, as last seen.
    pub(crate) fn store_bytes(&self) -> u64 {
        self.store_bytes.load(Ordering::Relaxed)
    }
}

/// Support's marks as getInfo reads them: every mark, and the rendered answer of each
/// known group.
#[derive(Debug, Default)]
pub struct Marks {
    /// Every mark by group key.
    pub all: HashMap<String, Mark>,
    known: HashMap<String, Answer>,
}

impl Marks {
    fn from(all: HashMap<String, Mark>) -> Marks {
        let known = all
            .iter()
            .filter(|(_, m)| m.state == MarkState::Known)
            .map(|(k, m)| (k.clone(), Answer::known(&m.note)))
            .collect();
        Marks { all, known }
    }
}

/// Why a pushReport was refused.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    /// The archive failed its checks.
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    /// The store could not commit it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The error-report service: the store, the live rules, the marks, the upload budget, the
/// login-failure queue and the counters.
#[derive(Debug)]
pub struct Reports {
    /// Where reports are kept.
    pub store: Arc<dyn Store>,
    /// The getInfo rules, kept in step with their file.
    pub rules: Arc<LiveRules>,
    /// The resolved settings.
    pub config: ReportsConfig,
    /// Counters for `/metrics`.
    pub(crate) metrics: ReportMetrics,
    marks: ArcSwap<Marks>,
    /// Serializes mark changes so that memory ends as the store does.
    marking: tokio::sync::Mutex<()>,
    budget: Semaphore,
    budget_kib: u32,
    events: mpsc::Sender<LoginFailure>,
    queue: Mutex<Option<mpsc::Receiver<LoginFailure>>>,
    /// Delivers the outbox to Sentry and webhooks, when any is configured.
    pub(crate) forwarder: Option<Arc<crate::forward::Forwarder>>,
    /// Where archives are checked: low-priority threads, so that a flood of uploads slows
    /// the uploads before it slows the message and getInfo.
    checks: Background,
}

impl Reports {
    /// Builds the service on an open store: loads the marks and the rules.
    /// A store that cannot be reached yet (PostgreSQL down at start, reports spooled) is no
    /// error: the marks come with the first refresh that reaches it.
    pub async fn new(store: Arc<dyn Store>, config: ReportsConfig) -> Result<Arc<Reports>, StoreError> {
        let marks = match store.marks().await {
            Ok(marks) => marks.into_iter().collect(),
            Err(err @ StoreError::Unavailable { .. }) => {
                tracing::warn!("marks not loaded yet: {err}");
                HashMap::new()
            }
            Err(err) => return Err(err),
        };
        let bytes = match store.total_bytes().await {
            Ok(bytes) => bytes,
            Err(StoreError::Unavailable { .. }) => 0,
            Err(err) => return Err(err),
        };
        let metrics = ReportMetrics::default();
        let forwarder = if config.forward.is_empty() {
            None
        } else {
            let f = crate::forward::Forwarder::new(config.forward.clone(), metrics.forward.clone()).map_err(|e| {
                StoreError::Open {
                    path: "forwarding".into(),
                    message: e.to_string(),
                }
            })?;
            Some(Arc::new(f))
        };
        let (events, queue) = mpsc::channel(EVENT_QUEUE);
        let budget_kib = (UPLOAD_BUDGET.max(config.max_size) / 1024).min(u64::from(u32::MAX >> 3)) as u32;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let checks = Background::start("v8help-report-check", threads).map_err(|e| StoreError::Open {
            path: "report checks".into(),
            message: format!("cannot start the archive-check threads: {e}"),
        })?;
        let reports = Reports {
            rules: LiveRules::load(config.rules.clone()),
            store,
            config,
            metrics,
            forwarder,
            marks: ArcSwap::from_pointee(Marks::from(marks)),
            marking: tokio::sync::Mutex::new(()),
            budget: Semaphore::new(budget_kib as usize),
            budget_kib,
            events,
            queue: Mutex::new(Some(queue)),
            checks,
        };
        reports.metrics.store_bytes.store(bytes, Ordering::Relaxed);
        Ok(Arc::new(reports))
    }

    /// Opens the store named in `config` and builds the service, from synchronous code
    /// (start-up, the CLI): the store is read on a runtime of its own.
    pub fn open(config: ReportsConfig) -> Result<Arc<Reports>, StoreError> {
        let options = crate::store::OpenOptions {
            password_file: config.db_password_file.clone(),
            spool: Some((config.spool.clone(), config.spool_max)),
            forward: config.forward.forwarding(),
        };
        let store = crate::store::open_with(&config.db, &options)?;
        block_on(Reports::new(store, config))?
    }

    /// The marks as getInfo sees them now.
    pub fn marks(&self) -> arc_swap::Guard<Arc<Marks>> {
        self.marks.load()
    }

    /// Sets (`Some`) or clears (`None`) support's mark on a group: written to the store
    /// first, then to memory, so getInfo answers by it from the next request on.
    pub async fn mark(&self, key: &str, mark: Option<Mark>) -> Result<(), StoreError> {
        let _one_at_a_time = self.marking.lock().await;
        match &mark {
            Some(m) => self.store.set_mark(key, m.clone()).await?,
            None => self.store.clear_mark(key).await?,
        }
        let mut all = self.marks.load().all.clone();
        match mark {
            Some(m) => all.insert(key.to_string(), m),
            None => all.remove(key),
        };
        self.marks.store(Arc::new(Marks::from(all)));
        Ok(())
    }

    /// The getInfo answer for a request body: a known group's note, else the rules'.
    pub(crate) fn get_info(&self, body: &[u8]) -> Bytes {
        let request = Request::parse(body).unwrap_or_default();
        let key = report::group_key(
            request.app_stack_hash.as_deref(),
            request.server_stack_hash.as_deref(),
            request.client_stack_hash.as_deref(),
            None,
        );
        let lang = request.language.as_deref();
        if let Some(known) = self.marks.load().known.get(&key) {
            self.metrics.decision(Decision::Known);
            return known.body(lang);
        }
        let rules = self.rules.rules();
        let answer = rules.decide(&request);
        self.metrics
            .decision(if answer.send { Decision::Send } else { Decision::Skip });
        answer.body(lang)
    }

    /// Checks an archive and stores it; completes once the report is durably committed.
    pub async fn take(
        &self,
        archive: Bytes,
        client_addr: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ReportId, TakeError> {
        let checking = archive.clone();
        let (checked, parsed) = self
            .checks
            .run(move || {
                archive::check(&checking).map(|c| {
                    let parsed = report::parse(c.report_json.as_deref());
                    (c.files, parsed)
                })
            })
            .await
            .map_err(|_| StoreError::Closed)??;
        let size = archive.len() as u64;
        let id = self
            .store
            .put_report(NewReport {
                received_at: now,
                client_addr,
                group_key: report::group_of(&parsed.fields),
                fields: parsed.fields,
                report_json: parsed.json,
                files: checked,
                archive,
            })
            .await?;
        self.metrics.store_bytes.fetch_add(size, Ordering::Relaxed);
        if let Some(f) = &self.forwarder {
            f.report_stored();
        }
        Ok(id)
    }

    /// Queues a login-failure event; never waits (a full queue drops and counts it).
    pub(crate) fn login_failure(&self, event: LoginFailure) {
        match self.events.try_send(event) {
            Ok(()) => self.metrics.login_failures.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.metrics.login_failures_dropped.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Takes budget for an upload of up to `bytes` (waiting while other uploads hold it).
    async fn reserve(&self, bytes: u64) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let kib = (bytes.div_ceil(1024).max(1)).min(u64::from(self.budget_kib)) as u32;
        self.budget.acquire_many(kib).await.ok()
    }

    /// The background work until `shutdown`: the rules watcher, the login-failure writer and
    /// retention. `reload` (SIGHUP) re-reads the rules.
    pub async fn run(self: Arc<Self>, recheck: Duration, reload: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.changed().await;
        };
        let watcher = tokio::spawn(self.rules.clone().watch(recheck, reload, stopped(stop_rx.clone())));
        let writer = self
            .queue
            .lock()
            .ok()
            .and_then(|mut q| q.take())
            .map(|queue| tokio::spawn(self.clone().write_events(queue, stopped(stop_rx.clone()))));
        let maintenance = tokio::spawn(self.clone().maintain(stopped(stop_rx.clone())));
        let marks = tokio::spawn(self.clone().refresh_marks(stopped(stop_rx.clone())));
        let forwarding = self
            .forwarder
            .clone()
            .map(|f| tokio::spawn(f.run(self.store.clone(), stopped(stop_rx))));
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = watcher.await;
        let _ = marks.await;
        if let Some(f) = forwarding {
            let _ = f.await;
        }
        if let Some(w) = writer {
            let _ = w.await;
        }
        let _ = maintenance.await;
    }

    async fn write_events(self: Arc<Self>, mut queue: mpsc::Receiver<LoginFailure>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut batch = Vec::with_capacity(512);
        loop {
            let stopping = tokio::select! {
                n = queue.recv_many(&mut batch, 512) => n == 0,
                _ = &mut stop => true,
            };
            if stopping {
                while let Ok(e) = queue.try_recv() {
                    batch.push(e);
                }
            }
            if !batch.is_empty() {
                let n = batch.len() as u64;
                if let Err(err) = self.store.put_login_failures(std::mem::take(&mut batch)).await {
                    tracing::error!("{n} login-failure events not stored: {err}");
                    self.metrics.login_failures_lost.fetch_add(n, Ordering::Relaxed);
                }
            }
            if stopping {
                return;
            }
        }
    }

    /// Re-reads the marks every [`MARKS_REFRESH`] until `stop`.
    async fn refresh_marks(self: Arc<Self>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(MARKS_REFRESH) => {}
            }
            if let Err(err) = self.reload_marks().await {
                tracing::debug!("marks not refreshed: {err}");
            }
        }
    }

    /// Reads the marks from the store and answers getInfo by them from now on (a mark set or
    /// cleared by another replica, or loaded late because the store was down at start).
    pub async fn reload_marks(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.marking.lock().await;
        let all: HashMap<String, Mark> = self.store.marks().await?.into_iter().collect();
        if all != self.marks.load().all {
            self.marks.store(Arc::new(Marks::from(all)));
        }
        Ok(())
    }

    async fn maintain(self: Arc<Self>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            self.apply_limits(Utc::now()).await;
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(MAINTENANCE_EVERY) => {}
            }
        }
    }

    /// Applies `--reports-retention` and `--reports-max-bytes` as of `now`, purges expired
    /// console sessions, and refreshes the size gauge.
    pub(crate) async fn apply_limits(&self, now: DateTime<Utc>) {
        let retention = chrono::Duration::from_std(self.config.retention).unwrap_or(chrono::Duration::days(90));
        match self.store.purge_older_than(now - retention).await {
            Ok(p) if p.reports + p.login_failures > 0 => tracing::info!(
                reports = p.reports,
                bytes = p.bytes,
                login_failures = p.login_failures,
                "retention: removed what is older than {:?}",
                self.config.retention
            ),
            Ok(_) => {}
            Err(err) => tracing::error!("retention purge failed: {err}"),
        }
        if let Some(max) = self.config.max_bytes {
            match self.store.purge_to_size(max).await {
                Ok(p) if p.reports > 0 => tracing::info!(
                    reports = p.reports,
                    bytes = p.bytes,
                    "size limit {max} bytes: removed the oldest reports"
                ),
                Ok(_) => {}
                Err(err) => tracing::error!("size-limit purge failed: {err}"),
            }
        }
        if let Err(err) = self.store.purge_sessions(now).await {
            tracing::error!("purging expired console sessions failed: {err}");
        }
        if let Ok(bytes) = self.store.total_bytes().await {
            self.metrics.store_bytes.store(bytes, Ordering::Relaxed);
        }
    }
}

/// Runs a future to completion on a runtime of its own, in a thread of its own: for
/// synchronous callers (start-up, the CLI), whether or not they are inside a runtime.
pub(crate) fn block_on<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Result<T, StoreError> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(future))
    })
    .join()
    .map_err(|_| StoreError::Closed)?
    .map_err(|e| StoreError::Open {
        path: "runtime".into(),
        message: e.to_string(),
    })
}
