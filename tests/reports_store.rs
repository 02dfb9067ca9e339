//! The [`Store`] contract, run against the real SQLite store (a PostgreSQL store runs the
//! same `suite`): groups and their figures, reports and archives, marks, sessions, login
//! failures, purges, migrations, and concurrent writers sharing commits.

mod common;
use common::reports as common_reports;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use common_reports::{report_archive, report_json};
use serde_json::json;
use v8help::reports::{Reports, ReportsConfig};
use v8help::store::{GroupQuery, LoginFailure, Mark, MarkState, Session, Store};

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, h, m, 0).unwrap()
}

async fn take(reports: &Reports, changes: &[(&str, serde_json::Value)], now: DateTime<Utc>) -> i64 {
    let archive = Bytes::from(report_archive(&report_json(changes)));
    reports.take(archive, Some("127.0.0.1:1".into()), now).await.unwrap()
}

/// Everything the service and the console rely on, for any backend.
async fn suite(store: Arc<dyn Store>, config: ReportsConfig) {
    let reports = Reports::new(store.clone(), config).await.unwrap();
    let a = take(&reports, &[], at(9, 0)).await;
    let b = take(&reports, &[("/sessionInfo/userName", json!("Петров"))], at(9, 30)).await;
    let other = [
        ("/errorInfo/applicationErrorInfo/stackHash", json!("")),
        ("/errorInfo/systemErrorInfo/clientStackHash", json!("")),
        ("/errorInfo/systemErrorInfo/serverStackHash", json!("")),
        ("/errorInfo/applicationErrorInfo/errors", json!([["Нет связи", []]])),
    ];
    let c = take(&reports, &other, at(11, 5)).await;
    assert!(a < b && b < c);

    let all = store.list_groups(GroupQuery::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].key.starts_with("text:"), "latest first: {all:?}");
    assert_eq!(all[1].count, 2);
    assert_eq!(all[1].users, 2);
    assert_eq!(all[1].machines, 1);
    assert_eq!((all[1].first_seen, all[1].last_seen), (at(9, 0), at(9, 30)));
    let recent = store
        .list_groups(GroupQuery {
            since: Some(at(10, 0)),
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    let one = store
        .list_groups(GroupQuery {
            since: None,
            limit: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    let key = all[1].key.clone();
    assert_eq!(store.group(&key).await.unwrap().unwrap().count, 2);
    assert!(store.group("app:NOPE").await.unwrap().is_none());
    let hours = store.reports_per_hour(&key, at(0, 0)).await.unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!((hours[0].start, hours[0].count), (at(9, 0), 2));

    // marks, as getInfo sees them
    let mark = Mark {
        state: MarkState::Fixed,
        note: "fixed in 3.0.151".into(),
        by: "anna".into(),
        at: at(12, 0),
    };
    reports.mark(&key, Some(mark.clone())).await.unwrap();
    assert_eq!(store.group(&key).await.unwrap().unwrap().mark, Some(mark.clone()));
    assert_eq!(reports.marks().all.get(&key), Some(&mark));
    reports.mark(&key, None).await.unwrap();
    assert!(store.marks().await.unwrap().is_empty());

    // sessions
    let s = Session {
        token_hash: "h1".into(),
        user: "anna".into(),
        created_at: at(8, 0),
        expires_at: at(20, 0),
    };
    store.create_session(s.clone()).await.unwrap();
    assert_eq!(store.session("h1", at(19, 0)).await.unwrap(), Some(s));
    assert_eq!(store.session("h1", at(20, 0)).await.unwrap(), None, "expired");
    assert_eq!(store.purge_sessions(at(21, 0)).await.unwrap(), 1);
    store
        .create_session(Session {
            token_hash: "h2".into(),
            user: "anna".into(),
            created_at: at(8, 0),
            expires_at: at(20, 0),
        })
        .await
        .unwrap();
    store.delete_session("h2").await.unwrap();
    assert_eq!(store.session("h2", at(9, 0)).await.unwrap(), None);

    // login failures
    let event = |m| LoginFailure {
        at: at(10, m),
        client_addr: Some("10.0.0.5:50000".into()),
        user_agent: Some("1CV8C".into()),
        body: b"\xff not utf-8".to_vec(),
        base: None,
    };
    store
        .put_login_failures(vec![event(1), event(1), event(3)])
        .await
        .unwrap();
    let per_minute = store.login_failures_per_minute(at(10, 0)).await.unwrap();
    assert_eq!(
        per_minute.iter().map(|b| (b.start, b.count)).collect::<Vec<_>>(),
        [(at(10, 1), 2), (at(10, 3), 1)]
    );
    assert_eq!(store.login_failures(at(10, 2), 10).await.unwrap().len(), 1);

    // purges and size
    let total = store.total_bytes().await.unwrap();
    let sizes: Vec<u64> = {
        let mut v = Vec::new();
        for id in [a, b, c] {
            v.push(store.report(id).await.unwrap().unwrap().summary.archive_size);
        }
        v
    };
    assert_eq!(total, sizes.iter().sum::<u64>());
    let purged = store.purge_older_than(at(9, 15)).await.unwrap();
    assert_eq!((purged.reports, purged.bytes), (1, sizes[0]));
    assert!(
        store.archive(a).await.unwrap().is_none(),
        "the archive goes with its report"
    );
    assert_eq!(purged.login_failures, 0);
    let purged = store.purge_to_size(sizes[2]).await.unwrap();
    assert_eq!(purged.reports, 1, "the oldest goes first");
    assert!(store.report(b).await.unwrap().is_none());
    assert!(store.report(c).await.unwrap().is_some());
    assert_eq!(store.total_bytes().await.unwrap(), sizes[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("sqlite:{}", dir.path().join("r.db").display());
    suite(v8help::store::open(&addr).unwrap(), ReportsConfig::with_db(&addr)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_all_commit_and_reopening_applies_no_migration_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let addr = format!("sqlite:{}", path.display());
    let store = v8help::store::open(&addr).unwrap();
    let reports = Reports::new(store.clone(), ReportsConfig::with_db(&addr))
        .await
        .unwrap();
    let now = Utc::now().trunc_subsecs(3);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let reports = reports.clone();
            tokio::spawn(async move {
                let id = format!("00000000-0000-4000-8000-{i:012}");
                take(&reports, &[("/id", json!(id))], now - Duration::seconds(i)).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let group = &store.list_groups(GroupQuery::default()).await.unwrap()[0];
    assert_eq!(group.count, 200);
    drop((reports, store));

    let again = v8help::store::open(&addr).unwrap();
    assert_eq!(again.list_groups(GroupQuery::default()).await.unwrap()[0].count, 200);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [1]);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}
