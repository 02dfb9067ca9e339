//! PostgreSQL stopped during a flood of reports and started again: every report the store
//! acknowledged is in the database afterwards (through the spool), and the store says it is
//! unreachable while it is. And `v8help serve` started while PostgreSQL is down: it serves
//! the message and getInfo, spools reports, and connects (migrations, marks, replay) once
//! the database is up. Runs on a cluster of the test's own (initdb + pg_ctl on a free port),
//! never the machine's main server.

mod common;
use common::postgres as common_postgres;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use v8help::store::{GroupQuery, NewReport, OpenOptions, ReportFields, Store};

fn report(n: u64) -> NewReport {
    NewReport {
        received_at: Utc::now(),
        client_addr: None,
        group_key: format!("flood:{}", n % 7),
        fields: ReportFields {
            user_name: Some(format!("u{n}")),
            report_uuid: Some(format!("{n}")),
            ..ReportFields::default()
        },
        report_json: serde_json::Value::Null,
        files: Vec::new(),
        archive: Bytes::from(vec![(n % 251) as u8; 4096 + (n % 100) as usize]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_during_a_flood_loses_no_acknowledged_report() {
    let Some(cluster) = common_postgres::Cluster::start("postgres_stopped_during_a_flood_loses_no_acknowledged_report")
    else {
        return;
    };
    let db = common_postgres::TestDb::create_on(&cluster.url);
    let spool = tempfile::tempdir().unwrap();
    let options = OpenOptions {
        password_file: None,
        spool: Some((spool.path().to_path_buf(), 256 * 1024 * 1024)),
        ..OpenOptions::default()
    };
    let store: Arc<dyn Store> = v8help::store::open_with(&db.url, &options).unwrap();

    // Eight clients push reports until told to stop, each counting what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8u64)
        .map(|c| {
            let store = store.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut n = c;
                while !stop.load(Ordering::Relaxed) {
                    if store.put_report(report(n)).await.is_ok() {
                        acked.push(n);
                    }
                    n += 8;
                    // A client pushes a few hundred reports a second, not as fast as it can.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                acked
            })
        })
        .collect();
    let total = || async {
        store
            .list_groups(GroupQuery::default())
            .await
            .map(|gs| gs.iter().map(|g| g.count).sum::<u64>())
            .ok()
    };
    common::wait_for(Duration::from_secs(30), "reports reaching the database", || async {
        total().await.filter(|&n| n >= 50)
    })
    .await;

    let cluster = Arc::new(cluster);
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop()).await.unwrap();
    let down = common::wait_for(
        Duration::from_secs(30),
        "reports spooled while the database is down",
        || async {
            let h = store.health();
            (h.spooled >= 200 && !h.reachable).then_some(h)
        },
    )
    .await;
    eprintln!("while down: {down:?}");
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.restart()).await.unwrap();
    // The flood goes on a little after the restart, then stops.
    common::wait_for(Duration::from_secs(30), "reports stored after the restart", || async {
        total().await
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for c in clients {
        acked.extend(c.await.unwrap());
    }
    eprintln!(
        "flood stopped: {} acknowledged, {} spooled",
        acked.len(),
        store.health().spooled
    );
    common::wait_for(Duration::from_secs(120), "the spool to drain", || async {
        (store.health().spooled == 0).then_some(())
    })
    .await;
    assert!(store.health().reachable, "reachable again: {:?}", store.health());

    // Every acknowledged report is there. (A commit cut off by the stop before its answer
    // may also have been spooled: stored twice rather than lost.)
    let numbers = common_postgres::query_texts(&db.url, "SELECT report_uuid FROM reports ORDER BY id");
    let in_order: Vec<u64> = numbers.iter().map(|n| n.parse().unwrap()).collect();
    let stored: std::collections::BTreeSet<u64> = in_order.iter().copied().collect();
    let missing: Vec<_> = acked.iter().filter(|n| !stored.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged reports lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    assert!(in_order.len() - stored.len() <= 8, "at most one duplicate per client");
    // Each client's reports arrived in the order it sent them.
    for c in 0..8 {
        let mine: Vec<_> = in_order.iter().filter(|n| *n % 8 == c).collect();
        assert!(mine.windows(2).all(|w| w[0] <= w[1]), "client {c} out of order");
    }
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_while_postgres_is_down_and_connects_when_it_is_up() {
    use common::reports::{http_post, metric, report_archive, report_json};
    use serde_json::json;

    let Some(cluster) =
        common_postgres::Cluster::start("serve_starts_while_postgres_is_down_and_connects_when_it_is_up")
    else {
        return;
    };
    cluster.stop();
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("message.json");
    std::fs::write(
        &message,
        json!({"userMessage": "Плановые работы до 14:00", "expires": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339()})
            .to_string(),
    )
    .unwrap();
    let v8help = common::serve_replicas(&cluster.url, dir.path(), &[vec![]], &[]).remove(0);
    let addr = v8help.http.unwrap();

    // Down: the message and getInfo are answered, reports are spooled (200), /metrics says so.
    let served = common::http_get(addr, "/message.json").await;
    assert_eq!(served.status, 200);
    assert_eq!(served.json()["userMessage"], "Плановые работы до 14:00");
    let hash = "C0FFEE00C0FFEE00C0FFEE00C0FFEE00";
    let get_info = || async {
        let body = json!({"appStackHash": hash}).to_string();
        let r = http_post(addr, "/reports/getInfo", &[("content-type", "application/json")], body).await;
        assert_eq!(r.status, 200);
        r.json()
    };
    assert_eq!(get_info().await["needSendReport"], true);
    for _ in 0..3 {
        let r = http_post(
            addr,
            "/reports/pushReport",
            &[("content-type", "application/zip")],
            report_archive(&report_json(&[])),
        )
        .await;
        assert_eq!(r.status, 200, "spooled while the database is down");
    }
    let scrape = common::http_get(addr, "/metrics").await;
    assert_eq!(metric(scrape.text(), "v8help_store_reachable"), Some(0.0));
    assert_eq!(metric(scrape.text(), "v8help_store_spooled_reports"), Some(3.0));

    // Up: the spool is replayed into the migrated database, and a mark written there
    // reaches getInfo.
    cluster.restart();
    common::wait_for(Duration::from_secs(30), "the spool replayed", || async {
        let s = common::http_get(addr, "/metrics").await;
        (metric(s.text(), "v8help_store_spooled_reports") == Some(0.0)).then_some(())
    })
    .await;
    let count = common_postgres::query_texts(&cluster.url, "SELECT COUNT(*)::text FROM reports");
    assert_eq!(count, ["3"]);
    let versions = common_postgres::query_texts(&cluster.url, "SELECT version::text FROM schema_migrations ORDER BY 1");
    assert_eq!(versions, ["1", "2"]);
    common_postgres::admin(
        &cluster.url,
        &format!(
            "INSERT INTO marks (group_key, state, note, set_by, set_at) VALUES ('app:{hash}', 'known', 'Уже чиним', 'anna', 0)"
        ),
    )
    .unwrap();
    let answer = common::wait_for(Duration::from_secs(10), "getInfo to answer by the mark", || async {
        let a = get_info().await;
        (a["needSendReport"] == false).then_some(a)
    })
    .await;
    assert_eq!(answer["userMessage"], "Уже чиним");
    let scrape = common::http_get(addr, "/metrics").await;
    assert_eq!(metric(scrape.text(), "v8help_store_reachable"), Some(1.0));
    drop(v8help);
}
