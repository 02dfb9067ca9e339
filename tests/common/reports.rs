//! Shared by the error-report tests: archives built from the field list in
//! `fixtures/reports/report.json`, multipart bodies as the platform sends them, a test
//! server that takes reports, and plain-HTTP POSTs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpStream;
use v8help::reports::ReportsConfig;

use super::{Resp, TestServer};

/// A 1×1 PNG, as a screenshot.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

/// The field list with `changes` applied: (JSON pointer, new value).
pub fn report_json(changes: &[(&str, Value)]) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reports/report.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for (pointer, value) in changes {
        *doc.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("no {pointer} in the fixture")) = value.clone();
    }
    doc
}

/// A deflated ZIP archive of these entries.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A report archive as the platform sends it: `report.json`, a screenshot and `log.txt`.
pub fn report_archive(doc: &Value) -> Vec<u8> {
    let json = serde_json::to_vec_pretty(doc).unwrap();
    zip(&[
        ("report.json", &json),
        ("screenshot.png", PNG),
        ("log.txt", b"10:15:00 posting document 42\n"),
    ])
}

/// A `multipart/form-data` body with one file part: (content type, body).
pub fn multipart(field: &str, file_name: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----v8helpBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    write!(
        body,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/zip\r\n\r\n"
    )
    .unwrap();
    body.extend_from_slice(data);
    write!(body, "\r\n--{boundary}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The real client captures, when the shared folder is there.
pub fn samples() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/1c-error-reports");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is not present", dir.display());
        None
    }
}

/// A test server that takes reports into its own database, with plain HTTP too.
pub struct ReportServer {
    pub server: TestServer,
    pub db: PathBuf,
    pub dir: TempDir,
}

impl ReportServer {
    /// Starts one; `tweak` adjusts the report settings.
    pub async fn start(tweak: impl FnOnce(&mut ReportsConfig)) -> ReportServer {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("reports.db");
        let mut reports = ReportsConfig::with_db(format!("sqlite:{}", db.display()));
        tweak(&mut reports);
        let server = TestServer::start(Some(&crate::common::example_message()), |c| {
            c.reports = Some(reports);
            c.http_listen = Some("127.0.0.1:0".parse().unwrap());
        })
        .await;
        ReportServer { server, db, dir }
    }

    /// POST over HTTPS/1.1.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Resp {
        self.server.send("POST", path, headers, body.into(), false).await
    }

    /// The plain-HTTP address.
    pub fn http(&self) -> SocketAddr {
        self.server.http.unwrap()
    }
}

/// POST over plain HTTP/1.1 on a fresh connection.
pub async fn http_post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Resp {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::post(path).header("host", "127.0.0.1");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let (parts, body) = sender
        .send_request(req.body(Full::new(body.into())).unwrap())
        .await
        .unwrap()
        .into_parts();
    Resp {
        status: parts.status.into(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// The value of one metric line (`name{labels} value`) in a scrape.
pub fn metric(scrape: &str, line_start: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
