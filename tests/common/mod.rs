//! Shared helpers for the integration tests: a test PKI, an in-process server on
//! 127.0.0.1:0, a small HTTPS client that trusts the test CA, and waiting with deadlines.
#![allow(dead_code)]

pub mod saves;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use v8help::config::ServeConfig;
use v8help::server::Server;
use v8help::time::Zone;

/// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files; more
/// certificates from the same CA on request.
pub struct Pki {
    pub dir: TempDir,
    pub ca: CertificateDer<'static>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// The CA certificate as a PEM file, for clients given a `--ca` option.
    pub ca_path: PathBuf,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "v8help test CA");
        let issuer = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, issuer.pem()).unwrap();
        let pki = Pki {
            ca: issuer.der().clone(),
            dir,
            cert_path,
            key_path,
            ca_path,
            issuer,
        };
        let (cert, key) = pki.issue();
        std::fs::write(&pki.cert_path, cert).unwrap();
        std::fs::write(&pki.key_path, key).unwrap();
        pki
    }

    /// A new server certificate (PEM) and its key (PEM) for 127.0.0.1 and localhost.
    pub fn issue(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A v8help server running in this process.
pub struct TestServer {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub dir: TempDir,
    pub message: PathBuf,
    pub pki: Pki,
    pub reload: Arc<Notify>,
    /// The error-report service, when the config takes reports.
    pub reports: Option<Arc<v8help::reports::Reports>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server whose message file holds `doc` (`None`: no file), on 127.0.0.1:0.
    pub async fn start(doc: Option<&str>, tweak: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let message = dir.path().join("message.json");
        if let Some(doc) = doc {
            std::fs::write(&message, doc).unwrap();
        }
        let pki = Pki::new();
        let mut config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls_files: Some((pki.cert_path.clone(), pki.key_path.clone())),
            message: message.clone(),
            zone: Zone::UTC,
            ..ServeConfig::default()
        };
        tweak(&mut config);
        let server = Server::bind(config).expect("server binds");
        let https = server.https_addr();
        let http = server.http_addr();
        let reports = server.reports();
        let reload = Arc::new(Notify::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(reload.clone(), async {
            let _ = stopped.await;
        }));
        TestServer {
            https,
            http,
            dir,
            message,
            pki,
            reload,
            reports,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// GET over HTTPS/1.1 with extra headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", path, headers, Bytes::new(), false).await
    }

    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Bytes, h2: bool) -> Resp {
        let mut req = Request::builder().method(method).uri(path).header("host", "127.0.0.1");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        request(self.https, &self.pki.ca, req.body(Full::new(body)).unwrap(), h2).await
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("server stops within its deadline")
                .unwrap();
        }
    }

    /// Completes when the server task has finished, for shutdown tests.
    pub fn take_task(&mut self) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        (self.stop.take().unwrap(), self.task.take().unwrap())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("invalid JSON ({e}): {:?}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// A TLS client config trusting only `ca`, offering `h2` or `http/1.1`.
pub fn client_config(ca: &CertificateDer<'static>, h2: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![if h2 { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
    Arc::new(config)
}

/// Connects and completes the TLS handshake.
pub async fn tls_connect(addr: SocketAddr, ca: &CertificateDer<'static>, h2: bool) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    TlsConnector::from(client_config(ca, h2))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// Sends one request on a fresh connection and reads the whole response.
pub async fn request(addr: SocketAddr, ca: &CertificateDer<'static>, req: Request<Full<Bytes>>, h2: bool) -> Resp {
    let io = TokioIo::new(tls_connect(addr, ca, h2).await);
    let response = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    };
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Plain-HTTP/1.1 GET on a fresh connection.
pub async fn http_get(addr: SocketAddr, path: &str) -> Resp {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (parts, body) = sender.send_request(req).await.unwrap().into_parts();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// Polls `check` until it returns `Some`, or panics after `limit` naming `what`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An RFC 3339 instant `secs` from now (negative: in the past).
pub fn in_secs(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339()
}

/// The example message shipped in examples/.
pub fn example_message() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/message.json")).unwrap()
}

/// The real `v8help serve` process, with its log collected line by line.
pub struct Binary {
    child: std::process::Child,
    /// The HTTPS port it reported in its "listening on" line.
    pub port: u16,
    log: Arc<std::sync::Mutex<Vec<String>>>,
    /// Holds the error-report database when the caller gave none (never the working tree).
    _reports_dir: TempDir,
}

impl Binary {
    /// Starts `v8help <args>` with extra environment variables and waits for it to listen.
    pub fn serve(args: &[&std::ffi::OsStr], envs: &[(&str, &str)]) -> Binary {
        use std::io::{BufRead, BufReader};
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_v8help"));
        command.args(args).stderr(std::process::Stdio::piped());
        let reports_dir = tempfile::tempdir().unwrap();
        command.env("V8HELP_REPORTS_DB", reports_dir.path().join("reports.db"));
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("v8help starts");
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(port) = line
                    .split("https://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.split([';', ' ', '"']).next()?.parse::<u16>().ok())
                {
                    let _ = port_tx.send(port);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("v8help did not report its port; log: {:?}", log.lock().unwrap()));
        Binary {
            child,
            port,
            log,
            _reports_dir: reports_dir,
        }
    }

    /// The HTTPS address.
    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Waits until a log line contains `needle`; returns that line.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}: {:?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
