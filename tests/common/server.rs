//! v8help servers running inside the test process on 127.0.0.1:0: [`InProcess`] starts one
//! from a configuration and stops it; [`TestServer`] adds a message file, the test PKI and
//! an HTTPS client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tempfile::TempDir;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use v8help::config::ServeConfig;
use v8help::server::ServeError;
use v8help::service::Service;
use v8help::time::Zone;
use v8help::watch::LiveMessage;

use super::client::{Resp, request};
use super::pki::Pki;

/// A running server task and the handles to reload and stop it.
pub struct InProcess {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub live: Arc<LiveMessage>,
    pub reload: Arc<Notify>,
    /// The error-report service, when the config takes reports.
    pub reports: Option<Arc<v8help::reports::Reports>>,
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl InProcess {
    /// Binds `config`'s listeners and runs the server on the current runtime.
    pub fn start(config: ServeConfig) -> Result<InProcess, ServeError> {
        let server = Service::bind(config)?;
        let https = server.https_addr();
        let http = server.http_addr();
        let live = server.live();
        let reports = server.reports();
        let reload = Arc::new(Notify::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(reload.clone(), async {
            let _ = stopped.await;
        }));
        Ok(InProcess {
            https,
            http,
            live,
            reload,
            reports,
            stop: std::sync::Mutex::new(Some(stop)),
            task: tokio::sync::Mutex::new(Some(task)),
        })
    }

    /// Asks the server to shut down without waiting.
    pub fn signal_stop(&self) {
        let sender = self.stop.lock().map(|mut s| s.take()).unwrap_or(None);
        if let Some(stop) = sender {
            let _ = stop.send(());
        }
    }

    /// Shuts the server down and waits up to `limit` for `run` to return.
    pub async fn stop(&self, limit: Duration) -> Result<(), String> {
        self.signal_stop();
        if let Some(task) = self.task.lock().await.take() {
            tokio::time::timeout(limit, task)
                .await
                .map_err(|_| format!("server did not stop within {limit:?}"))?
                .map_err(|e| format!("server task failed: {e}"))?;
        }
        Ok(())
    }

    /// The stop signal and the task, for tests of shutdown itself.
    pub fn take_task(&mut self) -> (oneshot::Sender<()>, JoinHandle<()>) {
        let stop = self.stop.get_mut().unwrap().take().unwrap();
        (stop, self.task.get_mut().take().unwrap())
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.signal_stop();
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
    server: InProcess,
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
        let server = InProcess::start(config).expect("server binds");
        TestServer {
            https: server.https,
            http: server.http,
            dir,
            message,
            pki,
            reload: server.reload.clone(),
            reports: server.reports.clone(),
            server,
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
        let stopped = self.server.stop(Duration::from_secs(20)).await;
        stopped.expect("server stops within its deadline");
    }

    /// Completes when the server task has finished, for shutdown tests.
    pub fn take_task(&mut self) -> (oneshot::Sender<()>, JoinHandle<()>) {
        self.server.take_task()
    }
}
