//! The real `v8help` binary with error reports: kill -9 in the middle of a flood of uploads
//! loses no acknowledged report and leaves a database that opens without repair; a refused
//! archive leaves a log line; `v8help reports list/show/export/purge` on the database.

mod common;
use common::reports as common_reports;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use common::{Binary, Pki};
use common_reports::{report_archive, report_json, zip};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::json;
use v8help::reports::{Reports, ReportsConfig};

/// One pushReport on a fresh connection; `None` when the service is gone.
async fn push(addr: std::net::SocketAddr, pki: &Pki, archive: Vec<u8>) -> Option<u16> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let tls = tokio_rustls::TlsConnector::from(common::client_config(&pki.ca, false))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.ok()?;
    tokio::spawn(conn);
    let req = http::Request::post("/reports/pushReport")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::from(archive)))
        .ok()?;
    let response = sender.send_request(req).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_flood_loses_no_acknowledged_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("reports.db");
    let pki = Arc::new(Pki::new());
    let service = Binary::serve(
        &[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--cert".as_ref(),
            pki.cert_path.as_os_str(),
            "--key".as_ref(),
            pki.key_path.as_os_str(),
            "--tz".as_ref(),
            "UTC".as_ref(),
        ],
        &[("V8HELP_REPORTS_DB", &format!("sqlite:{}", db.display()))],
    );
    let addr = service.addr();

    // A refused archive is logged with why.
    let bomb = zip(&[("report.json", b"{}"), ("zeros", &vec![0u8; 2 << 20])]);
    assert_eq!(push(addr, &pki, bomb).await, Some(400));
    service.wait_log("pushReport refused", Duration::from_secs(10));

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (pki, stop) = (pki.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("00000000-0000-4000-8000-{c:04}{n:08}");
                    let archive = report_archive(&report_json(&[("/id", json!(id))]));
                    match push(addr, &pki, archive.clone()).await {
                        Some(200) => acknowledged.push((id, archive)),
                        Some(other) => panic!("pushReport answered {other}"),
                        None => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    // Let the flood run, then kill the service while uploads are in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && rusqlite_count(&db) < 300 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.signal("KILL");
    let status = service.wait();
    assert!(!status.success(), "killed: {status:?}");
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for c in clients {
        acknowledged.extend(c.await.unwrap());
    }
    assert!(acknowledged.len() >= 100, "the flood got going: {}", acknowledged.len());

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    // Every acknowledged report reads back byte for byte, as `reports export` gives it.
    let mut stmt = conn.prepare("SELECT id FROM reports WHERE report_uuid = ?1").unwrap();
    let store = v8help::store::open(&format!("sqlite:{}", db.display())).unwrap();
    for (id, archive) in &acknowledged {
        let row: i64 = stmt
            .query_row([id], |r| r.get(0))
            .unwrap_or_else(|e| panic!("acknowledged report {id} is missing: {e}"));
        let stored = store.archive(row).await.unwrap();
        assert!(stored.as_deref() == Some(&archive[..]), "report {id} is stored intact");
    }
    // And so does every report that is there at all: none is half-stored.
    let rows: Vec<(i64, i64)> = conn
        .prepare("SELECT id, archive_size FROM reports")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut half = 0;
    for (row, size) in rows {
        match store.archive(row).await {
            Ok(Some(bytes)) if bytes.len() as i64 == size => {}
            _ => half += 1,
        }
    }
    assert_eq!(half, 0, "no report is half-stored");
}

fn rusqlite_count(db: &std::path::Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    conn.query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))
        .unwrap_or(0)
}

fn v8help(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_v8help"))
        .args(args)
        .env_remove("V8HELP_REPORTS_DB")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_cli_lists_shows_exports_byte_for_byte_and_purges() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("sqlite:{}", dir.path().join("r.db").display());
    let reports = Reports::open(ReportsConfig::with_db(&addr)).unwrap();
    let archive = report_archive(&report_json(&[]));
    let now = Utc::now();
    let id = reports.take(Bytes::from(archive.clone()), None, now).await.unwrap();
    reports
        .take(Bytes::from(archive.clone()), None, now - chrono::Duration::days(40))
        .await
        .unwrap();
    drop(reports);

    let out = v8help(&["reports", "list", "--reports-db", &addr]);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("GROUP"), "{table}");
    assert!(
        table.contains("app:C0FFEE00C0FFEE00C0FFEE00C0FFEE00") && table.contains("Деление на 0"),
        "{table}"
    );

    let out = v8help(&[
        "reports",
        "list",
        "--since",
        "24h",
        "--format",
        "json",
        "--reports-db",
        &addr,
    ]);
    let groups: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(groups[0]["count"], 2);

    let out = v8help(&["reports", "show", &id.to_string(), "--reports-db", &addr]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Иванова А.П.") && text.contains("screenshot.png"),
        "{text}"
    );

    let file = dir.path().join("out.zip");
    let out = v8help(&[
        "reports",
        "export",
        &id.to_string(),
        "-o",
        file.to_str().unwrap(),
        "--reports-db",
        &addr,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::read(&file).unwrap() == archive, "exported byte-for-byte");

    let out = v8help(&["reports", "purge", "--older-than", "30d", "--reports-db", &addr]);
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("removed 1 reports"));
    let out = v8help(&["reports", "show", "999", "--reports-db", &addr]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no report 999"));
    let out = v8help(&["reports", "list", "--reports-db", "sqlite:/nonexistent/r.db"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no report database"));
}
