//! Helpers for the console tests: a console on 127.0.0.1:0 over a real SQLite store with a
//! users file, report archives built from the field list, and requests with or without a
//! session cookie.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::Request;
use http_body_util::Full;
use v8help::console::{Console, ConsoleServer, MarkGroup, StoreMarks};
use v8help::server::tls::Certificate;
use v8help::store::{NewReport, ReportFields, ReportId, Store};
use v8help::users::{Users, UsersFile};

use super::{Pki, Resp, request};

/// The console user every test logs in as.
pub const USER: &str = "anna";
/// Their password.
pub const PASSWORD: &str = "correct horse battery";
/// A PNG header and nothing else: enough for the magic-byte check and for a browser to try.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xDE, 0x00, 0x00, 0x00, 0x0C, 0x49,
    0x44, 0x41, 0x54, 0x08, 0xD7, 0x63, 0xF8, 0xCF, 0xC0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xDD, 0x8D, 0xB0,
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// A running console.
pub struct ConsoleEnv {
    pub addr: SocketAddr,
    pub pki: Arc<Pki>,
    pub store: Arc<dyn Store>,
    pub dir: Arc<tempfile::TempDir>,
    pub users: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A users file in `dir` with [`USER`] / [`PASSWORD`].
pub fn users_file(dir: &Path) -> PathBuf {
    let path = dir.join("v8help-users");
    let mut users = Users::default();
    users.set(USER, PASSWORD).unwrap();
    users.write(&path).unwrap();
    path
}

impl ConsoleEnv {
    /// A console over a fresh database, marking groups in the store only.
    pub async fn start() -> ConsoleEnv {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let store = v8help::store::open(&format!("sqlite:{}", dir.path().join("reports.db").display())).unwrap();
        let marks: Arc<dyn MarkGroup> = Arc::new(StoreMarks(store.clone()));
        ConsoleEnv::start_with(dir, Arc::new(Pki::new()), store, marks).await
    }

    /// A console over `store` (a second replica shares the first one's database and PKI).
    pub async fn start_with(
        dir: Arc<tempfile::TempDir>,
        pki: Arc<Pki>,
        store: Arc<dyn Store>,
        marks: Arc<dyn MarkGroup>,
    ) -> ConsoleEnv {
        let users = dir.path().join("v8help-users");
        if !users.exists() {
            users_file(dir.path());
        }
        let certificate = Certificate::load(Some((pki.cert_path.clone(), pki.key_path.clone()))).unwrap();
        let server = ConsoleServer::bind("127.0.0.1:0".parse().unwrap(), certificate).unwrap();
        let addr = server.addr().unwrap();
        let console = Console::new(store.clone(), marks, UsersFile::open(users.clone()).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(console, Duration::from_secs(2), async {
            let _ = stopped.await;
        }));
        ConsoleEnv {
            addr,
            pki,
            store,
            dir,
            users,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Sends one request over HTTPS/1.1.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Bytes) -> Resp {
        let host = self.addr.to_string();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", host.as_str());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        request(self.addr, &self.pki.ca, req.body(Full::new(body)).unwrap(), false).await
    }

    /// GET with extra headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", path, headers, Bytes::new()).await
    }

    /// POST of an urlencoded form with extra headers.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, Bytes::from(body)).await
    }

    /// Logs in and returns the `Cookie` header value of the session.
    pub async fn login(&self) -> String {
        let r = self
            .post_form("/login", &[("user", USER), ("password", PASSWORD)], &[])
            .await;
        assert_eq!(r.status, 303, "login failed: {}", String::from_utf8_lossy(&r.body));
        let set = r.header("set-cookie").expect("a session cookie");
        set.split(';').next().unwrap().to_string()
    }

    /// The CSRF token in a page's forms.
    pub fn csrf_of(page: &str) -> String {
        let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field in the page");
        let rest = &page[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    /// Stores a report with `fields` whose archive holds `files` (plus report.json).
    pub async fn put_report(&self, group_key: &str, fields: ReportFields, files: &[(&str, &[u8])]) -> ReportId {
        let report_json = serde_json::json!({
            "sessionInfo": {"userName": fields.user_name},
            "errorInfo": {"userDescription": fields.user_description},
        });
        let mut all: Vec<(&str, Vec<u8>)> = vec![("report.json", serde_json::to_vec(&report_json).unwrap())];
        all.extend(files.iter().map(|(n, b)| (*n, b.to_vec())));
        let archive = zip_of(&all);
        let checked = v8help::reports::archive::check(&archive).unwrap();
        self.store
            .put_report(NewReport {
                received_at: Utc::now(),
                client_addr: Some("127.0.0.1".into()),
                group_key: group_key.into(),
                fields,
                report_json,
                files: checked.files,
                archive: Bytes::from(archive),
            })
            .await
            .unwrap()
    }

    /// Stops the console and waits for it.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the console stops")
                .unwrap();
        }
    }
}

impl Drop for ConsoleEnv {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A ZIP archive of `files` (deflated), as a 1C client would send it.
pub fn zip_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in files {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    out.into_inner()
}

/// Fields of a report whose user name and error text are hostile markup.
pub fn hostile_fields() -> ReportFields {
    ReportFields {
        user_name: Some("<script>alert('user')</script>".into()),
        error_text: Some("<img src=x onerror=alert('error')>Ошибка при вызове метода".into()),
        user_description: Some("<b>bold?</b> & \"quoted\"".into()),
        client_id: Some("c1d2-machine".into()),
        os_version: Some("Windows 10 x64".into()),
        app_name: Some("1CV8C".into()),
        app_version: Some("8.3.18.1128".into()),
        platform_type: Some("Windows_x86_64".into()),
        config_name: Some("Бухгалтерия предприятия".into()),
        config_version: Some("3.0.101.20".into()),
        screenshot: Some("screenshot.png".into()),
        ..ReportFields::default()
    }
}
