//! The PostgreSQL side of the [`crate::store::outbox`]: rows written in the report's
//! transaction, claims with `FOR UPDATE SKIP LOCKED` under a lease (so that replicas sharing
//! the database never claim the same row while its lease lives), outcomes recorded only by
//! the lease's holder, and the reads of the console and `/metrics`.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{PgError, count, ms, time};
use crate::store::{Claim, Delivery, Forwarding, OutboxItem, OutboxKind, OutboxStats, ReportId};

const COLUMNS: &str = "id, target, kind, group_key, report_id, count, created_at, next_at, attempts, last_error,
    delivered_at, failed_at";

fn item(row: &Row) -> OutboxItem {
    let kind: String = row.get(2);
    OutboxItem {
        id: row.get(0),
        target: row.get(1),
        kind: OutboxKind::parse(&kind).unwrap_or(OutboxKind::Report),
        group_key: row.get(3),
        report_id: row.get(4),
        count: count(row.get(5)),
        created_at: time(row.get(6)),
        next_at: time(row.get(7)),
        attempts: row.get::<_, i32>(8).max(0) as u32,
        last_error: row.get(9),
        delivered_at: row.get::<_, Option<i64>>(10).map(time),
        failed_at: row.get::<_, Option<i64>>(11).map(time),
    }
}

/// Writes the outbox rows report `id` brings, inside its transaction. A group event another
/// replica wrote first is left as it is (the unique index and `ON CONFLICT DO NOTHING`).
pub(super) async fn on_report(
    tx: &deadpool_postgres::Transaction<'_>,
    plan: &Forwarding,
    id: ReportId,
    group: &str,
    at: DateTime<Utc>,
) -> Result<(), PgError> {
    if plan.is_empty() {
        return Ok(());
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO outbox (target, kind, group_key, report_id, count, created_at, next_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (target, kind, group_key) WHERE kind <> 'report' DO NOTHING",
        )
        .await?;
    for target in &plan.every_report {
        tx.execute(
            &insert,
            &[target, &OutboxKind::Report.as_str(), &group, &id, &0i64, &ms(at)],
        )
        .await?;
    }
    if plan.group_events.is_empty() {
        return Ok(());
    }
    let n: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM (SELECT 1 FROM reports WHERE group_key = $1 LIMIT $2) t",
            &[&group, &(plan.count_cap() as i64)],
        )
        .await?
        .get(0);
    for kind in plan.group_events_at(count(n)) {
        for target in &plan.group_events {
            tx.execute(&insert, &[target, &kind.as_str(), &group, &id, &n, &ms(at)])
                .await?;
        }
    }
    Ok(())
}

/// Claims due rows (see [`Claim`]): rows locked by another claimer's statement are skipped,
/// rows under another live lease are not due.
pub(super) async fn claim(conn: &deadpool_postgres::Object, c: &Claim) -> Result<Vec<OutboxItem>, PgError> {
    let stmt = conn
        .prepare_cached(&format!(
            "UPDATE outbox SET lease_token = $1, lease_until = $2 WHERE id IN (
                 SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= $3
                     AND lease_until <= $3 AND target = ANY($4)
                 ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        ))
        .await?;
    let rows = conn
        .query(
            &stmt,
            &[&c.token, &ms(c.lease_until), &ms(c.now), &c.targets, &(c.limit as i64)],
        )
        .await?;
    let mut items: Vec<OutboxItem> = rows.iter().map(item).collect();
    items.sort_by_key(|i| i.id);
    Ok(items)
}

/// Records an outcome if `token` still holds row `id`; returns whether it did.
pub(super) async fn finish(
    conn: &deadpool_postgres::Object,
    id: i64,
    token: &str,
    outcome: &Delivery,
    now: DateTime<Utc>,
) -> Result<bool, PgError> {
    let (delivered, failed, next, error) = match outcome {
        Delivery::Delivered => (Some(ms(now)), None, None, None),
        Delivery::Retry { error, next_at } => (None, None, Some(ms(*next_at)), Some(error.as_str())),
        Delivery::Failed { error } => (None, Some(ms(now)), None, Some(error.as_str())),
    };
    let stmt = conn
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, delivered_at = $3, failed_at = $4,
                 next_at = COALESCE($5, next_at), last_error = COALESCE($6, last_error),
                 lease_token = NULL, lease_until = 0
             WHERE id = $1 AND lease_token = $2",
        )
        .await?;
    Ok(conn
        .execute(&stmt, &[&id, &token, &delivered, &failed, &next, &error])
        .await?
        > 0)
}

/// Removes finished rows written before `cutoff` (retention).
pub(super) async fn purge(tx: &deadpool_postgres::Transaction<'_>, cutoff: DateTime<Utc>) -> Result<u64, PgError> {
    Ok(tx
        .execute(
            "DELETE FROM outbox WHERE created_at < $1 AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)",
            &[&ms(cutoff)],
        )
        .await?)
}

/// Rows by state.
pub(super) async fn stats(conn: &deadpool_postgres::Object) -> Result<OutboxStats, PgError> {
    let row = conn
        .query_one(
            "SELECT
                 COUNT(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL),
                 COUNT(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL AND attempts > 0),
                 COUNT(*) FILTER (WHERE delivered_at IS NOT NULL),
                 COUNT(*) FILTER (WHERE failed_at IS NOT NULL)
             FROM outbox",
            &[],
        )
        .await?;
    Ok(OutboxStats {
        pending: count(row.get(0)),
        retrying: count(row.get(1)),
        delivered: count(row.get(2)),
        failed: count(row.get(3)),
    })
}

/// Rows whose last attempt failed, latest first.
pub(super) async fn problems(conn: &deadpool_postgres::Object, limit: usize) -> Result<Vec<OutboxItem>, PgError> {
    let rows = conn
        .query(
            &format!(
                "SELECT {COLUMNS} FROM outbox WHERE last_error IS NOT NULL AND delivered_at IS NULL
                 ORDER BY COALESCE(failed_at, next_at) DESC, id DESC LIMIT $1"
            ),
            &[&(limit as i64)],
        )
        .await?;
    Ok(rows.iter().map(item).collect())
}
