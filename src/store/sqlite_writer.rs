//! The SQLite store's write path: the writer thread, which takes every write waiting in its
//! queue, applies them in one transaction and commits once (group commit: concurrent
//! uploads share the fsync), and the checkpoint thread, which copies the write-ahead log
//! into the database. Both run at the lowest CPU priority (`background::yield_to_serving`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, params};

use super::outbox;
use super::{backend, ms};
use crate::store::{
    Claim, Delivery, Forwarding, LoginFailure, Mark, NewReport, OutboxItem, Purged, ReportId, Session, StoreError,
};

/// Most writes applied in one transaction (one commit, one fsync).
const MAX_BATCH: usize = 512;
/// A batch stops growing once its archives reach this many bytes, so one commit stays short.
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// A write-ahead log past this many frames (64 KiB pages: 64 MiB) is reset by a checkpoint
/// that waits for the writer, so a flood faster than the background checkpoint cannot grow
/// it without bound.
pub(super) const WAL_RESTART_FRAMES: i64 = 1024;

/// One write for the writer thread and where to send its outcome.
pub(super) enum Write {
    Report(
        Box<NewReport>,
        tokio::sync::oneshot::Sender<Result<ReportId, StoreError>>,
    ),
    Other(WriteOp, tokio::sync::oneshot::Sender<Result<u64, StoreError>>),
}

/// The writes other than reports (their outcome is a count).
pub(super) enum WriteOp {
    LoginFailures(Vec<LoginFailure>),
    SetMark(String, Mark),
    ClearMark(String),
    CreateSession(Session),
    DeleteSession(String),
    PurgeSessions(DateTime<Utc>),
    PurgeOlder(DateTime<Utc>, tokio::sync::oneshot::Sender<Purged>),
    PurgeToSize(u64, tokio::sync::oneshot::Sender<Purged>),
    ClaimOutbox(Claim, tokio::sync::oneshot::Sender<Vec<OutboxItem>>),
    FinishOutbox(i64, String, Delivery, DateTime<Utc>),
}

/// The checkpoint thread: after commits (coalesced: one wake-up however many commits
/// happened meanwhile), copies the log into the database without blocking the writer. The
/// log only starts over when a write begins while it is fully copied, which a busy writer
/// rarely finds; past [`WAL_RESTART_FRAMES`] this thread asks the writer (`reset`) to copy
/// its last few frames itself before its next write, and past four times that it resets the
/// log itself, waiting for the writer's commit. Ends when the writer does. Errors are logged
/// and retried on the next commit: until then the data is safe in the log.
pub(super) fn checkpointer(conn: Connection, commits: mpsc::Receiver<()>, reset: Arc<AtomicBool>) {
    crate::background::yield_to_serving();
    while commits.recv().is_ok() {
        let result = checkpoint(&conn, "PASSIVE").and_then(|log| {
            if log > 4 * WAL_RESTART_FRAMES {
                checkpoint(&conn, "RESTART")
            } else {
                reset.store(log > WAL_RESTART_FRAMES, Ordering::Relaxed);
                Ok(log)
            }
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "SQLite checkpoint failed; retried after the next commit");
        }
    }
}

/// Runs a checkpoint; returns the number of frames in the log.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(1))
}

/// The writer thread: batch, apply, commit once, answer everyone in the batch, then wake
/// the checkpoint thread.
pub(super) fn writer(
    mut conn: Connection,
    queue: mpsc::Receiver<Write>,
    committed: mpsc::SyncSender<()>,
    reset: Arc<AtomicBool>,
    forward: Forwarding,
) {
    crate::background::yield_to_serving();
    while let Ok(first) = queue.recv() {
        if reset.swap(false, Ordering::Relaxed) {
            // Copies what the checkpoint thread has not (busy if it is running: next time).
            let _ = checkpoint(&conn, "PASSIVE");
        }
        let mut batch = vec![first];
        let mut bytes = batch_bytes(&batch[0]);
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match queue.try_recv() {
                Ok(w) => {
                    bytes += batch_bytes(&w);
                    batch.push(w);
                }
                Err(_) => break,
            }
        }
        apply_batch(&mut conn, batch, &forward);
        let _ = committed.try_send(());
    }
}

fn batch_bytes(w: &Write) -> usize {
    match w {
        Write::Report(r, _) => r.archive.len(),
        Write::Other(..) => 0,
    }
}

/// What a write did inside the transaction, to be answered after the commit.
enum Outcome {
    Report(
        tokio::sync::oneshot::Sender<Result<ReportId, StoreError>>,
        Result<ReportId, StoreError>,
    ),
    Other(
        tokio::sync::oneshot::Sender<Result<u64, StoreError>>,
        Result<u64, StoreError>,
    ),
}

/// Applies a batch in one transaction and answers each write once it is committed.
///
/// Reports go first, without a savepoint each (a savepoint makes every insert copy the pages
/// it shares with the rest of the batch); should one fail, the transaction is rolled back
/// and the reports are applied again one savepoint each, so that only the bad one fails.
/// The other writes (small, rare) follow, each in its own savepoint.
fn apply_batch(conn: &mut Connection, batch: Vec<Write>, forward: &Forwarding) {
    let mut reports = Vec::new();
    let mut others = Vec::new();
    for w in batch {
        match w {
            Write::Report(report, reply) => reports.push((report, reply)),
            Write::Other(op, reply) => others.push((op, reply)),
        }
    }
    let mut tx = match begin(conn) {
        Ok(tx) => tx,
        Err(message) => return fail_all(reports, others, &message),
    };
    let mut stored = store_reports(&tx, &reports, forward, false);
    if stored.iter().any(Result::is_err) {
        let _ = tx.rollback();
        tx = match begin(conn) {
            Ok(tx) => tx,
            Err(message) => return fail_all(reports, others, &message),
        };
        stored = store_reports(&tx, &reports, forward, true);
    }
    let added: i64 = reports
        .iter()
        .zip(&stored)
        .filter(|(_, r)| r.is_ok())
        .map(|((r, _), _)| r.archive.len() as i64)
        .sum();
    if added > 0
        && let Err(e) = tx.execute("UPDATE totals SET bytes = bytes + ?1 WHERE id = 1", [added])
    {
        let _ = tx.rollback();
        return fail_all(reports, others, &e.to_string());
    }
    let mut outcomes: Vec<Outcome> = reports
        .into_iter()
        .zip(stored)
        .map(|((_, reply), r)| Outcome::Report(reply, r.map_err(backend("store a report"))))
        .collect();
    for (op, reply) in others {
        let r = in_savepoint(&tx, |tx| apply_op(tx, op)).map_err(backend("write"));
        outcomes.push(Outcome::Other(reply, r));
    }
    let committed = tx.commit().map_err(|e| e.to_string());
    for o in outcomes {
        let closed = |message: &str| StoreError::Backend {
            operation: "commit",
            message: message.to_string(),
        };
        match o {
            Outcome::Report(reply, r) => {
                let _ = reply.send(committed.as_ref().map_err(|m| closed(m)).and(r));
            }
            Outcome::Other(reply, r) => {
                let _ = reply.send(committed.as_ref().map_err(|m| closed(m)).and(r));
            }
        }
    }
}

fn begin(conn: &mut Connection) -> Result<Transaction<'_>, String> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())
}

type ReportReply = tokio::sync::oneshot::Sender<Result<ReportId, StoreError>>;

/// Inserts the reports; `isolated`: each in its own savepoint. Without, the first failure
/// stops the rest (the caller then rolls back and tries again isolated).
fn store_reports(
    tx: &Transaction<'_>,
    reports: &[(Box<NewReport>, ReportReply)],
    forward: &Forwarding,
    isolated: bool,
) -> Vec<rusqlite::Result<ReportId>> {
    let mut out = Vec::with_capacity(reports.len());
    for (report, _) in reports {
        let r = if isolated {
            in_savepoint(tx, |tx| insert_report(tx, report, forward))
        } else {
            insert_report(tx, report, forward)
        };
        let failed = r.is_err();
        out.push(r);
        if failed && !isolated {
            break;
        }
    }
    out
}

fn fail_all(
    reports: Vec<(Box<NewReport>, ReportReply)>,
    others: Vec<(WriteOp, tokio::sync::oneshot::Sender<Result<u64, StoreError>>)>,
    message: &str,
) {
    for (report, reply) in reports {
        fail(Write::Report(report, reply), message);
    }
    for (op, reply) in others {
        fail(Write::Other(op, reply), message);
    }
}

fn fail(w: Write, message: &str) {
    let e = || StoreError::Backend {
        operation: "begin a transaction",
        message: message.to_string(),
    };
    match w {
        Write::Report(_, reply) => {
            let _ = reply.send(Err(e()));
        }
        Write::Other(_, reply) => {
            let _ = reply.send(Err(e()));
        }
    }
}

fn in_savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    tx.execute_batch("SAVEPOINT one")?;
    match f(tx) {
        Ok(v) => {
            tx.execute_batch("RELEASE one")?;
            Ok(v)
        }
        Err(e) => {
            tx.execute_batch("ROLLBACK TO one; RELEASE one")?;
            Err(e)
        }
    }
}

fn insert_report(tx: &Transaction<'_>, r: &NewReport, forward: &Forwarding) -> rusqlite::Result<ReportId> {
    let f = &r.fields;
    let files = serde_json::to_string(&r.files).unwrap_or_else(|_| "[]".into());
    let json = serde_json::to_string(&r.report_json).unwrap_or_else(|_| "null".into());
    tx.prepare_cached(
        "INSERT INTO reports (received_at, group_key, client_addr, report_time, report_uuid, user_name,
             client_id, os_version, app_name, app_version, platform_type, config_name, config_version,
             error_text, user_description, app_stack_hash, client_stack_hash, server_stack_hash,
             screenshot, report_json, files, archive_size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
    )?
    .execute(params![
        ms(r.received_at),
        r.group_key,
        r.client_addr,
        f.report_time,
        f.report_uuid,
        f.user_name,
        f.client_id,
        f.os_version,
        f.app_name,
        f.app_version,
        f.platform_type,
        f.config_name,
        f.config_version,
        f.error_text,
        f.user_description,
        f.app_stack_hash,
        f.client_stack_hash,
        f.server_stack_hash,
        f.screenshot,
        json,
        files,
        r.archive.len() as i64,
    ])?;
    let id = tx.last_insert_rowid();
    // The archive goes straight into the row's pages (an incremental blob write) instead of
    // through a bound parameter, which SQLite would first copy whole.
    let size = i64::try_from(r.archive.len()).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached("INSERT INTO archives (report_id, bytes) VALUES (?1, zeroblob(?2))")?
        .execute(params![id, size])?;
    tx.blob_open(rusqlite::MAIN_DB, "archives", "bytes", id, false)?
        .write_at(&r.archive, 0)?;
    outbox::on_report(tx, forward, id, &r.group_key, r.received_at)?;
    Ok(id)
}

/// Applies one write other than a report.
fn apply_op(tx: &Transaction<'_>, op: WriteOp) -> rusqlite::Result<u64> {
    Ok(match op {
        WriteOp::LoginFailures(events) => {
            let mut insert = tx.prepare_cached(
                "INSERT INTO login_failures (at, client_addr, user_agent, body, base) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in &events {
                insert.execute(params![ms(e.at), e.client_addr, e.user_agent, e.body, e.base])?;
            }
            events.len() as u64
        }
        WriteOp::SetMark(key, m) => tx.execute(
            "INSERT INTO marks (group_key, state, note, set_by, set_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (group_key) DO UPDATE SET state = excluded.state, note = excluded.note,
                 set_by = excluded.set_by, set_at = excluded.set_at",
            params![key, m.state.as_str(), m.note, m.by, ms(m.at)],
        )? as u64,
        WriteOp::ClearMark(key) => tx.execute("DELETE FROM marks WHERE group_key = ?1", [key])? as u64,
        WriteOp::CreateSession(s) => tx.execute(
            "INSERT INTO sessions (token_hash, user_name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![s.token_hash, s.user, ms(s.created_at), ms(s.expires_at)],
        )? as u64,
        WriteOp::DeleteSession(hash) => tx.execute("DELETE FROM sessions WHERE token_hash = ?1", [hash])? as u64,
        WriteOp::PurgeSessions(now) => tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [ms(now)])? as u64,
        WriteOp::PurgeOlder(cutoff, reply) => {
            let before = purge_figures(tx)?;
            tx.execute("DELETE FROM reports WHERE received_at < ?1", [ms(cutoff)])?;
            let login_failures = tx.execute("DELETE FROM login_failures WHERE at < ?1", [ms(cutoff)])? as u64;
            outbox::purge(tx, cutoff)?;
            tx.execute_batch("PRAGMA incremental_vacuum")?;
            let after = purge_figures(tx)?;
            let purged = Purged {
                reports: before.0 - after.0,
                bytes: before.1 - after.1,
                login_failures,
            };
            let _ = reply.send(purged);
            purged.reports
        }
        WriteOp::ClaimOutbox(claim, reply) => {
            let items = outbox::claim(tx, &claim)?;
            let n = items.len() as u64;
            let _ = reply.send(items);
            n
        }
        WriteOp::FinishOutbox(id, token, outcome, now) => outbox::finish(tx, id, &token, &outcome, now)?,
        WriteOp::PurgeToSize(max, reply) => {
            let before = purge_figures(tx)?;
            let mut excess = before.1.saturating_sub(max);
            let mut last = None;
            if excess > 0 {
                let mut oldest = tx.prepare("SELECT id, archive_size FROM reports ORDER BY id")?;
                let mut rows = oldest.query([])?;
                while let Some(row) = rows.next()? {
                    let (id, size): (i64, i64) = (row.get(0)?, row.get(1)?);
                    last = Some(id);
                    excess = excess.saturating_sub(size as u64);
                    if excess == 0 {
                        break;
                    }
                }
            }
            if let Some(last) = last {
                tx.execute("DELETE FROM reports WHERE id <= ?1", [last])?;
            }
            tx.execute_batch("PRAGMA incremental_vacuum")?;
            let after = purge_figures(tx)?;
            let purged = Purged {
                reports: before.0 - after.0,
                bytes: before.1 - after.1,
                login_failures: 0,
            };
            let _ = reply.send(purged);
            purged.reports
        }
    })
}

/// (reports, archive bytes) now.
fn purge_figures(tx: &Transaction<'_>) -> rusqlite::Result<(u64, u64)> {
    let reports: i64 = tx.query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))?;
    let bytes: i64 = tx.query_row("SELECT bytes FROM totals WHERE id = 1", [], |r| r.get(0))?;
    Ok((reports as u64, bytes.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::super::{SqliteStore, configure};
    use super::*;
    use crate::store::ReportFields;
    use bytes::Bytes;
    use chrono::TimeZone;

    fn report(user: &str) -> NewReport {
        NewReport {
            received_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            client_addr: None,
            group_key: "app:g".into(),
            fields: ReportFields {
                user_name: Some(user.into()),
                ..ReportFields::default()
            },
            report_json: serde_json::json!({}),
            files: Vec::new(),
            archive: Bytes::from(vec![7u8; 1000]),
        }
    }

    #[test]
    fn one_failing_report_in_a_batch_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.db");
        drop(SqliteStore::open(&path).unwrap());
        let mut conn = Connection::open(&path).unwrap();
        configure(&conn).unwrap();
        // Stands in for any failure of one insert (a constraint, a value too large).
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON reports WHEN NEW.user_name = 'bad'
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
        let mut replies = Vec::new();
        let batch = ["a", "bad", "c"]
            .into_iter()
            .map(|user| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                replies.push(rx);
                Write::Report(Box::new(report(user)), tx)
            })
            .collect();
        apply_batch(&mut conn, batch, &Forwarding::default());
        let results: Vec<bool> = replies
            .into_iter()
            .map(|mut rx| rx.try_recv().unwrap().is_ok())
            .collect();
        assert_eq!(results, [true, false, true]);
        let (users, bytes): (String, i64) = conn
            .query_row(
                "SELECT group_concat(user_name, ','), (SELECT bytes FROM totals) FROM reports",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((users.as_str(), bytes), ("a,c", 2000));
    }
}
