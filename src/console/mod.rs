//! The support console: a separate HTTPS listener (`--admin-listen`, by default only on
//! 127.0.0.1) with its own router, where support logs in and sees the error-report groups,
//! the reports with their screenshots and files, the login failures per minute, the
//! forwarding outbox with its failed deliveries, and marks groups (which getInfo answers
//! from at once).
//!
//! The public listeners never see any of it: they are served by [`crate::server`]'s router,
//! which has no route into this module; this one is only served by [`ConsoleServer`].
//!
//! - [`config`]: `--admin-listen` and `--users`.
//! - [`auth`]: sessions, CSRF, Basic, same-origin checks, the failed-login limiter.
//! - `data`: marking through the reports service ([`MarkGroup`]), chart series.
//! - `pages` and `i18n`: the HTML (auto-escaped maud templates) in Russian and English.
//! - `routes`: the router.

pub mod auth;
pub mod config;
mod data;
mod i18n;
pub(crate) mod pages;
mod routes;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::server::ServeError;
use crate::server::tls::{self, Certificate};
use crate::store::Store;
use crate::users::UsersFile;
pub use data::{MarkGroup, StoreMarks};
use routes::Check;

/// Password checks run at once (each takes ~20–40 ms of one core and 19 MiB): a flood of
/// logins queues here instead of taking the machine from the public listeners.
const PARALLEL_CHECKS: usize = 2;
/// Most console connections open at once.
const MAX_CONNECTIONS: usize = 256;

/// The console's shared state: the store it reads, the service it marks groups through,
/// its users and its limiter.
pub struct Console {
    store: Arc<dyn Store>,
    marks: Arc<dyn MarkGroup>,
    users: UsersFile,
    limiter: Mutex<auth::LoginLimiter>,
    checks: Semaphore,
    /// The service's `/healthz` with its details (file path, reload errors), shown at
    /// `/api/health` to logged-in users: the public listener says state only.
    health: std::sync::OnceLock<HealthReport>,
}

/// Renders the service's health with details (see [`crate::service::Service::health_report`]).
pub(crate) type HealthReport = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

impl Console {
    /// A console over `store`, marking groups through `marks`, for the users in `users`.
    pub fn new(store: Arc<dyn Store>, marks: Arc<dyn MarkGroup>, users: UsersFile) -> Arc<Console> {
        Arc::new(Console {
            store,
            marks,
            users,
            limiter: Mutex::new(auth::LoginLimiter::default()),
            checks: Semaphore::new(PARALLEL_CHECKS),
            health: std::sync::OnceLock::new(),
        })
    }

    /// Makes `/api/health` answer with `report` (set once, by the serving process).
    pub fn show_health(&self, report: HealthReport) {
        let _ = self.health.set(report);
    }

    /// Checks a password under the limiter: a locked address or name is refused without
    /// a check, a failure is counted and logged.
    async fn check_password(&self, peer: IpAddr, user: &str, password: String, now: DateTime<Utc>) -> Check {
        let limiter = || self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = limiter().locked(peer, user, now) {
            tracing::warn!(client = %peer, user = %user, retry_after_s = wait.as_secs(), "console login refused: too many failures");
            return Check::Locked(wait);
        }
        let Ok(_permit) = self.checks.acquire().await else {
            return Check::Wrong;
        };
        let users = self.users.current();
        let name = user.to_string();
        let ok = tokio::task::spawn_blocking(move || users.verify(&name, &password))
            .await
            .unwrap_or(false);
        if ok {
            limiter().succeeded(user);
            Check::Ok
        } else {
            limiter().failed(peer, user, now);
            tracing::warn!(client = %peer, user = %user, "console login failed");
            Check::Wrong
        }
    }
}

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The admin address cannot be bound or TLS cannot be set up.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The users file exists but cannot be read or is invalid.
    #[error(transparent)]
    Users(#[from] crate::users::UsersError),
}

/// Binds the admin listener of `config` with the public listener's certificate and sets up
/// the console over the report service `reports` (its store, and its marks for getInfo).
pub fn bind(
    config: &config::ConsoleConfig,
    certificate: Arc<Certificate>,
    reports: Arc<crate::reports::Reports>,
) -> Result<(ConsoleServer, Arc<Console>), ConsoleError> {
    let users = UsersFile::open(config.users.clone())?;
    if users.current().names().next().is_none() {
        tracing::warn!(
            "no console users in {}: add one with `v8help users add NAME --users {}`",
            config.users.display(),
            config.users.display()
        );
    }
    let server = ConsoleServer::bind(config.listen, certificate)?;
    let store = reports.store.clone();
    Ok((server, Console::new(store, reports, users)))
}

/// The admin listener, bound and with TLS ready.
pub struct ConsoleServer {
    listener: std::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl ConsoleServer {
    /// Binds `addr` and serves the service's own certificate (the one the public HTTPS
    /// listener serves, renewals included).
    pub fn bind(addr: SocketAddr, certificate: Arc<Certificate>) -> Result<ConsoleServer, ServeError> {
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| ServeError::Listen { addr, source })?;
        let acceptor = TlsAcceptor::from(tls::server_config(certificate)?);
        Ok(ConsoleServer { listener, acceptor })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves `console` until `shutdown` completes, then gives open requests `grace`.
    pub async fn run(self, console: Arc<Console>, grace: Duration, shutdown: impl Future<Output = ()>) {
        let listener = match TcpListener::from_std(self.listener) {
            Ok(l) => l,
            Err(err) => return tracing::error!("cannot use the console listener: {err}"),
        };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        builder.http2().timer(TokioTimer::new()).max_concurrent_streams(64);
        let builder = Arc::new(builder);
        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!("console accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                continue;
            };
            let (acceptor, builder, console, watcher) = (
                self.acceptor.clone(),
                builder.clone(),
                console.clone(),
                graceful.watcher(),
            );
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    _ => return,
                };
                let ip = peer.ip();
                let service = service_fn(move |req| {
                    let console = console.clone();
                    async move { Ok::<_, std::convert::Infallible>(routes::handle(req, console, ip).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let _ = watcher.watch(conn.into_owned()).await;
                drop(permit);
            });
        }
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
            tracing::warn!("console connections still open after {grace:?}; closing them");
        }
    }
}
