//! The `serve` wiring, in one place: what is loaded at start-up, which reload loops keep it
//! fresh, where SIGHUP goes, and in which order things stop.
//!
//! ```text
//! Service::bind: certificate, listeners, message, messages directory, report store
//! Service::run:  watch::keep(message) ─┐
//!                watch::keep(certificate)   ├─ SIGHUP reaches each; one shutdown token stops all
//!                watch::keep(messages dir)  │
//!                reports.run (rules, …)   ──┘
//!                server::run(listeners, app, shutdown)   ← only what it serves
//! ```
//!
//! The server knows nothing of files; the watch loops know nothing of sockets. The report
//! service stops after the server, so that login failures queued by the last requests are
//! still written.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::server::tls::Certificate;
use crate::server::{self, App, Listeners, ServeError};
use crate::watch::{self, After, Cause, LiveMessage, Now, Reloadable, SETTLE_DELAY, Scope, Stuck};

/// A service whose sockets are bound, whose TLS is ready and whose files are loaded:
/// nothing left that can fail.
pub struct Service {
    app: Arc<App>,
    listeners: Listeners,
    certificate: Arc<Certificate>,
    /// SHA-256 of the certificate when it is the in-memory self-signed one.
    pub self_signed_fingerprint: Option<String>,
}

impl Service {
    /// Loads the certificate and key (or makes the self-signed one), binds the listeners,
    /// loads the message file (whose absence or errors are logged, not fatal), the messages
    /// directory and the report store.
    pub fn bind(config: ServeConfig) -> Result<Service, ServeError> {
        let certificate = Certificate::load(config.tls_files.clone())?;
        let self_signed_fingerprint = certificate.is_self_signed().then(|| certificate.fingerprint());
        let listeners = Listeners::bind(&config, certificate.clone())?;
        let now = Now::read();
        let live = LiveMessage::load(config.message.clone(), config.zone, now);
        let messages = match &config.messages {
            Some(dir) => Some(crate::messages::Messages::open(dir.clone(), config.zone)?),
            None => None,
        };
        let reports = match &config.reports {
            Some(c) => {
                warn_if_watched(&c.db, &config.message);
                Some(crate::reports::Reports::open(c.clone())?)
            }
            None => None,
        };
        Ok(Service {
            app: App::new(live, config, reports, messages),
            listeners,
            certificate,
            self_signed_fingerprint,
        })
    }

    /// The bound HTTPS address (useful with port 0).
    pub fn https_addr(&self) -> SocketAddr {
        self.listeners.https_addr().unwrap_or(self.app.config.listen)
    }

    /// The bound plain-HTTP address, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.listeners.http_addr()
    }

    /// The error-report service, when reports are taken (the console reads and marks through it).
    pub fn reports(&self) -> Option<Arc<crate::reports::Reports>> {
        self.app.reports.clone()
    }

    /// The certificate being served (and reloaded), for the admin listener to serve too.
    pub fn certificate(&self) -> Arc<Certificate> {
        self.certificate.clone()
    }

    /// The health document with its details (the message file's path, reload errors), for
    /// the admin listener: the public `/healthz` shows them only with `--health-details`.
    pub fn health_report(&self) -> crate::console::HealthReport {
        let app = self.app.clone();
        Arc::new(move || server::routes::health(&app, true))
    }

    /// The served message, for callers that want to reload it or read its status.
    pub fn live(&self) -> Arc<LiveMessage> {
        self.app.live.clone()
    }

    /// The messages directory (`--messages`), when configured.
    pub fn messages(&self) -> Option<Arc<crate::messages::Messages>> {
        self.app.messages.clone()
    }

    /// Serves until `shutdown` completes, keeping the message, the certificate, the messages
    /// directory and the report rules in step with their files meanwhile. `reload` (SIGHUP)
    /// re-reads all of them. The watch loops run on the caller's runtime; connections are
    /// served on the server's own worker threads.
    pub async fn run(self, reload: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        let Service {
            app,
            listeners,
            certificate,
            ..
        } = self;
        let stop = CancellationToken::new();
        let recheck = app.config.recheck_interval;
        let mut sighup = Vec::new();
        let mut force = || {
            let notify = Arc::new(Notify::new());
            sighup.push(notify.clone());
            notify
        };
        tokio::spawn(watch::keep(app.live.clone(), recheck, force(), stop.clone()));
        if let Some(messages) = app.messages.clone() {
            let target = Arc::new(crate::messages::DirReload::new(messages));
            tokio::spawn(watch::keep(target, recheck, force(), stop.clone()));
        }
        if let Some(target) = CertificateFiles::of(certificate, app.metrics.clone()) {
            tokio::spawn(watch::keep(Arc::new(target), recheck, force(), stop.clone()));
        }
        let (reports_stop, reports_stopped) = tokio::sync::oneshot::channel::<()>();
        let reports = app.reports.clone().map(|reports| {
            tokio::spawn(reports.run(recheck, force(), async {
                let _ = reports_stopped.await;
            }))
        });
        // One SIGHUP, to every loop.
        tokio::spawn({
            let stop = stop.clone();
            async move {
                loop {
                    tokio::select! {
                        _ = reload.notified() => sighup.iter().for_each(|n| n.notify_one()),
                        _ = stop.cancelled() => return,
                    }
                }
            }
        });
        let stopping = async {
            shutdown.await;
            stop.cancel();
        };
        tokio::join!(stopping, server::run(listeners, app, stop.clone()));
        let _ = reports_stop.send(());
        if let Some(reports) = reports {
            let _ = reports.await;
        }
    }
}

/// The certificate and key files as a reload target: a renewal replaces both, so events are
/// given [`SETTLE_DELAY`] to land whole; a refused pair leaves the old one serving.
struct CertificateFiles {
    certificate: Arc<Certificate>,
    metrics: Arc<Metrics>,
    files: Vec<std::path::PathBuf>,
}

impl CertificateFiles {
    /// `None` for the in-memory self-signed certificate: it has no files.
    fn of(certificate: Arc<Certificate>, metrics: Arc<Metrics>) -> Option<CertificateFiles> {
        let files = certificate
            .files()
            .map(|(cert, key)| vec![cert.to_path_buf(), key.to_path_buf()])?;
        Some(CertificateFiles {
            certificate,
            metrics,
            files,
        })
    }
}

impl Reloadable for CertificateFiles {
    fn what(&self) -> &'static str {
        "certificate"
    }

    fn scope(&self) -> Scope {
        Scope::Files(self.files.clone())
    }

    fn debounce(&self) -> Duration {
        SETTLE_DELAY
    }

    fn reload(&self, cause: Cause, _now: Now) -> After {
        if let Cause::Start = cause {
            return After::default(); // loaded moments ago, by `bind`
        }
        match self.certificate.reload() {
            Ok(true) => {
                self.metrics.certificate_reload(true);
                tracing::info!(
                    cert = %self.files[0].display(),
                    fingerprint = %self.certificate.fingerprint(),
                    "certificate reloaded"
                );
            }
            Ok(false) => {}
            Err(err) => {
                self.metrics.certificate_reload(false);
                tracing::error!("{err}; the previous certificate keeps serving");
            }
        }
        After::default()
    }

    fn stuck(&self, stuck: Stuck) {
        let cert = self.files[0].display();
        match stuck {
            Stuck::TimedOut(after) => tracing::error!(
                "{cert}: reading the certificate took more than {} s (a hung network mount?); \
                 the previous certificate keeps serving",
                after.as_secs()
            ),
            Stuck::StillRunning(_) => {}
        }
    }
}

/// Logs a warning when the SQLite report database lies in the message's directory: the
/// message watcher sees every write to it (a pushReport flood then costs a fifth more CPU).
fn warn_if_watched(db: &str, message: &Path) {
    let dir = |p: &Path| std::path::absolute(watch::parent_dir(p)).ok();
    if let Some(path) = crate::store::sqlite_path(db)
        && let Some(db_dir) = dir(Path::new(path))
        && dir(message).as_ref() == Some(&db_dir)
    {
        tracing::warn!(
            database = path,
            directory = %db_dir.display(),
            "the report database is in the message's directory, which is watched for edits: \
             every write to the database wakes the watcher; keep it elsewhere (e.g. /var/lib/v8help)"
        );
    }
}
