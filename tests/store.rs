//! One behaviour suite for every report store: each test below runs against SQLite (a file in
//! a temporary directory) and against PostgreSQL (a fresh database of its own on the test
//! server; skipped with a reason where none answers, failing under `CI=true`).
//! Then the PostgreSQL-only cases: migrations raced by two processes, two stores sharing
//! one database, outbox claims by two replicas never overlapping; and SQLite's WAL mode.

mod common;
use common::postgres as common_postgres;
use common::reports as common_reports;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use v8help::reports::{Reports, ReportsConfig};
use v8help::store::{
    ArchiveFile, Claim, Delivery, Forwarding, GroupQuery, LoginFailure, Mark, MarkState, NewReport, OutboxKind,
    OutboxStats, ReportFields, Session, Store, StoreError,
};

/// A store under test, with what keeps its database alive.
struct Fixture {
    store: Arc<dyn Store>,
    address: String,
    _keep: Box<dyn std::any::Any + Send>,
}

impl Fixture {
    fn sqlite() -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("sqlite:{}", dir.path().join("reports.db").display());
        Some(Fixture {
            store: v8help::store::open(&address).unwrap(),
            address,
            _keep: Box::new(dir),
        })
    }

    fn postgres(test: &str) -> Option<Fixture> {
        if !common_postgres::available(test) {
            return None;
        }
        let db = common_postgres::TestDb::create();
        Some(Fixture {
            store: v8help::store::open(&db.url).unwrap(),
            address: db.url.clone(),
            _keep: Box::new(db),
        })
    }

    /// The same database opened again, as a restarted service (or another replica) would.
    fn reopen(&self) -> Arc<dyn Store> {
        v8help::store::open(&self.address).unwrap()
    }

    /// The same database opened by a service that forwards as `forward` says.
    fn reopen_forwarding(&self, forward: Forwarding) -> Arc<dyn Store> {
        let options = v8help::store::OpenOptions {
            forward,
            ..Default::default()
        };
        v8help::store::open_with(&self.address, &options).unwrap()
    }
}

/// Runs each named test against both stores.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = super::Fixture::sqlite() else { return };
                    super::$name(f).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = super::Fixture::postgres(concat!("postgres::", stringify!($name))) else { return };
                    super::$name(f).await;
                }
            )*
        }
    };
}

both_stores!(
    a_report_reads_back_as_stored,
    groups_count_users_machines_and_versions,
    groups_filter_by_time_and_limit,
    a_groups_reports_are_latest_first,
    reports_per_hour_are_bucketed,
    login_failures_are_kept_and_counted_per_minute,
    marks_are_set_replaced_and_cleared,
    sessions_expire_and_end,
    purges_remove_the_oldest,
    concurrent_reports_all_commit,
    data_survives_reopening,
    the_intake_groups_and_marks_through_the_store,
    outbox_rows_are_written_with_their_report,
    outbox_rows_are_leased_retried_and_finished,
);

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + secs, 0).single().unwrap()
}

/// A ZIP holding a report.json and a screenshot.
fn archive(tag: &str) -> Bytes {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("report.json", options).unwrap();
    zip.write_all(format!(r#"{{"id":"{tag}","errorInfo":{{}}}}"#).as_bytes())
        .unwrap();
    zip.start_file("screenshot.png", options).unwrap();
    zip.write_all(format!("\u{89}PNG picture {tag}").as_bytes()).unwrap();
    Bytes::from(zip.finish().unwrap().into_inner())
}

fn report(group: &str, user: &str, machine: &str, when: DateTime<Utc>) -> NewReport {
    let archive = archive(&format!("{group}-{user}-{}", when.timestamp()));
    NewReport {
        received_at: when,
        client_addr: Some("127.0.0.1:50000".into()),
        group_key: group.into(),
        fields: ReportFields {
            report_time: Some(when.to_rfc3339()),
            report_uuid: Some(format!("uuid-{}", when.timestamp())),
            user_name: Some(user.into()),
            client_id: Some(machine.into()),
            os_version: Some("Windows 10".into()),
            app_name: Some("1CV8C".into()),
            app_version: Some("8.3.18.1128".into()),
            platform_type: Some("Windows_x86_64".into()),
            config_name: Some("Бухгалтерия".into()),
            config_version: Some("3.0.1".into()),
            error_text: Some(format!("Ошибка в {group} at {}", when.timestamp())),
            user_description: Some("<script>alert(1)</script>".into()),
            app_stack_hash: Some("abc".into()),
            client_stack_hash: None,
            server_stack_hash: None,
            screenshot: Some("screenshot.png".into()),
        },
        report_json: serde_json::json!({"id": "x", "unknown": {"kept": [1, 2]}}),
        files: vec![
            ArchiveFile {
                name: "report.json".into(),
                size: 30,
            },
            ArchiveFile {
                name: "screenshot.png".into(),
                size: 20,
            },
        ],
        archive,
    }
}

async fn a_report_reads_back_as_stored(f: Fixture) {
    let r = report("app:abc", "Иванов", "m1", at(0));
    let id = f.store.put_report(r.clone()).await.unwrap();
    let back = f.store.report(id).await.unwrap().expect("the report is there");
    assert_eq!(back.summary.id, id);
    assert_eq!(back.summary.fields, r.fields);
    assert_eq!(back.summary.received_at, r.received_at);
    assert_eq!(back.summary.group_key, "app:abc");
    assert_eq!(back.summary.archive_size, r.archive.len() as u64);
    assert_eq!(back.client_addr, r.client_addr);
    assert_eq!(back.report_json, r.report_json);
    assert_eq!(back.files, r.files);
    assert_eq!(f.store.archive(id).await.unwrap().as_deref(), Some(&r.archive[..]));
    let shot = f.store.archive_file(id, "screenshot.png").await.unwrap().unwrap();
    assert_eq!(
        shot,
        format!("\u{89}PNG picture app:abc-Иванов-{}", at(0).timestamp()).as_bytes()
    );
    assert_eq!(f.store.archive_file(id, "missing.txt").await.unwrap(), None);
    assert!(f.store.report(id + 1000).await.unwrap().is_none());
    assert!(f.store.archive(id + 1000).await.unwrap().is_none());
    assert_eq!(f.store.total_bytes().await.unwrap(), r.archive.len() as u64);
}

async fn groups_count_users_machines_and_versions(f: Fixture) {
    let s = &f.store;
    s.put_report(report("app:a", "u1", "m1", at(10))).await.unwrap();
    s.put_report(report("app:a", "u1", "m2", at(20))).await.unwrap();
    let mut other = report("app:a", "u2", "m2", at(30));
    other.fields.config_version = Some("3.0.2".into());
    other.fields.app_version = Some("8.3.24.1".into());
    s.put_report(other).await.unwrap();
    let mut newer = report("app:a", "u2", "m2", at(40));
    newer.fields.app_version = Some("8.3.24.1".into());
    s.put_report(newer).await.unwrap();
    s.put_report(report("text:b", "u3", "m3", at(5))).await.unwrap();

    let g = s.group("app:a").await.unwrap().expect("group app:a");
    assert_eq!((g.count, g.users, g.machines), (4, 2, 2));
    assert_eq!((g.first_seen, g.last_seen), (at(10), at(40)));
    assert_eq!(g.title.as_deref(), Some("Ошибка в app:a at 1790000040"));
    let configs: Vec<_> = g
        .configs
        .iter()
        .map(|c| (c.name.as_str(), c.version.as_str()))
        .collect();
    assert_eq!(configs, [("Бухгалтерия", "3.0.1"), ("Бухгалтерия", "3.0.2")]);
    // Equal counts sort by version, byte-wise.
    assert_eq!(g.platforms, ["8.3.18.1128", "8.3.24.1"]);
    assert!(g.mark.is_none());
    assert!(s.group("app:none").await.unwrap().is_none());

    let all = s.list_groups(GroupQuery::default()).await.unwrap();
    let keys: Vec<_> = all.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["app:a", "text:b"], "latest seen first");
    assert_eq!(all[0], g, "the list and the single read agree");
}

async fn groups_filter_by_time_and_limit(f: Fixture) {
    let s = &f.store;
    for (i, key) in ["k1", "k2", "k3", "k4"].iter().enumerate() {
        s.put_report(report(key, "u", "m", at(i as i64 * 100))).await.unwrap();
    }
    // Equal last-seen times sort by key.
    s.put_report(report("k0", "u", "m", at(300))).await.unwrap();
    let keys = |q| {
        let store = f.store.clone();
        async move {
            store
                .list_groups(q)
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.key)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(keys(GroupQuery::default()).await, ["k0", "k4", "k3", "k2", "k1"]);
    let since = GroupQuery {
        since: Some(at(150)),
        limit: None,
    };
    assert_eq!(keys(since).await, ["k0", "k4", "k3"]);
    let limited = GroupQuery {
        since: Some(at(150)),
        limit: Some(2),
    };
    assert_eq!(keys(limited).await, ["k0", "k4"]);
}

async fn a_groups_reports_are_latest_first(f: Fixture) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(f.store.put_report(report("g", "u", "m", at(i))).await.unwrap());
    }
    f.store.put_report(report("other", "u", "m", at(9))).await.unwrap();
    let listed: Vec<_> = f
        .store
        .group_reports("g", 3)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [ids[4], ids[3], ids[2]]);
    assert!(f.store.group_reports("none", 3).await.unwrap().is_empty());
}

async fn reports_per_hour_are_bucketed(f: Fixture) {
    let hour = 3600;
    let base = (at(0).timestamp() / hour + 1) * hour - 1_790_000_000;
    for s in [base, base + 10, base + hour + 5, base + 3 * hour] {
        f.store.put_report(report("g", "u", "m", at(s))).await.unwrap();
    }
    let buckets = f.store.reports_per_hour("g", at(base + 1)).await.unwrap();
    let got: Vec<_> = buckets.iter().map(|b| (b.start, b.count)).collect();
    assert_eq!(got, [(at(base), 1), (at(base + hour), 1), (at(base + 3 * hour), 1)]);
    let all = f.store.reports_per_hour("g", at(base)).await.unwrap();
    assert_eq!(all[0].count, 2);
}

async fn login_failures_are_kept_and_counted_per_minute(f: Fixture) {
    let minute = (at(0).timestamp() / 60 + 1) * 60 - 1_790_000_000;
    let event = |s: i64, body: &[u8]| LoginFailure {
        at: at(minute + s),
        client_addr: Some("10.0.0.1:1".into()),
        user_agent: Some("1C+Enterprise/8.3".into()),
        body: body.to_vec(),
        base: if s > 60 { Some("erp".into()) } else { None },
    };
    let events = vec![event(0, b"{}"), event(5, b"\xff\xfe not utf-8"), event(70, b"x")];
    f.store.put_login_failures(events.clone()).await.unwrap();
    let per_minute = f.store.login_failures_per_minute(at(minute)).await.unwrap();
    let got: Vec<_> = per_minute.iter().map(|b| (b.start, b.count)).collect();
    assert_eq!(got, [(at(minute), 2), (at(minute + 60), 1)]);
    let latest = f.store.login_failures(at(minute + 1), 10).await.unwrap();
    assert_eq!(
        latest,
        [events[2].clone(), events[1].clone()],
        "latest first, bytes kept"
    );
    assert_eq!(f.store.login_failures(at(0), 1).await.unwrap().len(), 1);
}

async fn marks_are_set_replaced_and_cleared(f: Fixture) {
    let s = &f.store;
    s.put_report(report("app:m", "u", "m", at(0))).await.unwrap();
    let known = Mark {
        state: MarkState::Known,
        note: "Исправим к понедельнику".into(),
        by: "admin".into(),
        at: at(5),
    };
    s.set_mark("app:m", known.clone()).await.unwrap();
    assert_eq!(s.group("app:m").await.unwrap().unwrap().mark, Some(known.clone()));
    let fixed = Mark {
        state: MarkState::Fixed,
        note: "fixed in 3.0.2".into(),
        by: "other".into(),
        at: at(6),
    };
    s.set_mark("app:m", fixed.clone()).await.unwrap();
    s.set_mark("app:no-reports-yet", known.clone()).await.unwrap();
    let mut marks = s.marks().await.unwrap();
    marks.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        marks,
        [("app:m".to_string(), fixed), ("app:no-reports-yet".to_string(), known)]
    );
    s.clear_mark("app:m").await.unwrap();
    assert!(s.group("app:m").await.unwrap().unwrap().mark.is_none());
    assert_eq!(s.marks().await.unwrap().len(), 1);
}

async fn sessions_expire_and_end(f: Fixture) {
    let s = &f.store;
    let session = |hash: &str, expires: i64| Session {
        token_hash: hash.into(),
        user: "admin".into(),
        created_at: at(0),
        expires_at: at(expires),
    };
    s.create_session(session("h1", 100)).await.unwrap();
    s.create_session(session("h2", 200)).await.unwrap();
    assert_eq!(s.session("h1", at(99)).await.unwrap(), Some(session("h1", 100)));
    assert_eq!(s.session("h1", at(100)).await.unwrap(), None, "expired at its instant");
    assert!(
        s.create_session(session("h1", 300)).await.is_err(),
        "a token is never issued twice"
    );
    assert_eq!(s.purge_sessions(at(150)).await.unwrap(), 1);
    s.delete_session("h2").await.unwrap();
    assert_eq!(s.session("h2", at(0)).await.unwrap(), None);
    assert_eq!(s.purge_sessions(at(1000)).await.unwrap(), 0);
}

async fn purges_remove_the_oldest(f: Fixture) {
    let s = &f.store;
    let mut sizes = Vec::new();
    for i in 0..6 {
        let r = report("g", "u", "m", at(i * 10));
        sizes.push(r.archive.len() as u64);
        s.put_report(r).await.unwrap();
    }
    s.put_login_failures(vec![LoginFailure {
        at: at(0),
        client_addr: None,
        user_agent: None,
        body: Vec::new(),
        base: None,
    }])
    .await
    .unwrap();
    let total: u64 = sizes.iter().sum();
    assert_eq!(s.total_bytes().await.unwrap(), total);
    let purged = s.purge_older_than(at(20)).await.unwrap();
    assert_eq!(
        (purged.reports, purged.bytes, purged.login_failures),
        (2, sizes[0] + sizes[1], 1)
    );
    // Four left; a limit one byte under the newest three's size removes the oldest two.
    let keep = sizes[4] + sizes[5] + sizes[3] - 1;
    let purged = s.purge_to_size(keep).await.unwrap();
    assert_eq!((purged.reports, purged.bytes), (2, sizes[2] + sizes[3]));
    assert_eq!(s.total_bytes().await.unwrap(), sizes[4] + sizes[5]);
    assert_eq!(s.group("g").await.unwrap().unwrap().first_seen, at(40));
    assert_eq!(s.purge_to_size(u64::MAX).await.unwrap().reports, 0);
}

async fn concurrent_reports_all_commit(f: Fixture) {
    let puts = (0..40).map(|i| {
        let store = f.store.clone();
        tokio::spawn(async move { store.put_report(report("g", &format!("u{i}"), "m", at(i))).await })
    });
    let mut ids = Vec::new();
    for p in puts {
        ids.push(p.await.unwrap().unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every report got its own number");
    let g = f.store.group("g").await.unwrap().unwrap();
    assert_eq!((g.count, g.users), (40, 40));
}

async fn data_survives_reopening(f: Fixture) {
    let r = report("g", "u", "m", at(0));
    let id = f.store.put_report(r.clone()).await.unwrap();
    let again = f.reopen();
    assert_eq!(again.archive(id).await.unwrap().as_deref(), Some(&r.archive[..]));
    let id2 = again.put_report(report("g", "u", "m", at(1))).await.unwrap();
    assert!(id2 > id, "numbers keep growing after a restart");
}

async fn the_intake_groups_and_marks_through_the_store(f: Fixture) {
    let reports = Reports::new(f.store.clone(), ReportsConfig::with_db(&f.address))
        .await
        .unwrap();
    let take = |changes: Vec<(&'static str, serde_json::Value)>, when| {
        let reports = reports.clone();
        async move {
            let archive = Bytes::from(common_reports::report_archive(&common_reports::report_json(&changes)));
            reports.take(archive, Some("127.0.0.1:1".into()), when).await.unwrap()
        }
    };
    let a = take(vec![], at(0)).await;
    let b = take(vec![("/sessionInfo/userName", json!("Петров"))], at(10)).await;
    let by_text = vec![
        ("/errorInfo/applicationErrorInfo/stackHash", json!("")),
        ("/errorInfo/systemErrorInfo/clientStackHash", json!("")),
        ("/errorInfo/systemErrorInfo/serverStackHash", json!("")),
        ("/errorInfo/applicationErrorInfo/errors", json!([["Нет связи", []]])),
    ];
    let c = take(by_text, at(20)).await;
    assert!(a < b && b < c);
    let groups = f.store.list_groups(GroupQuery::default()).await.unwrap();
    assert_eq!(groups.len(), 2, "grouped by stack hash, then by text: {groups:?}");
    assert!(groups[0].key.starts_with("text:"));
    assert_eq!((groups[1].count, groups[1].users), (2, 2));
    let key = groups[1].key.clone();

    let mark = Mark {
        state: MarkState::Known,
        note: "Известная ошибка, исправим в 3.0.151".into(),
        by: "anna".into(),
        at: at(30),
    };
    reports.mark(&key, Some(mark.clone())).await.unwrap();
    assert_eq!(f.store.group(&key).await.unwrap().unwrap().mark, Some(mark.clone()));
    assert_eq!(reports.marks().all.get(&key), Some(&mark));
    // A mark cleared elsewhere (another replica, the CLI) reaches getInfo's memory on reload.
    f.reopen().clear_mark(&key).await.unwrap();
    assert!(reports.marks().all.contains_key(&key), "memory only changes on reload");
    reports.reload_marks().await.unwrap();
    assert!(reports.marks().all.is_empty());
}

fn forwarding(threshold: Option<u64>) -> Forwarding {
    Forwarding {
        every_report: vec!["sentry".into()],
        group_events: vec!["webhook:a".into()],
        threshold,
    }
}

fn claim(token: &str, now: DateTime<Utc>, limit: usize) -> Claim {
    Claim {
        targets: vec!["sentry".into(), "webhook:a".into()],
        now,
        lease_until: now + chrono::Duration::seconds(60),
        token: token.into(),
        limit,
    }
}

async fn outbox_rows_are_written_with_their_report(f: Fixture) {
    let s = f.reopen_forwarding(forwarding(Some(3)));
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(s.put_report(report("g1", "u", "m", at(i))).await.unwrap());
    }
    let other = s.put_report(report("g2", "u", "m", at(5))).await.unwrap();
    let items = s.claim_outbox(claim("t", at(100), 100)).await.unwrap();
    let sentry: Vec<_> = items
        .iter()
        .filter(|i| i.target == "sentry")
        .map(|i| (i.kind, i.report_id, i.group_key.as_str()))
        .collect();
    let mut expected: Vec<_> = ids.iter().map(|id| (OutboxKind::Report, Some(*id), "g1")).collect();
    expected.push((OutboxKind::Report, Some(other), "g2"));
    assert_eq!(sentry, expected, "one row per report for Sentry");
    let hooks: Vec<_> = items
        .iter()
        .filter(|i| i.target == "webhook:a")
        .map(|i| (i.kind, i.group_key.as_str(), i.count, i.report_id))
        .collect();
    assert_eq!(
        hooks,
        [
            (OutboxKind::NewGroup, "g1", 1, Some(ids[0])),
            (OutboxKind::Threshold, "g1", 3, Some(ids[2])),
            (OutboxKind::NewGroup, "g2", 1, Some(other)),
        ],
        "a new group and the threshold once each, not again at the fourth report"
    );
    assert!(items.iter().all(|i| i.attempts == 0 && i.created_at == i.next_at));
    // A service that forwards nothing writes no rows.
    f.store.put_report(report("g3", "u", "m", at(6))).await.unwrap();
    let stats = s.outbox_stats().await.unwrap();
    assert_eq!(stats.pending, items.len() as u64);
}

async fn outbox_rows_are_leased_retried_and_finished(f: Fixture) {
    let s = f.reopen_forwarding(Forwarding {
        every_report: vec!["sentry".into()],
        ..Forwarding::default()
    });
    for i in 0..3 {
        s.put_report(report("g", "u", "m", at(i))).await.unwrap();
    }
    let a = s.claim_outbox(claim("a", at(10), 2)).await.unwrap();
    assert_eq!(a.len(), 2, "the oldest two");
    let b = s.claim_outbox(claim("b", at(20), 10)).await.unwrap();
    assert_eq!(b.len(), 1, "the leased ones are not claimed again");
    assert!(a.iter().all(|i| i.id < b[0].id));
    assert!(s.claim_outbox(claim("c", at(20), 10)).await.unwrap().is_empty());

    assert!(
        !s.finish_outbox(a[0].id, "b", Delivery::Delivered, at(30))
            .await
            .unwrap(),
        "only the lease holder records an outcome"
    );
    assert!(
        s.finish_outbox(a[0].id, "a", Delivery::Delivered, at(30))
            .await
            .unwrap()
    );
    let retry = Delivery::Retry {
        error: "HTTP 503: <busy>".into(),
        next_at: at(200),
    };
    assert!(s.finish_outbox(a[1].id, "a", retry, at(30)).await.unwrap());
    let refused = Delivery::Failed {
        error: "HTTP 400: bad envelope".into(),
    };
    assert!(s.finish_outbox(b[0].id, "b", refused, at(31)).await.unwrap());
    assert_eq!(
        s.outbox_stats().await.unwrap(),
        OutboxStats {
            pending: 1,
            retrying: 1,
            delivered: 1,
            failed: 1
        }
    );
    let problems = s.outbox_problems(10).await.unwrap();
    let shown: Vec<_> = problems
        .iter()
        .map(|p| (p.id, p.attempts, p.last_error.as_deref(), p.failed_at.is_some()))
        .collect();
    assert_eq!(
        shown,
        [
            (a[1].id, 1, Some("HTTP 503: <busy>"), false),
            (b[0].id, 1, Some("HTTP 400: bad envelope"), true),
        ]
    );

    // The retry time survives a restart.
    drop(s);
    let again = f.reopen_forwarding(Forwarding::default());
    assert!(again.claim_outbox(claim("d", at(199), 10)).await.unwrap().is_empty());
    let due = again.claim_outbox(claim("d", at(200), 10)).await.unwrap();
    assert_eq!(
        due.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
        [(a[1].id, 1)]
    );
    // A claimer that died without an outcome: once its lease ran out, the row is claimed again.
    assert!(again.claim_outbox(claim("e", at(259), 10)).await.unwrap().is_empty());
    let reclaimed = again.claim_outbox(claim("e", at(260), 10)).await.unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert!(
        !again
            .finish_outbox(a[1].id, "d", Delivery::Delivered, at(261))
            .await
            .unwrap()
    );
    assert!(
        again
            .finish_outbox(a[1].id, "e", Delivery::Delivered, at(261))
            .await
            .unwrap()
    );
    // Retention removes finished rows with the reports.
    again.purge_older_than(at(1000)).await.unwrap();
    assert_eq!(again.outbox_stats().await.unwrap(), OutboxStats::default());
}

// PostgreSQL only.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_claims_of_two_replicas_never_overlap() {
    let Some(f) = Fixture::postgres("postgres_outbox_claims_of_two_replicas_never_overlap") else {
        return;
    };
    let plan = Forwarding {
        every_report: vec!["sentry".into()],
        ..Forwarding::default()
    };
    let writer = f.reopen_forwarding(plan);
    for i in 0..120 {
        writer.put_report(report("g", "u", "m", at(i))).await.unwrap();
    }
    let replicas = [f.reopen(), f.reopen()];
    let claimers: Vec<_> = (0..6)
        .map(|n| {
            let store = replicas[n % 2].clone();
            tokio::spawn(async move {
                let token = format!("claimer-{n}");
                let mut mine = Vec::new();
                loop {
                    let items = store.claim_outbox(claim(&token, at(500), 3)).await.unwrap();
                    if items.is_empty() {
                        return mine;
                    }
                    for i in items {
                        assert!(
                            store
                                .finish_outbox(i.id, &token, Delivery::Delivered, at(501))
                                .await
                                .unwrap()
                        );
                        mine.push(i.id);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (120, 120), "every row claimed by exactly one claimer");
    assert_eq!(replicas[0].outbox_stats().await.unwrap().delivered, 120);
}

#[test]
fn postgres_migrations_run_once_when_openers_race() {
    if !common_postgres::available("postgres_migrations_run_once_when_openers_race") {
        return;
    }
    let db = common_postgres::TestDb::create();
    // Four openers, each with its own connections, race on the same empty database.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || v8help::store::open(&url).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join().unwrap().expect("every opener succeeds");
    }
    let versions = common_postgres::query_texts(&db.url, "SELECT version::text FROM schema_migrations ORDER BY 1");
    assert_eq!(versions, ["1", "2"], "each migration recorded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_stores_on_one_database_share_everything() {
    let Some(f) = Fixture::postgres("postgres_two_stores_on_one_database_share_everything") else {
        return;
    };
    let a = f.store.clone();
    let b = f.reopen();
    a.put_report(report("g", "u1", "m1", at(0))).await.unwrap();
    b.put_report(report("g", "u2", "m2", at(1))).await.unwrap();
    for s in [&a, &b] {
        let g = s.group("g").await.unwrap().unwrap();
        assert_eq!((g.count, g.users, g.machines), (2, 2, 2));
    }
    let mark = Mark {
        state: MarkState::Known,
        note: "known".into(),
        by: "admin".into(),
        at: at(2),
    };
    a.set_mark("g", mark.clone()).await.unwrap();
    assert_eq!(b.marks().await.unwrap(), [("g".to_string(), mark)]);
    a.create_session(Session {
        token_hash: "t".into(),
        user: "admin".into(),
        created_at: at(0),
        expires_at: at(1000),
    })
    .await
    .unwrap();
    assert_eq!(b.session("t", at(1)).await.unwrap().unwrap().user, "admin");
}

#[test]
fn postgres_password_comes_from_the_file() {
    if !common_postgres::available("postgres_password_comes_from_the_file") {
        return;
    }
    let db = common_postgres::TestDb::create();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let options = v8help::store::OpenOptions {
        password_file: Some(empty.clone()),
        spool: None,
        ..Default::default()
    };
    let err = v8help::store::open_with(&db.url, &options).unwrap_err();
    assert!(err.to_string().contains("the password file is empty"), "{err}");
    let missing = v8help::store::OpenOptions {
        password_file: Some(dir.path().join("missing")),
        spool: None,
        ..Default::default()
    };
    let err = v8help::store::open_with(&db.url, &missing).unwrap_err();
    assert!(err.to_string().contains("cannot read the password file"), "{err}");
    // Trust auth accepts any password: the file is read and the store opens.
    let secret = dir.path().join("password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let ok = v8help::store::OpenOptions {
        password_file: Some(secret),
        spool: None,
        ..Default::default()
    };
    v8help::store::open_with(&db.url, &ok).expect("opens with the password from the file");
    let sqlite = format!("sqlite:{}", dir.path().join("r.db").display());
    assert!(matches!(
        v8help::store::open_with(&sqlite, &ok),
        Err(StoreError::Address { .. })
    ));
}

#[test]
fn postgres_unreachable_is_reported_as_unavailable() {
    // A port nothing listens on: opening fails, naming the address without its password.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://v8help:hunter2@127.0.0.1:{port}/reports");
    let err = v8help::store::open(&url).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unreachable"), "{text}");
    assert!(!text.contains("hunter2") && text.contains("v8help:***@"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reopening_applies_no_migration_twice_and_stays_in_wal() {
    let f = Fixture::sqlite().unwrap();
    let id = f.store.put_report(report("g", "u", "m", at(0))).await.unwrap();
    let again = f.reopen();
    assert!(again.report(id).await.unwrap().is_some());
    let path = f.address.strip_prefix("sqlite:").unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [1, 2, 3]);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}
