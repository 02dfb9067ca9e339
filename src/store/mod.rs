//! The error-report store: what the service, the console and the CLI keep and read back —
//! reports with their original archives, their groups, login-failure events, support's marks
//! on groups, console sessions, and the [`outbox`] of deliveries to Sentry and webhooks.
//!
//! [`Store`] lists the operations the service needs, not a query layer: each backend
//! (SQLite in [`sqlite`], PostgreSQL in [`postgres`]) decides how to do them.
//! Every method returns a boxed `Send` future so the trait works as `Arc<dyn Store>` from
//! any runtime; a write's future completes only once the write is durably committed.
//! Times are UTC, kept to the millisecond; functions that decide by time take it as a
//! parameter.

pub mod outbox;
pub mod postgres;
pub mod spool;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use outbox::{Claim, Delivery, Forwarding, OutboxItem, OutboxKind, OutboxStats};

/// A report's number in the store, as the CLI and the console show it.
pub type ReportId = i64;

/// What every store operation returns: a future that may be awaited on any runtime.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `--reports-db` names no backend this build knows, or its form is wrong.
    #[error("--reports-db {given:?}: {problem}")]
    Address {
        /// The address as given.
        given: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The database cannot be opened or created at this path.
    #[error("cannot open the report database {path}: {message}")]
    Open {
        /// The database file or address.
        path: String,
        /// The backend's complaint.
        message: String,
    },
    /// Applying migration number `version` failed; the database is left at the version before.
    #[error("report database migration {version} ({name}) failed: {message}")]
    Migration {
        /// The migration's number.
        version: u32,
        /// The migration's file name.
        name: &'static str,
        /// The backend's complaint.
        message: String,
    },
    /// The database was written by a newer v8help (it has migrations this build lacks).
    #[error("the report database is at schema version {found}, newer than this v8help knows ({known})")]
    TooNew {
        /// The highest migration recorded in the database.
        found: u32,
        /// The highest migration this build has.
        known: u32,
    },
    /// A query or commit failed (disk full, I/O error, corruption).
    #[error("report database {operation}: {message}")]
    Backend {
        /// What the store was doing, such as "store a report".
        operation: &'static str,
        /// The backend's complaint.
        message: String,
    },
    /// The database cannot be reached now (refused or dropped connection, server restarting):
    /// the write may succeed later, so the intake may keep it for a retry.
    #[error("report database unreachable ({operation}): {message}")]
    Unavailable {
        /// What the store was doing.
        operation: &'static str,
        /// Why it could not reach the database.
        message: String,
    },
    /// The store's writer has stopped (the service is shutting down or the writer failed).
    #[error("the report store is closed")]
    Closed,
    /// The stored archive of the report cannot be read as a ZIP (only when extracting a file).
    #[error("report {id}: the stored archive cannot be read: {message}")]
    Archive {
        /// The report.
        id: ReportId,
        /// Why the archive cannot be read.
        message: String,
    },
}

/// A report as the intake hands it to the store: the archive exactly as received and the
/// fields read from its `report.json`.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// When the service received it.
    pub received_at: DateTime<Utc>,
    /// The client's address as the listener saw it.
    pub client_addr: Option<String>,
    /// The group this report belongs to (see `reports::GroupKey`).
    pub group_key: String,
    /// The fields the console and the CLI show.
    pub fields: ReportFields,
    /// The whole `report.json`, parsed tolerantly and re-serialized (unknown fields kept);
    /// `Null` when the archive had none or it was not JSON.
    pub report_json: serde_json::Value,
    /// The files in the archive, in archive order.
    pub files: Vec<ArchiveFile>,
    /// The archive, byte-for-byte as the client sent it.
    pub archive: Bytes,
}

/// The fields of a report that are shown and grouped on; every one may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReportFields {
    /// `time` from report.json (RFC 3339 with the client's offset), as written.
    pub report_time: Option<String>,
    /// `id` from report.json.
    pub report_uuid: Option<String>,
    /// `sessionInfo.userName`.
    pub user_name: Option<String>,
    /// `clientInfo.systemInfo.clientID`: the machine, as far as the platform tells.
    pub client_id: Option<String>,
    /// `clientInfo.systemInfo.osVersion`.
    pub os_version: Option<String>,
    /// `clientInfo.appName` (`1CV8C`, `1CV8`, web client).
    pub app_name: Option<String>,
    /// `clientInfo.appVersion`: the platform version.
    pub app_version: Option<String>,
    /// `clientInfo.platformType`.
    pub platform_type: Option<String>,
    /// `configInfo.name`.
    pub config_name: Option<String>,
    /// `configInfo.version`.
    pub config_version: Option<String>,
    /// The error texts of `applicationErrorInfo.errors`, joined by a line break.
    pub error_text: Option<String>,
    /// `errorInfo.userDescription`: what the user wrote.
    pub user_description: Option<String>,
    /// `applicationErrorInfo.stackHash`.
    pub app_stack_hash: Option<String>,
    /// `systemErrorInfo.clientStackHash`.
    pub client_stack_hash: Option<String>,
    /// `systemErrorInfo.serverStackHash`.
    pub server_stack_hash: Option<String>,
    /// `screenshot.file`: the name of the screenshot inside the archive.
    pub screenshot: Option<String>,
}

/// One entry of a report's archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ArchiveFile {
    /// The entry's name inside the archive.
    pub name: String,
    /// Its size once decompressed, as counted when the archive was checked.
    pub size: u64,
}

/// A group of reports of one error, as the list of groups shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// The group's key (`app:…`, `sys:…/…`, `text:…`).
    pub key: String,
    /// The error text of the latest report.
    pub title: Option<String>,
    /// Reports stored in the group.
    pub count: u64,
    /// Distinct user names among them.
    pub users: u64,
    /// Distinct machines (client IDs) among them.
    pub machines: u64,
    /// The earliest report's arrival.
    pub first_seen: DateTime<Utc>,
    /// The latest report's arrival.
    pub last_seen: DateTime<Utc>,
    /// Configuration names and versions seen, most frequent first.
    pub configs: Vec<ConfigSeen>,
    /// Platform versions seen, most frequent first.
    pub platforms: Vec<String>,
    /// Support's mark on the group, if any.
    pub mark: Option<Mark>,
}

/// A configuration name and version seen in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigSeen {
    /// `configInfo.name`.
    pub name: String,
    /// `configInfo.version`.
    pub version: String,
}

/// Which groups [`Store::list_groups`] returns: those with a report at or after `since`,
/// latest first, at most `limit`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupQuery {
    /// Only groups seen at or after this time; `None`: all.
    pub since: Option<DateTime<Utc>>,
    /// At most this many; `None`: all.
    pub limit: Option<usize>,
}

/// One report as a group's list of reports shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSummary {
    /// The report's number.
    pub id: ReportId,
    /// When the service received it.
    pub received_at: DateTime<Utc>,
    /// The group it belongs to.
    pub group_key: String,
    /// Its fields.
    pub fields: ReportFields,
    /// The size of its archive in bytes.
    pub archive_size: u64,
}

/// One report with everything the store keeps about it except the archive bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportDetail {
    /// What the list shows.
    #[serde(flatten)]
    pub summary: ReportSummary,
    /// The client's address as the listener saw it.
    pub client_addr: Option<String>,
    /// The whole `report.json` (unknown fields kept).
    pub report_json: serde_json::Value,
    /// The files in the archive.
    pub files: Vec<ArchiveFile>,
}

/// Support's verdict on a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkState {
    /// A known error: getInfo answers with the note and spares the upload.
    Known,
    /// Fixed: reports are still taken (a recurrence is news).
    Fixed,
}

impl MarkState {
    /// The word stored and shown: `known` or `fixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            MarkState::Known => "known",
            MarkState::Fixed => "fixed",
        }
    }

    /// The state named by `word`, if any.
    pub fn parse(word: &str) -> Option<MarkState> {
        match word {
            "known" => Some(MarkState::Known),
            "fixed" => Some(MarkState::Fixed),
            _ => None,
        }
    }
}

/// A mark on a group: its state, support's note (shown to users for known groups), who set
/// it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mark {
    /// Known or fixed.
    pub state: MarkState,
    /// The note; for a known group it is the user message getInfo answers with.
    pub note: String,
    /// The console user who set it.
    pub by: String,
    /// When it was set.
    pub at: DateTime<Utc>,
}

/// What a thin client POSTed to the message address after a failed login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginFailure {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The client's address as the listener saw it.
    pub client_addr: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The body as received (format unknown, at most 64 KiB); JSON shows it as text, with
    /// bytes that are not UTF-8 replaced.
    #[serde(serialize_with = "lossy_text")]
    pub body: Vec<u8>,
    /// The base whose message document was asked for; `None` for the root document.
    pub base: Option<String>,
}

/// A login-failure count for one time bucket (an hour or a minute, by its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// The bucket's start.
    pub start: DateTime<Utc>,
    /// Events or reports in it.
    pub count: u64,
}

/// A console login session; the store keeps only a hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// A hash of the token the browser holds (the token itself is never stored).
    pub token_hash: String,
    /// The console user.
    pub user: String,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    /// Reports removed.
    pub reports: u64,
    /// Archive bytes removed.
    pub bytes: u64,
    /// Login-failure events removed.
    pub login_failures: u64,
}

/// Whether the store can be reached now, for `/healthz`, `/metrics` and the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Where it is (the file, or the URL without its password).
    pub address: String,
    /// The last operation reached the database (or none has failed yet).
    pub reachable: bool,
    /// Why the last operation could not reach it, while it cannot.
    pub last_error: Option<String>,
    /// Reports acknowledged but not yet in the database (kept in the spool).
    pub spooled: u64,
}

/// The operations the service, the console and the CLI need from a report store.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Stores one report; completes once it is durably committed (concurrent calls may share
    /// one commit).
    fn put_report(&self, report: NewReport) -> StoreFuture<'_, ReportId>;
    /// Stores login-failure events (from the bounded queue, in batches).
    fn put_login_failures(&self, events: Vec<LoginFailure>) -> StoreFuture<'_, ()>;

    /// Groups, latest seen first.
    fn list_groups(&self, query: GroupQuery) -> StoreFuture<'_, Vec<GroupSummary>>;
    /// One group by key.
    fn group(&self, key: &str) -> StoreFuture<'_, Option<GroupSummary>>;
    /// A group's reports, latest first, at most `limit`.
    fn group_reports(&self, key: &str, limit: usize) -> StoreFuture<'_, Vec<ReportSummary>>;
    /// Reports per hour in a group, for the hours from `since` on that have any.
    fn reports_per_hour(&self, key: &str, since: DateTime<Utc>) -> StoreFuture<'_, Vec<Bucket>>;

    /// One report with its parsed fields.
    fn report(&self, id: ReportId) -> StoreFuture<'_, Option<ReportDetail>>;
    /// A report's archive, byte-for-byte as received.
    fn archive(&self, id: ReportId) -> StoreFuture<'_, Option<Bytes>>;
    /// One file of a report's archive (screenshot, attachment) by its name in the archive:
    /// read from [`Store::archive`], the same for every backend.
    fn archive_file(&self, id: ReportId, name: &str) -> StoreFuture<'_, Option<Bytes>> {
        let name = name.to_string();
        Box::pin(async move {
            let Some(archive) = self.archive(id).await? else {
                return Ok(None);
            };
            let found = tokio::task::spawn_blocking(move || crate::reports::archive::extract(&archive, &name))
                .await
                .map_err(|_| StoreError::Closed)?;
            found.map_err(|e| StoreError::Archive {
                id,
                message: e.to_string(),
            })
        })
    }

    /// Login failures per minute, for the minutes from `since` on that have any.
    fn login_failures_per_minute(&self, since: DateTime<Utc>) -> StoreFuture<'_, Vec<Bucket>>;
    /// The latest login-failure events from `since` on, latest first, at most `limit`.
    fn login_failures(&self, since: DateTime<Utc>, limit: usize) -> StoreFuture<'_, Vec<LoginFailure>>;

    /// Sets (or replaces) the mark on a group.
    fn set_mark(&self, key: &str, mark: Mark) -> StoreFuture<'_, ()>;
    /// Removes the mark from a group (state "none").
    fn clear_mark(&self, key: &str) -> StoreFuture<'_, ()>;
    /// Every mark, to load the service's in-memory set at start.
    fn marks(&self) -> StoreFuture<'_, Vec<(String, Mark)>>;

    /// Creates a console session.
    fn create_session(&self, session: Session) -> StoreFuture<'_, ()>;
    /// The session with this token hash, if it exists and has not expired at `now`.
    fn session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreFuture<'_, Option<Session>>;
    /// Ends a session (logout).
    fn delete_session(&self, token_hash: &str) -> StoreFuture<'_, ()>;
    /// Removes sessions expired at `now`; returns how many.
    fn purge_sessions(&self, now: DateTime<Utc>) -> StoreFuture<'_, u64>;

    /// Removes reports and login failures received before `cutoff`.
    fn purge_older_than(&self, cutoff: DateTime<Utc>) -> StoreFuture<'_, Purged>;
    /// Removes the oldest reports until the archives take at most `max_bytes`.
    fn purge_to_size(&self, max_bytes: u64) -> StoreFuture<'_, Purged>;
    /// Bytes the archives take (the figure `--reports-max-bytes` limits).
    fn total_bytes(&self) -> StoreFuture<'_, u64>;

    /// Claims due outbox rows under a lease (see [`outbox`]): each row is held by one
    /// claimer at a time, across every process sharing the database.
    fn claim_outbox(&self, claim: Claim) -> StoreFuture<'_, Vec<OutboxItem>>;
    /// Records how delivering row `id` ended, if `token` still holds its lease; `false`
    /// when the lease was lost (another claimer has the row now).
    fn finish_outbox(&self, id: i64, token: &str, outcome: Delivery, now: DateTime<Utc>) -> StoreFuture<'_, bool>;
    /// Outbox rows by state.
    fn outbox_stats(&self) -> StoreFuture<'_, OutboxStats>;
    /// Rows whose last attempt failed (retrying or given up), latest first, at most `limit`.
    fn outbox_problems(&self, limit: usize) -> StoreFuture<'_, Vec<OutboxItem>>;

    /// Whether the store can be reached now, answered from memory (never waits on the
    /// database). The default suits an embedded store: always reachable.
    fn health(&self) -> StoreHealth {
        StoreHealth {
            backend: "embedded",
            address: String::new(),
            reachable: true,
            last_error: None,
            spooled: 0,
        }
    }
}

/// How to open a store besides its address.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// A file whose first line is the database password (`--reports-db-password-file`);
    /// PostgreSQL only.
    pub password_file: Option<std::path::PathBuf>,
    /// PostgreSQL only: a spool directory and its size limit, for reports taken while the
    /// database is unreachable (see [`spool`]); `None`: such reports are refused.
    pub spool: Option<(std::path::PathBuf, u64)>,
    /// The outbox rows each stored report brings (`--forward-…`); empty: none.
    pub forward: Forwarding,
}

/// Opens the store named by a `--reports-db` address: `sqlite:PATH` (or a bare path), or
/// `postgres://…` / `postgresql://…`.
pub fn open(address: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    open_with(address, &OpenOptions::default())
}

/// The file a `--reports-db` address names when it is a SQLite one (`sqlite:PATH` or a bare
/// path), so that start-up can check where it lies; `None` for PostgreSQL.
pub fn sqlite_path(address: &str) -> Option<&str> {
    match address.split_once(':') {
        Some(("sqlite", path)) => Some(path),
        Some(("postgres" | "postgresql", _)) => None,
        _ => Some(address),
    }
}

/// [`open`] with options (a password file).
pub fn open_with(address: &str, options: &OpenOptions) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let path = match sqlite_path(address) {
        Some(path) => path,
        None => {
            // With a spool, the service starts while the database is down (reports wait in
            // the spool; the connection and the migrations are tried again on each use).
            let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(postgres::PostgresStore::open_with(
                address,
                options.password_file.as_deref(),
                options.forward.clone(),
                options.spool.is_some(),
            )?);
            return match &options.spool {
                Some((dir, max)) => Ok(std::sync::Arc::new(spool::SpooledStore::open(store, dir, *max)?)),
                None => Ok(store),
            };
        }
    };
    if options.password_file.is_some() {
        return Err(StoreError::Address {
            given: address.into(),
            problem: "--reports-db-password-file is for a postgres:// address".into(),
        });
    }
    if path.is_empty() {
        return Err(StoreError::Address {
            given: address.into(),
            problem: "no database path after sqlite:".into(),
        });
    }
    Ok(std::sync::Arc::new(sqlite::SqliteStore::open_with(
        std::path::Path::new(path),
        options.forward.clone(),
    )?))
}

fn lossy_text<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}
