//! The SQLite side of the [`super::super::outbox`]: rows written with a report, claims and
//! outcomes (both applied by the writer thread, so a claim is one statement in one
//! transaction), and the reads of the console and `/metrics`.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, params};

use super::{ms, time};
use crate::store::{Claim, Delivery, Forwarding, OutboxItem, OutboxKind, OutboxStats, ReportId};

const COLUMNS: &str = "id, target, kind, group_key, report_id, count, created_at, next_at, attempts, last_error,
    delivered_at, failed_at";

fn item(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxItem> {
    let kind: String = row.get(2)?;
    Ok(OutboxItem {
        id: row.get(0)?,
        target: row.get(1)?,
        kind: OutboxKind::parse(&kind).unwrap_or(OutboxKind::Report),
        group_key: row.get(3)?,
        report_id: row.get(4)?,
        count: row.get::<_, i64>(5)?.max(0) as u64,
        created_at: time(row.get(6)?),
        next_at: time(row.get(7)?),
        attempts: row.get::<_, i64>(8)?.clamp(0, u32::MAX as i64) as u32,
        last_error: row.get(9)?,
        delivered_at: row.get::<_, Option<i64>>(10)?.map(time),
        failed_at: row.get::<_, Option<i64>>(11)?.map(time),
    })
}

/// Writes the outbox rows report `id` (of group `group`, received `at`) brings, inside its
/// transaction.
pub(super) fn on_report(
    tx: &Transaction<'_>,
    plan: &Forwarding,
    id: ReportId,
    group: &str,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (target, kind, group_key, report_id, count, created_at, next_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?;
    for target in &plan.every_report {
        insert.execute(params![target, OutboxKind::Report.as_str(), group, id, 0, ms(at)])?;
    }
    if plan.group_events.is_empty() {
        return Ok(());
    }
    let count: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM (SELECT 1 FROM reports WHERE group_key = ?1 LIMIT ?2)")?
        .query_row(params![group, plan.count_cap() as i64], |r| r.get(0))?;
    for kind in plan.group_events_at(count.max(0) as u64) {
        for target in &plan.group_events {
            insert.execute(params![target, kind.as_str(), group, id, count, ms(at)])?;
        }
    }
    Ok(())
}

/// Claims due rows (see [`Claim`]).
pub(super) fn claim(tx: &Transaction<'_>, c: &Claim) -> rusqlite::Result<Vec<OutboxItem>> {
    let targets = serde_json::to_string(&c.targets).unwrap_or_else(|_| "[]".into());
    let mut stmt = tx.prepare_cached(&format!(
        "UPDATE outbox SET lease_token = ?1, lease_until = ?2 WHERE id IN (
             SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= ?3
                 AND lease_until <= ?3 AND target IN (SELECT value FROM json_each(?4))
             ORDER BY id LIMIT ?5)
         RETURNING {COLUMNS}"
    ))?;
    let mut items: Vec<OutboxItem> = stmt
        .query_map(
            params![c.token, ms(c.lease_until), ms(c.now), targets, c.limit as i64],
            item,
        )?
        .collect::<Result<_, _>>()?;
    items.sort_by_key(|i| i.id);
    Ok(items)
}

/// Records an outcome if `token` still holds row `id`; returns whether it did.
pub(super) fn finish(
    tx: &Transaction<'_>,
    id: i64,
    token: &str,
    outcome: &Delivery,
    now: DateTime<Utc>,
) -> rusqlite::Result<u64> {
    let (delivered, failed, next, error) = match outcome {
        Delivery::Delivered => (Some(ms(now)), None, None, None),
        Delivery::Retry { error, next_at } => (None, None, Some(ms(*next_at)), Some(error.as_str())),
        Delivery::Failed { error } => (None, Some(ms(now)), None, Some(error.as_str())),
    };
    Ok(tx
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, delivered_at = ?3, failed_at = ?4,
             next_at = COALESCE(?5, next_at), last_error = COALESCE(?6, last_error),
             lease_token = NULL, lease_until = 0
         WHERE id = ?1 AND lease_token = ?2",
        )?
        .execute(params![id, token, delivered, failed, next, error])? as u64)
}

/// Removes finished rows written before `cutoff` (retention).
pub(super) fn purge(tx: &Transaction<'_>, cutoff: DateTime<Utc>) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM outbox WHERE created_at < ?1 AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)",
        [ms(cutoff)],
    )
}

/// Rows by state.
pub(super) fn stats(conn: &Connection) -> rusqlite::Result<OutboxStats> {
    conn.prepare_cached(
        "SELECT
             COALESCE(SUM(delivered_at IS NULL AND failed_at IS NULL), 0),
             COALESCE(SUM(delivered_at IS NULL AND failed_at IS NULL AND attempts > 0), 0),
             COALESCE(SUM(delivered_at IS NOT NULL), 0),
             COALESCE(SUM(failed_at IS NOT NULL), 0)
         FROM outbox",
    )?
    .query_row([], |r| {
        let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        Ok(OutboxStats {
            pending: n(0)?,
            retrying: n(1)?,
            delivered: n(2)?,
            failed: n(3)?,
        })
    })
}

/// Rows whose last attempt failed, latest first.
pub(super) fn problems(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<OutboxItem>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE last_error IS NOT NULL AND delivered_at IS NULL
         ORDER BY COALESCE(failed_at, next_at) DESC, id DESC LIMIT ?1"
    ))?
    .query_map([limit as i64], item)?
    .collect()
}
