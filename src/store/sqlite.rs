//! The SQLite [`Store`]: one database file in WAL mode with `synchronous=FULL`, so that a
//! report acknowledged to its client survives a kill -9 or a power cut.
//!
//! Two files: this one opens the database, applies the migrations and answers the reads;
//! `sqlite_writer.rs` is the write path (one writer thread that applies every waiting write
//! in one transaction and commits once, so concurrent uploads share the fsync, and a
//! checkpoint thread that copies the log into the database). A caller's future completes
//! only after the commit. Reads run on a small pool of read-only connections in tokio's blocking
//! pool, so neither kind ever stalls a serving thread. The schema comes from the numbered
//! files in `migrations/`, applied in order under the database's write lock and recorded in
//! `schema_migrations`. The outbox queries are in `outbox_sqlite.rs`; its claims and
//! outcomes are writes like any other.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc};

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

#[path = "outbox_sqlite.rs"]
mod outbox;

#[path = "sqlite_writer.rs"]
mod writer;

use writer::{WAL_RESTART_FRAMES, Write, WriteOp, checkpointer};

use super::{
    ArchiveFile, Bucket, Claim, ConfigSeen, Delivery, Forwarding, GroupQuery, GroupSummary, LoginFailure, Mark,
    MarkState, NewReport, OutboxItem, OutboxStats, Purged, ReportDetail, ReportFields, ReportId, ReportSummary,
    Session, Store, StoreError, StoreFuture,
};

/// The migrations, in order: (number, file name, SQL).
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "0001_reports.sql", include_str!("migrations/0001_reports.sql")),
    (2, "0002_outbox.sql", include_str!("migrations/0002_outbox.sql")),
    (
        3,
        "0003_totals_by_writer.sql",
        include_str!("migrations/0003_totals_by_writer.sql"),
    ),
];

/// Read connections kept open for reuse.
const READERS: usize = 4;

/// A SQLite report store (see the module documentation).
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writes: mpsc::Sender<Write>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

fn backend(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        message: e.to_string(),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies pending migrations and
    /// starts the writer thread; no report brings outbox rows.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, Forwarding::default())
    }

    /// [`SqliteStore::open`], with the outbox rows each stored report brings.
    pub fn open_with(path: &Path, forward: Forwarding) -> Result<SqliteStore, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        // Page size and incremental vacuum only take effect before the first table exists.
        conn.execute_batch("PRAGMA page_size = 65536; PRAGMA auto_vacuum = INCREMENTAL;")
            .map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                message: format!("cannot switch to WAL mode (journal mode stays {mode})"),
            });
        }
        configure(&conn).map_err(open_err)?;
        migrate(&mut conn)?;
        // The writer never checkpoints itself; statement journals (one savepoint per write)
        // stay in memory instead of a temporary file.
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = {};",
            WAL_RESTART_FRAMES * 65536
        ))
        .map_err(open_err)?;
        let checkpoints = Connection::open(path).map_err(open_err)?;
        configure(&checkpoints).map_err(open_err)?;
        let (committed, commits) = mpsc::sync_channel(1);
        let reset = Arc::new(AtomicBool::new(false));
        let wanted = reset.clone();
        std::thread::Builder::new()
            .name("v8help-store-checkpoint".into())
            .spawn(move || checkpointer(checkpoints, commits, wanted))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                message: format!("cannot start the checkpoint thread: {e}"),
            })?;
        // Unbounded: what waits here is bounded by the intake's memory budget (an upload holds
        // its share until its commit) and by the login-failure queue.
        let (writes, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("v8help-store-writer".into())
            .spawn(move || writer::writer(conn, queue, committed, reset, forward))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                message: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writes,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Runs `f` on a read connection in the blocking pool.
    fn read<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        Box::pin(async move {
            let job = move || {
                let taken = readers.lock().ok().and_then(|mut pool| pool.pop());
                let conn = match taken {
                    Some(c) => c,
                    None => {
                        let c = Connection::open_with_flags(
                            &path,
                            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                        )?;
                        c.busy_timeout(std::time::Duration::from_secs(10))?;
                        c
                    }
                };
                let out = f(&conn);
                if let Ok(mut pool) = readers.lock()
                    && pool.len() < READERS
                {
                    pool.push(conn);
                }
                out
            };
            match tokio::task::spawn_blocking(job).await {
                Ok(result) => result.map_err(backend(operation)),
                Err(_) => Err(StoreError::Closed),
            }
        })
    }

    fn write_other(&self, op: WriteOp) -> StoreFuture<'_, u64> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.writes.send(Write::Other(op, tx));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn purge(&self, op: impl FnOnce(tokio::sync::oneshot::Sender<Purged>) -> WriteOp) -> StoreFuture<'_, Purged> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done = self.write_other(op(tx));
        Box::pin(async move {
            done.await?;
            rx.await.map_err(|_| StoreError::Closed)
        })
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;",
    )
}

/// Applies the migrations the database lacks, in order, in one transaction holding the
/// write lock (two processes starting at once do not both apply them).
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let err = |version: u32, name: &'static str| {
        move |e: rusqlite::Error| StoreError::Migration {
            version,
            name,
            message: e.to_string(),
        }
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err(0, "schema_migrations"))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(err(0, "schema_migrations"))?;
    let found: u32 = tx
        .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .map_err(err(0, "schema_migrations"))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.execute_batch(sql).map_err(err(version, name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, ms(Utc::now())],
        )
        .map_err(err(version, name))?;
    }
    tx.commit().map_err(err(known, "commit"))
}

const SUMMARY_COLUMNS: &str = "id, received_at, group_key, archive_size, report_time, report_uuid, user_name,
    client_id, os_version, app_name, app_version, platform_type, config_name, config_version, error_text,
    user_description, app_stack_hash, client_stack_hash, server_stack_hash, screenshot";

fn summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<ReportSummary> {
    Ok(ReportSummary {
        id: row.get(0)?,
        received_at: time(row.get(1)?),
        group_key: row.get(2)?,
        archive_size: row.get::<_, i64>(3)?.max(0) as u64,
        fields: ReportFields {
            report_time: row.get(4)?,
            report_uuid: row.get(5)?,
            user_name: row.get(6)?,
            client_id: row.get(7)?,
            os_version: row.get(8)?,
            app_name: row.get(9)?,
            app_version: row.get(10)?,
            platform_type: row.get(11)?,
            config_name: row.get(12)?,
            config_version: row.get(13)?,
            error_text: row.get(14)?,
            user_description: row.get(15)?,
            app_stack_hash: row.get(16)?,
            client_stack_hash: row.get(17)?,
            server_stack_hash: row.get(18)?,
            screenshot: row.get(19)?,
        },
    })
}

fn mark_of(state: String, note: String, by: String, at: i64) -> Option<Mark> {
    Some(Mark {
        state: MarkState::parse(&state)?,
        note,
        by,
        at: time(at),
    })
}

/// Fills in a group's details after its counts were read.
fn group_details(conn: &Connection, g: &mut GroupSummary) -> rusqlite::Result<()> {
    g.title = conn
        .prepare_cached("SELECT error_text FROM reports WHERE group_key = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([&g.key], |r| r.get(0))
        .optional()?
        .flatten();
    let mut configs = conn.prepare_cached(
        "SELECT COALESCE(config_name, ''), COALESCE(config_version, ''), COUNT(*) AS n FROM reports
         WHERE group_key = ?1 GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT 20",
    )?;
    g.configs = configs
        .query_map([&g.key], |r| {
            Ok(ConfigSeen {
                name: r.get(0)?,
                version: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut platforms = conn.prepare_cached(
        "SELECT app_version, COUNT(*) AS n FROM reports WHERE group_key = ?1 AND app_version IS NOT NULL
         GROUP BY 1 ORDER BY n DESC, 1 LIMIT 20",
    )?;
    g.platforms = platforms.query_map([&g.key], |r| r.get(0))?.collect::<Result<_, _>>()?;
    g.mark = conn
        .prepare_cached("SELECT state, note, set_by, set_at FROM marks WHERE group_key = ?1")?
        .query_row([&g.key], |r| Ok(mark_of(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?
        .flatten();
    Ok(())
}

const GROUP_COUNTS: &str = "SELECT group_key, COUNT(*), COUNT(DISTINCT user_name), COUNT(DISTINCT client_id),
    MIN(received_at), MAX(received_at) FROM reports";

fn group_counts(row: &rusqlite::Row<'_>) -> rusqlite::Result<GroupSummary> {
    Ok(GroupSummary {
        key: row.get(0)?,
        count: row.get::<_, i64>(1)? as u64,
        users: row.get::<_, i64>(2)? as u64,
        machines: row.get::<_, i64>(3)? as u64,
        first_seen: time(row.get(4)?),
        last_seen: time(row.get(5)?),
        title: None,
        configs: Vec::new(),
        platforms: Vec::new(),
        mark: None,
    })
}

fn buckets(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<Vec<Bucket>> {
    let mut stmt = conn.prepare_cached(sql)?;
    stmt.query_map(params, |r| {
        Ok(Bucket {
            start: time(r.get(0)?),
            count: r.get::<_, i64>(1)? as u64,
        })
    })?
    .collect()
}

impl Store for SqliteStore {
    fn put_report(&self, report: NewReport) -> StoreFuture<'_, ReportId> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.writes.send(Write::Report(Box::new(report), tx));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn put_login_failures(&self, events: Vec<LoginFailure>) -> StoreFuture<'_, ()> {
        let done = self.write_other(WriteOp::LoginFailures(events));
        Box::pin(async move { done.await.map(|_| ()) })
    }

    fn list_groups(&self, query: GroupQuery) -> StoreFuture<'_, Vec<GroupSummary>> {
        self.read("list groups", move |conn| {
            let since = query.since.map_or(i64::MIN, ms);
            let limit = query.limit.map_or(-1, |l| l as i64);
            let mut stmt = conn.prepare_cached(&format!(
                "{GROUP_COUNTS} GROUP BY group_key HAVING MAX(received_at) >= ?1
                 ORDER BY MAX(received_at) DESC, group_key LIMIT ?2"
            ))?;
            let mut groups: Vec<GroupSummary> = stmt
                .query_map(params![since, limit], group_counts)?
                .collect::<Result<_, _>>()?;
            for g in &mut groups {
                group_details(conn, g)?;
            }
            Ok(groups)
        })
    }

    fn group(&self, key: &str) -> StoreFuture<'_, Option<GroupSummary>> {
        let key = key.to_string();
        self.read("read a group", move |conn| {
            let mut stmt = conn.prepare_cached(&format!("{GROUP_COUNTS} WHERE group_key = ?1 GROUP BY group_key"))?;
            let Some(mut g) = stmt.query_row([&key], group_counts).optional()? else {
                return Ok(None);
            };
            group_details(conn, &mut g)?;
            Ok(Some(g))
        })
    }

    fn group_reports(&self, key: &str, limit: usize) -> StoreFuture<'_, Vec<ReportSummary>> {
        let key = key.to_string();
        self.read("list a group's reports", move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM reports WHERE group_key = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            stmt.query_map(params![key, limit as i64], summary)?.collect()
        })
    }

    fn reports_per_hour(&self, key: &str, since: DateTime<Utc>) -> StoreFuture<'_, Vec<Bucket>> {
        let key = key.to_string();
        self.read("count reports per hour", move |conn| {
            buckets(
                conn,
                "SELECT (received_at / 3600000) * 3600000 AS h, COUNT(*) FROM reports
                 WHERE group_key = ?1 AND received_at >= ?2 GROUP BY h ORDER BY h",
                params![key, ms(since)],
            )
        })
    }

    fn report(&self, id: ReportId) -> StoreFuture<'_, Option<ReportDetail>> {
        self.read("read a report", move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS}, client_addr, report_json, files FROM reports WHERE id = ?1"
            ))?;
            stmt.query_row([id], |row| {
                let json: String = row.get(21)?;
                let files: String = row.get(22)?;
                Ok(ReportDetail {
                    summary: summary(row)?,
                    client_addr: row.get(20)?,
                    report_json: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
                    files: serde_json::from_str::<Vec<ArchiveFile>>(&files).unwrap_or_default(),
                })
            })
            .optional()
        })
    }

    fn archive(&self, id: ReportId) -> StoreFuture<'_, Option<Bytes>> {
        self.read("read an archive", move |conn| {
            conn.prepare_cached("SELECT bytes FROM archives WHERE report_id = ?1")?
                .query_row([id], |r| r.get::<_, Vec<u8>>(0))
                .optional()
                .map(|b| b.map(Bytes::from))
        })
    }

    fn login_failures_per_minute(&self, since: DateTime<Utc>) -> StoreFuture<'_, Vec<Bucket>> {
        self.read("count login failures per minute", move |conn| {
            buckets(
                conn,
                "SELECT (at / 60000) * 60000 AS m, COUNT(*) FROM login_failures WHERE at >= ?1 GROUP BY m ORDER BY m",
                [ms(since)],
            )
        })
    }

    fn login_failures(&self, since: DateTime<Utc>, limit: usize) -> StoreFuture<'_, Vec<LoginFailure>> {
        self.read("list login failures", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT at, client_addr, user_agent, body, base FROM login_failures WHERE at >= ?1
                 ORDER BY id DESC LIMIT ?2",
            )?;
            stmt.query_map(params![ms(since), limit as i64], |r| {
                Ok(LoginFailure {
                    at: time(r.get(0)?),
                    client_addr: r.get(1)?,
                    user_agent: r.get(2)?,
                    body: r.get(3)?,
                    base: r.get(4)?,
                })
            })?
            .collect()
        })
    }

    fn set_mark(&self, key: &str, mark: Mark) -> StoreFuture<'_, ()> {
        let done = self.write_other(WriteOp::SetMark(key.to_string(), mark));
        Box::pin(async move { done.await.map(|_| ()) })
    }

    fn clear_mark(&self, key: &str) -> StoreFuture<'_, ()> {
        let done = self.write_other(WriteOp::ClearMark(key.to_string()));
        Box::pin(async move { done.await.map(|_| ()) })
    }

    fn marks(&self) -> StoreFuture<'_, Vec<(String, Mark)>> {
        self.read("read marks", |conn| {
            let mut stmt = conn.prepare_cached("SELECT group_key, state, note, set_by, set_at FROM marks")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    mark_of(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                ))
            })?;
            let mut marks = Vec::new();
            for row in rows {
                if let (key, Some(mark)) = row? {
                    marks.push((key, mark));
                }
            }
            Ok(marks)
        })
    }

    fn create_session(&self, session: Session) -> StoreFuture<'_, ()> {
        let done = self.write_other(WriteOp::CreateSession(session));
        Box::pin(async move { done.await.map(|_| ()) })
    }

    fn session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreFuture<'_, Option<Session>> {
        let hash = token_hash.to_string();
        self.read("read a session", move |conn| {
            conn.prepare_cached(
                "SELECT token_hash, user_name, created_at, expires_at FROM sessions
                 WHERE token_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![hash, ms(now)], |r| {
                Ok(Session {
                    token_hash: r.get(0)?,
                    user: r.get(1)?,
                    created_at: time(r.get(2)?),
                    expires_at: time(r.get(3)?),
                })
            })
            .optional()
        })
    }

    fn delete_session(&self, token_hash: &str) -> StoreFuture<'_, ()> {
        let done = self.write_other(WriteOp::DeleteSession(token_hash.to_string()));
        Box::pin(async move { done.await.map(|_| ()) })
    }

    fn purge_sessions(&self, now: DateTime<Utc>) -> StoreFuture<'_, u64> {
        self.write_other(WriteOp::PurgeSessions(now))
    }

    fn purge_older_than(&self, cutoff: DateTime<Utc>) -> StoreFuture<'_, Purged> {
        self.purge(|tx| WriteOp::PurgeOlder(cutoff, tx))
    }

    fn purge_to_size(&self, max_bytes: u64) -> StoreFuture<'_, Purged> {
        self.purge(|tx| WriteOp::PurgeToSize(max_bytes, tx))
    }

    fn total_bytes(&self) -> StoreFuture<'_, u64> {
        self.read("read the total size", |conn| {
            conn.query_row("SELECT bytes FROM totals WHERE id = 1", [], |r| r.get::<_, i64>(0))
                .map(|b| b.max(0) as u64)
        })
    }

    fn claim_outbox(&self, claim: Claim) -> StoreFuture<'_, Vec<OutboxItem>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done = self.write_other(WriteOp::ClaimOutbox(claim, tx));
        Box::pin(async move {
            done.await?;
            rx.await.map_err(|_| StoreError::Closed)
        })
    }

    fn finish_outbox(&self, id: i64, token: &str, outcome: Delivery, now: DateTime<Utc>) -> StoreFuture<'_, bool> {
        let done = self.write_other(WriteOp::FinishOutbox(id, token.to_string(), outcome, now));
        Box::pin(async move { done.await.map(|n| n > 0) })
    }

    fn outbox_stats(&self) -> StoreFuture<'_, OutboxStats> {
        self.read("count the outbox", outbox::stats)
    }

    fn outbox_problems(&self, limit: usize) -> StoreFuture<'_, Vec<OutboxItem>> {
        self.read("list outbox problems", move |conn| outbox::problems(conn, limit))
    }

    fn health(&self) -> super::StoreHealth {
        super::StoreHealth {
            backend: "sqlite",
            address: self.path.display().to_string(),
            reachable: true,
            last_error: None,
            spooled: 0,
        }
    }
}
