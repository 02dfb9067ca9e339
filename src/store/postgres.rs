//! The PostgreSQL [`Store`]: the store several replicas share (`--reports-db postgres://…`).
//!
//! Every operation takes a connection from a bounded pool ([`POOL_SIZE`]) and runs as one
//! statement or one transaction, so that what a replica commits is what every other replica
//! reads next. A report's future completes only after its transaction committed (PostgreSQL
//! itself merges the WAL flushes of concurrent commits). The connections and their tasks live
//! on a small runtime owned by the store, so the store works the same from the server's
//! runtimes, the CLI's or a test's, and a dropped caller runtime never takes a connection
//! with it. The schema comes from the numbered files in `migrations/postgres/`, applied in
//! order inside one transaction that first takes a transaction-level advisory lock: two
//! replicas starting at the same moment apply them once.
//!
//! Errors that mean "the database cannot be reached now" (refused or dropped connections,
//! a server shutting down or starting) are [`StoreError::Unavailable`], so that the intake
//! can spool reports instead of refusing them. Opened for a service with a spool, the store
//! also starts while the database is down: the migrations are then applied by the first
//! operation that reaches it. The outbox queries are in `outbox_postgres.rs`.
//!
//! (Over 600 lines: every query is kept next to the row mapping it needs and the schema it
//! reads, reads and writes alike, since there is no writer thread to split off as SQLite's
//! `sqlite_writer.rs` is; about a quarter is error classification and the owned runtime.)

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

#[path = "outbox_postgres.rs"]
mod outbox;

use super::{
    ArchiveFile, Bucket, Claim, ConfigSeen, Delivery, Forwarding, GroupQuery, GroupSummary, LoginFailure, Mark,
    MarkState, NewReport, OutboxItem, OutboxStats, Purged, ReportDetail, ReportFields, ReportId, ReportSummary,
    Session, Store, StoreError, StoreFuture, StoreHealth,
};

/// The migrations, in order: (number, file name, SQL).
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "0001_reports.sql",
        include_str!("migrations/postgres/0001_reports.sql"),
    ),
    (
        2,
        "0002_outbox.sql",
        include_str!("migrations/postgres/0002_outbox.sql"),
    ),
];

/// Most connections one process holds to the database: replicas × this must stay under the
/// server's `max_connections`.
pub const POOL_SIZE: usize = 16;
/// How long an operation waits for a connection (from the pool or a new one) before the
/// database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The advisory lock key migrations run under (the bytes of "v8help-m").
const MIGRATION_LOCK: i64 = 0x7638_6865_6c70_2d6d;

/// A PostgreSQL report store (see the module documentation).
#[derive(Debug)]
pub struct PostgresStore {
    pool: Pool,
    runtime: Arc<OwnedRuntime>,
    /// Where the store connects, without the password (for messages).
    address: String,
    /// The last operation failed for want of the database; cleared by the next success.
    unreachable: Arc<AtomicBool>,
    /// The last error that made it unreachable.
    last_error: Arc<Mutex<Option<String>>>,
    /// The outbox rows each report brings.
    forward: Arc<Forwarding>,
    /// Set once the migrations are known applied (at open, or at the first operation that
    /// reaches the database when it was down at open).
    migrated: Arc<tokio::sync::OnceCell<()>>,
}

/// The store's own runtime; shut down in the background when the store goes, which is
/// allowed on any thread (dropping a runtime inside another one is not).
#[derive(Debug)]
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl OwnedRuntime {
    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(|r| r.handle())
    }
}

/// A database error, sorted into "unreachable" and everything else.
enum PgError {
    Db(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    /// A failure already classified (a migration that the database refused).
    Store(StoreError),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Db(e)
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        PgError::Pool(e)
    }
}

/// Whether a database error says the server cannot be reached now (rather than that the
/// statement is wrong): I/O on the connection, a closed connection, a failed or timed-out
/// connect (tokio-postgres tells these apart only by their text), a connection exception
/// (class 08), or the server shutting down, starting or out of connections.
fn unreachable_error(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => {
            let text = e.to_string();
            e.is_closed()
                || [
                    "error communicating with the server",
                    "error connecting to server",
                    "timeout waiting for server",
                ]
                .iter()
                .any(|kind| text.starts_with(kind))
        }
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code)
        }
    }
}

fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl PgError {
    fn into_store(self, operation: &'static str) -> StoreError {
        use deadpool_postgres::PoolError as P;
        match self {
            PgError::Db(e) if unreachable_error(&e) => StoreError::Unavailable {
                operation,
                message: message(&e),
            },
            PgError::Db(e) => StoreError::Backend {
                operation,
                message: message(&e),
            },
            PgError::Pool(P::Backend(e)) => PgError::Db(e).into_store(operation),
            PgError::Pool(P::Timeout(_)) => StoreError::Unavailable {
                operation,
                message: "no database connection within 5 s".into(),
            },
            PgError::Pool(P::Closed) => StoreError::Closed,
            PgError::Store(e) => e,
            PgError::Pool(other) => StoreError::Backend {
                operation,
                message: other.to_string(),
            },
        }
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

/// The connection settings named by `address`, with the password from `password_file` when
/// one is given (its first line; a Kubernetes Secret mounted as a file).
fn connection_config(address: &str, password_file: Option<&Path>) -> Result<tokio_postgres::Config, StoreError> {
    let mut config = tokio_postgres::Config::from_str(address).map_err(|e| StoreError::Address {
        given: redact(address),
        problem: e.to_string(),
    })?;
    if let Some(path) = password_file {
        let text = std::fs::read_to_string(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            message: format!("cannot read the password file: {e}"),
        })?;
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                message: "the password file is empty".into(),
            });
        }
        config.password(password);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("v8help");
    }
    Ok(config)
}

/// `address` with any password replaced by `***`, for messages and logs.
pub fn redact(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => address.to_string(),
        },
        None => address.to_string(),
    }
}

impl PostgresStore {
    /// Connects to the database at `address` (a `postgres://` URL), applies pending
    /// migrations under the advisory lock and keeps a pool of at most [`POOL_SIZE`]
    /// connections. Blocks the calling thread until the migrations are done.
    pub fn open(address: &str, password_file: Option<&Path>) -> Result<PostgresStore, StoreError> {
        PostgresStore::open_with(address, password_file, Forwarding::default(), false)
    }

    /// [`PostgresStore::open`], with the outbox rows each stored report brings. With
    /// `start_unreachable`, a database that cannot be reached now is no error: each operation
    /// fails as [`StoreError::Unavailable`] until one reaches it and applies the migrations.
    pub fn open_with(
        address: &str,
        password_file: Option<&Path>,
        forward: Forwarding,
        start_unreachable: bool,
    ) -> Result<PostgresStore, StoreError> {
        let shown = redact(address);
        let config = connection_config(address, password_file)?;
        let open_err = |message: String| StoreError::Open {
            path: shown.clone(),
            message,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("v8help-postgres")
            .enable_all()
            .build()
            .map_err(|e| open_err(format!("cannot start the database runtime: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let migrating = pool.clone();
        runtime.spawn(async move {
            let _ = tx.send(migrate(&migrating).await);
        });
        let migrated = Arc::new(tokio::sync::OnceCell::new());
        let mut first_error = None;
        match rx.recv() {
            Ok(Ok(())) => {
                let _ = migrated.set(());
            }
            Ok(Err(MigrateError::Store(e))) => return Err(e),
            Ok(Err(MigrateError::Pg(e))) => match e.into_store("connect") {
                e @ StoreError::Unavailable { .. } if start_unreachable => {
                    tracing::warn!("{shown}: {e}; starting without it, reports are spooled until it answers");
                    first_error = Some(e.to_string());
                }
                e => return Err(open_err(e.to_string())),
            },
            Err(_) => return Err(open_err("the database runtime stopped".into())),
        }
        Ok(PostgresStore {
            pool,
            runtime: Arc::new(OwnedRuntime(Some(runtime))),
            address: shown,
            unreachable: Arc::new(AtomicBool::new(first_error.is_some())),
            last_error: Arc::new(Mutex::new(first_error)),
            forward: Arc::new(forward),
            migrated,
        })
    }

    /// Runs `f` with a pooled connection on the store's runtime.
    fn run<T, F, Fut>(&self, operation: &'static str, f: F) -> StoreFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let migrated = self.migrated.clone();
        let job = self.runtime.handle().map(|h| {
            h.spawn(async move {
                migrated
                    .get_or_try_init(|| async {
                        migrate(&pool).await.map_err(|e| match e {
                            MigrateError::Store(e) => PgError::Store(e),
                            MigrateError::Pg(e) => e,
                        })
                    })
                    .await?;
                let conn = pool.get().await?;
                f(conn).await
            })
        });
        let unreachable = self.unreachable.clone();
        let last_error = self.last_error.clone();
        Box::pin(async move {
            let outcome = match job {
                Some(job) => job.await.map_err(|_| StoreError::Closed)?,
                None => return Err(StoreError::Closed),
            };
            let result = outcome.map_err(|e| e.into_store(operation));
            match &result {
                Err(e @ StoreError::Unavailable { .. }) => {
                    unreachable.store(true, Ordering::Relaxed);
                    if let Ok(mut last) = last_error.lock() {
                        *last = Some(e.to_string());
                    }
                }
                _ => unreachable.store(false, Ordering::Relaxed),
            }
            result
        })
    }
}

enum MigrateError {
    Store(StoreError),
    Pg(PgError),
}

impl<E: Into<PgError>> From<E> for MigrateError {
    fn from(e: E) -> Self {
        MigrateError::Pg(e.into())
    }
}

/// Applies the migrations the database lacks, in order, in one transaction that holds the
/// advisory lock: a second process waits for the first and then finds nothing to do.
async fn migrate(pool: &Pool) -> Result<(), MigrateError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at BIGINT NOT NULL
         )",
    )
    .await?;
    let found: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
        .await?
        .get(0);
    let found = found.max(0) as u32;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if found > known {
        return Err(MigrateError::Store(StoreError::TooNew { found, known }));
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        let failed = |e: tokio_postgres::Error| {
            MigrateError::Store(StoreError::Migration {
                version,
                name,
                message: message(&e),
            })
        };
        tx.batch_execute(sql).await.map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&(version as i32), &name, &ms(Utc::now())],
        )
        .await
        .map_err(failed)?;
    }
    tx.commit().await?;
    Ok(())
}

const SUMMARY_COLUMNS: &str = "id, received_at, group_key, archive_size, report_time, report_uuid, user_name,
    client_id, os_version, app_name, app_version, platform_type, config_name, config_version, error_text,
    user_description, app_stack_hash, client_stack_hash, server_stack_hash, screenshot";

fn summary(row: &Row) -> ReportSummary {
    ReportSummary {
        id: row.get(0),
        received_at: time(row.get(1)),
        group_key: row.get(2),
        archive_size: count(row.get(3)),
        fields: ReportFields {
            report_time: row.get(4),
            report_uuid: row.get(5),
            user_name: row.get(6),
            client_id: row.get(7),
            os_version: row.get(8),
            app_name: row.get(9),
            app_version: row.get(10),
            platform_type: row.get(11),
            config_name: row.get(12),
            config_version: row.get(13),
            error_text: row.get(14),
            user_description: row.get(15),
            app_stack_hash: row.get(16),
            client_stack_hash: row.get(17),
            server_stack_hash: row.get(18),
            screenshot: row.get(19),
        },
    }
}

fn mark_of(row: &Row, from: usize) -> Option<Mark> {
    Some(Mark {
        state: MarkState::parse(row.get(from))?,
        note: row.get(from + 1),
        by: row.get(from + 2),
        at: time(row.get(from + 3)),
    })
}

const GROUP_COUNTS: &str = "SELECT group_key, COUNT(*), COUNT(DISTINCT user_name), COUNT(DISTINCT client_id),
    MIN(received_at), MAX(received_at) FROM reports";

fn group_counts(row: &Row) -> GroupSummary {
    GroupSummary {
        key: row.get(0),
        count: count(row.get(1)),
        users: count(row.get(2)),
        machines: count(row.get(3)),
        first_seen: time(row.get(4)),
        last_seen: time(row.get(5)),
        title: None,
        configs: Vec::new(),
        platforms: Vec::new(),
        mark: None,
    }
}

/// Fills in a group's details after its counts were read.
async fn group_details(conn: &deadpool_postgres::Object, g: &mut GroupSummary) -> Result<(), PgError> {
    let title = conn
        .prepare_cached("SELECT error_text FROM reports WHERE group_key = $1 ORDER BY id DESC LIMIT 1")
        .await?;
    g.title = conn.query_opt(&title, &[&g.key]).await?.and_then(|r| r.get(0));
    let configs = conn
        .prepare_cached(
            "SELECT COALESCE(config_name, ''), COALESCE(config_version, ''), COUNT(*) AS n FROM reports
             WHERE group_key = $1 GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT 20",
        )
        .await?;
    g.configs = conn
        .query(&configs, &[&g.key])
        .await?
        .iter()
        .map(|r| ConfigSeen {
            name: r.get(0),
            version: r.get(1),
        })
        .collect();
    let platforms = conn
        .prepare_cached(
            "SELECT app_version, COUNT(*) AS n FROM reports WHERE group_key = $1 AND app_version IS NOT NULL
             GROUP BY 1 ORDER BY n DESC, 1 LIMIT 20",
        )
        .await?;
    g.platforms = conn
        .query(&platforms, &[&g.key])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mark = conn
        .prepare_cached("SELECT state, note, set_by, set_at FROM marks WHERE group_key = $1")
        .await?;
    g.mark = conn.query_opt(&mark, &[&g.key]).await?.and_then(|r| mark_of(&r, 0));
    Ok(())
}

fn buckets(rows: &[Row]) -> Vec<Bucket> {
    rows.iter()
        .map(|r| Bucket {
            start: time(r.get(0)),
            count: count(r.get(1)),
        })
        .collect()
}

/// (reports, archive bytes) now, inside a purge's transaction.
async fn purge_figures(tx: &deadpool_postgres::Transaction<'_>) -> Result<(u64, u64), PgError> {
    let row = tx
        .query_one(
            "SELECT COUNT(*), COALESCE(SUM(archive_size), 0)::BIGINT FROM reports",
            &[],
        )
        .await?;
    Ok((count(row.get(0)), count(row.get(1))))
}

impl Store for PostgresStore {
    fn put_report(&self, report: NewReport) -> StoreFuture<'_, ReportId> {
        let forward = self.forward.clone();
        self.run("store a report", move |mut conn| async move {
            let r = report;
            let f = &r.fields;
            let files = serde_json::to_string(&r.files).unwrap_or_else(|_| "[]".into());
            let json = serde_json::to_string(&r.report_json).unwrap_or_else(|_| "null".into());
            let tx = conn.transaction().await?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO reports (received_at, group_key, client_addr, report_time, report_uuid, user_name,
                         client_id, os_version, app_name, app_version, platform_type, config_name, config_version,
                         error_text, user_description, app_stack_hash, client_stack_hash, server_stack_hash,
                         screenshot, report_json, files, archive_size)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                         $19, $20, $21, $22)
                     RETURNING id",
                )
                .await?;
            let id: i64 = tx
                .query_one(
                    &insert,
                    &[
                        &ms(r.received_at),
                        &r.group_key,
                        &r.client_addr,
                        &f.report_time,
                        &f.report_uuid,
                        &f.user_name,
                        &f.client_id,
                        &f.os_version,
                        &f.app_name,
                        &f.app_version,
                        &f.platform_type,
                        &f.config_name,
                        &f.config_version,
                        &f.error_text,
                        &f.user_description,
                        &f.app_stack_hash,
                        &f.client_stack_hash,
                        &f.server_stack_hash,
                        &f.screenshot,
                        &json,
                        &files,
                        &(r.archive.len() as i64),
                    ],
                )
                .await?
                .get(0);
            let archive = tx
                .prepare_cached("INSERT INTO archives (report_id, bytes) VALUES ($1, $2)")
                .await?;
            tx.execute(&archive, &[&id, &&r.archive[..]]).await?;
            outbox::on_report(&tx, &forward, id, &r.group_key, r.received_at).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    fn put_login_failures(&self, events: Vec<LoginFailure>) -> StoreFuture<'_, ()> {
        self.run("store login failures", move |mut conn| async move {
            let tx = conn.transaction().await?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO login_failures (at, client_addr, user_agent, body, base) VALUES ($1, $2, $3, $4, $5)",
                )
                .await?;
            for e in &events {
                tx.execute(&insert, &[&ms(e.at), &e.client_addr, &e.user_agent, &e.body, &e.base])
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn list_groups(&self, query: GroupQuery) -> StoreFuture<'_, Vec<GroupSummary>> {
        self.run("list groups", move |conn| async move {
            let since = query.since.map_or(i64::MIN, ms);
            let limit = query.limit.map(|l| l as i64);
            let stmt = conn
                .prepare_cached(&format!(
                    "{GROUP_COUNTS} GROUP BY group_key HAVING MAX(received_at) >= $1
                     ORDER BY MAX(received_at) DESC, group_key LIMIT $2"
                ))
                .await?;
            let mut groups: Vec<GroupSummary> = conn
                .query(&stmt, &[&since, &limit])
                .await?
                .iter()
                .map(group_counts)
                .collect();
            for g in &mut groups {
                group_details(&conn, g).await?;
            }
            Ok(groups)
        })
    }

    fn group(&self, key: &str) -> StoreFuture<'_, Option<GroupSummary>> {
        let key = key.to_string();
        self.run("read a group", move |conn| async move {
            let stmt = conn
                .prepare_cached(&format!("{GROUP_COUNTS} WHERE group_key = $1 GROUP BY group_key"))
                .await?;
            let Some(row) = conn.query_opt(&stmt, &[&key]).await? else {
                return Ok(None);
            };
            let mut g = group_counts(&row);
            group_details(&conn, &mut g).await?;
            Ok(Some(g))
        })
    }

    fn group_reports(&self, key: &str, limit: usize) -> StoreFuture<'_, Vec<ReportSummary>> {
        let key = key.to_string();
        self.run("list a group's reports", move |conn| async move {
            let stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM reports WHERE group_key = $1 ORDER BY id DESC LIMIT $2"
                ))
                .await?;
            Ok(conn
                .query(&stmt, &[&key, &(limit as i64)])
                .await?
                .iter()
                .map(summary)
                .collect())
        })
    }

    fn reports_per_hour(&self, key: &str, since: DateTime<Utc>) -> StoreFuture<'_, Vec<Bucket>> {
        let key = key.to_string();
        self.run("count reports per hour", move |conn| async move {
            let stmt = conn
                .prepare_cached(
                    "SELECT (received_at / 3600000) * 3600000 AS h, COUNT(*) FROM reports
                     WHERE group_key = $1 AND received_at >= $2 GROUP BY h ORDER BY h",
                )
                .await?;
            Ok(buckets(&conn.query(&stmt, &[&key, &ms(since)]).await?))
        })
    }

    fn report(&self, id: ReportId) -> StoreFuture<'_, Option<ReportDetail>> {
        self.run("read a report", move |conn| async move {
            let stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS}, client_addr, report_json, files FROM reports WHERE id = $1"
                ))
                .await?;
            Ok(conn.query_opt(&stmt, &[&id]).await?.map(|row| {
                let json: String = row.get(21);
                let files: String = row.get(22);
                ReportDetail {
                    summary: summary(&row),
                    client_addr: row.get(20),
                    report_json: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
                    files: serde_json::from_str::<Vec<ArchiveFile>>(&files).unwrap_or_default(),
                }
            }))
        })
    }

    fn archive(&self, id: ReportId) -> StoreFuture<'_, Option<Bytes>> {
        self.run("read an archive", move |conn| async move {
            let stmt = conn
                .prepare_cached("SELECT bytes FROM archives WHERE report_id = $1")
                .await?;
            Ok(conn
                .query_opt(&stmt, &[&id])
                .await?
                .map(|r| Bytes::from(r.get::<_, Vec<u8>>(0))))
        })
    }

    fn login_failures_per_minute(&self, since: DateTime<Utc>) -> StoreFuture<'_, Vec<Bucket>> {
        self.run("count login failures per minute", move |conn| async move {
            let stmt = conn
                .prepare_cached(
                    "SELECT (at / 60000) * 60000 AS m, COUNT(*) FROM login_failures WHERE at >= $1
                     GROUP BY m ORDER BY m",
                )
                .await?;
            Ok(buckets(&conn.query(&stmt, &[&ms(since)]).await?))
        })
    }

    fn login_failures(&self, since: DateTime<Utc>, limit: usize) -> StoreFuture<'_, Vec<LoginFailure>> {
        self.run("list login failures", move |conn| async move {
            let stmt = conn
                .prepare_cached(
                    "SELECT at, client_addr, user_agent, body, base FROM login_failures WHERE at >= $1
                     ORDER BY id DESC LIMIT $2",
                )
                .await?;
            Ok(conn
                .query(&stmt, &[&ms(since), &(limit as i64)])
                .await?
                .iter()
                .map(|r| LoginFailure {
                    at: time(r.get(0)),
                    client_addr: r.get(1),
                    user_agent: r.get(2),
                    body: r.get(3),
                    base: r.get(4),
                })
                .collect())
        })
    }

    fn set_mark(&self, key: &str, mark: Mark) -> StoreFuture<'_, ()> {
        let key = key.to_string();
        self.run("set a mark", move |conn| async move {
            conn.execute(
                "INSERT INTO marks (group_key, state, note, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (group_key) DO UPDATE SET state = excluded.state, note = excluded.note,
                     set_by = excluded.set_by, set_at = excluded.set_at",
                &[&key, &mark.state.as_str(), &mark.note, &mark.by, &ms(mark.at)],
            )
            .await?;
            Ok(())
        })
    }

    fn clear_mark(&self, key: &str) -> StoreFuture<'_, ()> {
        let key = key.to_string();
        self.run("clear a mark", move |conn| async move {
            conn.execute("DELETE FROM marks WHERE group_key = $1", &[&key]).await?;
            Ok(())
        })
    }

    fn marks(&self) -> StoreFuture<'_, Vec<(String, Mark)>> {
        self.run("read marks", |conn| async move {
            let rows = conn
                .query("SELECT group_key, state, note, set_by, set_at FROM marks", &[])
                .await?;
            Ok(rows
                .iter()
                .filter_map(|r| mark_of(r, 1).map(|m| (r.get(0), m)))
                .collect())
        })
    }

    fn create_session(&self, session: Session) -> StoreFuture<'_, ()> {
        self.run("create a session", move |conn| async move {
            let s = session;
            conn.execute(
                "INSERT INTO sessions (token_hash, user_name, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                &[&s.token_hash, &s.user, &ms(s.created_at), &ms(s.expires_at)],
            )
            .await?;
            Ok(())
        })
    }

    fn session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreFuture<'_, Option<Session>> {
        let hash = token_hash.to_string();
        self.run("read a session", move |conn| async move {
            let stmt = conn
                .prepare_cached(
                    "SELECT token_hash, user_name, created_at, expires_at FROM sessions
                     WHERE token_hash = $1 AND expires_at > $2",
                )
                .await?;
            Ok(conn.query_opt(&stmt, &[&hash, &ms(now)]).await?.map(|r| Session {
                token_hash: r.get(0),
                user: r.get(1),
                created_at: time(r.get(2)),
                expires_at: time(r.get(3)),
            }))
        })
    }

    fn delete_session(&self, token_hash: &str) -> StoreFuture<'_, ()> {
        let hash = token_hash.to_string();
        self.run("delete a session", move |conn| async move {
            conn.execute("DELETE FROM sessions WHERE token_hash = $1", &[&hash])
                .await?;
            Ok(())
        })
    }

    fn purge_sessions(&self, now: DateTime<Utc>) -> StoreFuture<'_, u64> {
        self.run("purge sessions", move |conn| async move {
            Ok(conn
                .execute("DELETE FROM sessions WHERE expires_at <= $1", &[&ms(now)])
                .await?)
        })
    }

    fn purge_older_than(&self, cutoff: DateTime<Utc>) -> StoreFuture<'_, Purged> {
        self.run("purge old reports", move |mut conn| async move {
            let tx = conn.transaction().await?;
            let before = purge_figures(&tx).await?;
            tx.execute("DELETE FROM reports WHERE received_at < $1", &[&ms(cutoff)])
                .await?;
            let login_failures = tx
                .execute("DELETE FROM login_failures WHERE at < $1", &[&ms(cutoff)])
                .await?;
            outbox::purge(&tx, cutoff).await?;
            let after = purge_figures(&tx).await?;
            tx.commit().await?;
            Ok(Purged {
                reports: before.0.saturating_sub(after.0),
                bytes: before.1.saturating_sub(after.1),
                login_failures,
            })
        })
    }

    fn purge_to_size(&self, max_bytes: u64) -> StoreFuture<'_, Purged> {
        self.run("purge to size", move |mut conn| async move {
            let tx = conn.transaction().await?;
            // One purge at a time across replicas, so two do not both remove the excess.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&(MIGRATION_LOCK + 1)])
                .await?;
            let before = purge_figures(&tx).await?;
            let excess = before.1.saturating_sub(max_bytes);
            if excess > 0 {
                // The oldest reports up to the first whose running total covers the excess.
                tx.execute(
                    "DELETE FROM reports WHERE id <= (
                         SELECT id FROM (SELECT id, SUM(archive_size) OVER (ORDER BY id) AS running FROM reports) t
                         WHERE running >= $1::BIGINT ORDER BY id LIMIT 1)",
                    &[&(excess.min(i64::MAX as u64) as i64)],
                )
                .await?;
            }
            let after = purge_figures(&tx).await?;
            tx.commit().await?;
            Ok(Purged {
                reports: before.0.saturating_sub(after.0),
                bytes: before.1.saturating_sub(after.1),
                login_failures: 0,
            })
        })
    }

    fn total_bytes(&self) -> StoreFuture<'_, u64> {
        self.run("read the total size", |conn| async move {
            let row = conn
                .query_one("SELECT COALESCE(SUM(archive_size), 0)::BIGINT FROM reports", &[])
                .await?;
            Ok(count(row.get(0)))
        })
    }

    fn claim_outbox(&self, claim: Claim) -> StoreFuture<'_, Vec<OutboxItem>> {
        self.run("claim outbox rows", move |conn| async move {
            outbox::claim(&conn, &claim).await
        })
    }

    fn finish_outbox(&self, id: i64, token: &str, outcome: Delivery, now: DateTime<Utc>) -> StoreFuture<'_, bool> {
        let token = token.to_string();
        self.run("record a delivery", move |conn| async move {
            outbox::finish(&conn, id, &token, &outcome, now).await
        })
    }

    fn outbox_stats(&self) -> StoreFuture<'_, OutboxStats> {
        self.run("count the outbox", |conn| async move { outbox::stats(&conn).await })
    }

    fn outbox_problems(&self, limit: usize) -> StoreFuture<'_, Vec<OutboxItem>> {
        self.run("list outbox problems", move |conn| async move {
            outbox::problems(&conn, limit).await
        })
    }

    fn health(&self) -> StoreHealth {
        let unreachable = self.unreachable.load(Ordering::Relaxed);
        StoreHealth {
            backend: "postgres",
            address: self.address.clone(),
            reachable: !unreachable,
            last_error: if unreachable {
                self.last_error.lock().ok().and_then(|l| l.clone())
            } else {
                None
            },
            spooled: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://v8help:s3cr%40t@db.example:5432/reports?sslmode=disable"),
            "postgres://v8help:***@db.example:5432/reports?sslmode=disable"
        );
        assert_eq!(redact("postgres://v8help@db/reports"), "postgres://v8help@db/reports");
        assert_eq!(redact("host=db user=v8help"), "host=db user=v8help");
    }
}
