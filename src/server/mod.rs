//! Serving: the HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN), the optional plain-HTTP
//! listener for use behind a reverse proxy, connection limits and timeouts, and graceful
//! shutdown.
//!
//! [`Server::bind`] does everything that can fail at start-up (ports, certificate, key), so
//! that a bad setting is one clear error before anything is served; [`Server::run`] then
//! serves until its shutdown future completes.

pub mod bases;
pub mod conn;
pub mod request;
pub mod routes;
pub mod tls;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::ServeConfig;
use crate::metrics::Handshake;
use crate::watch::{self, LiveMessage};
pub use routes::App;
use tls::{Certificate, TlsError};

/// Pending connections the kernel queues per listener: enough for thousands of thin clients
/// failing at the same second (Linux caps it at `net.core.somaxconn`, 4096 by default).
pub const LISTEN_BACKLOG: i32 = 8192;
/// Largest request head (request line and headers) accepted over HTTP/1.1 and HTTP/2.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listen address (`--listen` or `--http-listen`) cannot be bound: busy port, no
    /// permission, or an address this machine does not have.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The certificate or key cannot be loaded, or TLS cannot be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The error-report store cannot be opened (`--reports-db`).
    #[error(transparent)]
    Reports(#[from] crate::store::StoreError),
    /// The messages directory cannot be read (`--messages`).
    #[error(transparent)]
    Messages(#[from] crate::messages::MessagesError),
}

/// A service whose sockets are bound and whose TLS is ready: nothing left that can fail.
pub struct Server {
    app: Arc<App>,
    /// One HTTPS listener per worker thread, all on the same port (SO_REUSEPORT).
    https: Vec<std::net::TcpListener>,
    /// The same for plain HTTP, when configured.
    http: Vec<std::net::TcpListener>,
    acceptor: TlsAcceptor,
    certificate: Arc<Certificate>,
    /// SHA-256 of the certificate when it is the in-memory self-signed one.
    pub self_signed_fingerprint: Option<String>,
}

/// Logs a warning when the SQLite report database lies in the message's directory: the
/// message watcher sees every write to it (a pushReport flood then costs a fifth more CPU).
fn warn_if_watched(db: &str, message: &std::path::Path) {
    let dir = |p: &std::path::Path| std::path::absolute(crate::watch::parent_dir(p)).ok();
    if let Some(path) = crate::store::sqlite_path(db)
        && let Some(db_dir) = dir(std::path::Path::new(path))
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

impl Server {
    /// Binds the listeners, loads the certificate and key (or makes the self-signed one)
    /// and loads the message file (whose absence or errors are logged, not fatal).
    pub fn bind(config: ServeConfig) -> Result<Server, ServeError> {
        let certificate = Certificate::load(config.tls_files.clone())?;
        let self_signed_fingerprint = certificate.is_self_signed().then(|| certificate.fingerprint());
        let acceptor = TlsAcceptor::from(tls::server_config(certificate.clone())?);
        let https = listen_per_worker(config.listen, config.workers)?;
        let http = match config.http_listen {
            Some(addr) => listen_per_worker(addr, config.workers)?,
            None => Vec::new(),
        };
        let live = LiveMessage::load(config.message.clone(), config.zone);
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
        Ok(Server {
            app: App::new(live, config, reports, messages),
            https,
            http,
            acceptor,
            certificate,
            self_signed_fingerprint,
        })
    }

    /// The bound HTTPS address (useful with port 0).
    pub fn https_addr(&self) -> SocketAddr {
        self.https[0].local_addr().unwrap_or(self.app.config.listen)
    }

    /// The bound plain-HTTP address, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.first().and_then(|l| l.local_addr().ok())
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
        Arc::new(move || routes::health(&app, true))
    }

    /// The served message, for callers that want to reload it (SIGHUP) or read its status.
    pub fn live(&self) -> Arc<LiveMessage> {
        self.app.live.clone()
    }

    /// The messages directory (`--messages`), when configured.
    pub fn messages(&self) -> Option<Arc<crate::messages::Messages>> {
        self.app.messages.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting and gives in-flight requests
    /// up to the configured deadline. `reload` forces a re-read of the message file.
    ///
    /// Connections are served by `workers` threads, each with its own single-threaded
    /// runtime and its own listener on the shared port: the kernel spreads new connections
    /// over them, and a connection never moves between threads (no work stealing, no
    /// cross-thread wake-ups on the request path). The watcher runs on the caller's runtime.
    pub async fn run(self, reload: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        let Server {
            app,
            https,
            mut http,
            acceptor,
            certificate,
            ..
        } = self;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.changed().await;
        };
        // SIGHUP re-reads the message, the certificate and the error-report rules.
        let (reload_message, reload_certificate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let reload_rules = Arc::new(Notify::new());
        let reload_messages = Arc::new(Notify::new());
        {
            let (m, c, r, d, stop) = (
                reload_message.clone(),
                reload_certificate.clone(),
                reload_rules.clone(),
                reload_messages.clone(),
                stopped(stop_rx.clone()),
            );
            tokio::spawn(async move {
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        _ = reload.notified() => { m.notify_one(); c.notify_one(); r.notify_one(); d.notify_one(); }
                        _ = &mut stop => return,
                    }
                }
            });
        }
        let recheck = app.config.recheck_interval;
        // The report service stops after the workers, so that login failures queued by the
        // last requests are still written.
        let (reports_stop, reports_stopped) = tokio::sync::oneshot::channel::<()>();
        let reports = app.reports.clone().map(|reports| {
            tokio::spawn(reports.run(recheck, reload_rules, async {
                let _ = reports_stopped.await;
            }))
        });
        tokio::spawn(watch::watch(
            app.live.clone(),
            recheck,
            reload_message,
            stopped(stop_rx.clone()),
        ));
        if let Some(messages) = app.messages.clone() {
            tokio::spawn(crate::messages::watch(
                messages,
                recheck,
                reload_messages,
                stopped(stop_rx.clone()),
            ));
        }
        tokio::spawn(tls::watch_certificate(
            certificate,
            app.metrics.clone(),
            reload_certificate,
            recheck,
            stopped(stop_rx.clone()),
        ));

        let builders = Arc::new(Builders::new(&app.config));
        let limit = Arc::new(Semaphore::new(app.config.max_connections));
        let per_address = conn::PerAddress::new(app.config.max_connections_per_address);
        let mut finished = Vec::new();
        for (i, https) in https.into_iter().enumerate() {
            let http = if http.is_empty() { None } else { Some(http.remove(0)) };
            let worker = Worker {
                app: app.clone(),
                https,
                http,
                acceptor: acceptor.clone(),
                builders: builders.clone(),
                limit: limit.clone(),
                per_address: per_address.clone(),
                stop: stop_rx.clone(),
            };
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name(format!("v8help-worker-{i}"))
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime.block_on(worker.serve()),
                        Err(err) => tracing::error!("worker {i}: cannot start a runtime: {err}"),
                    }
                    let _ = done_tx.send(());
                });
            match spawned {
                Ok(_) => finished.push(done_rx),
                Err(err) => tracing::error!("cannot start worker thread {i}: {err}"),
            }
        }

        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        let _ = stop_tx.send(true);
        for done in finished {
            let _ = done.await;
        }
        let _ = reports_stop.send(());
        if let Some(reports) = reports {
            let _ = reports.await;
        }
    }
}

/// One worker thread's share of the service: its listeners and what its connections need.
struct Worker {
    app: Arc<App>,
    https: std::net::TcpListener,
    http: Option<std::net::TcpListener>,
    acceptor: TlsAcceptor,
    builders: Arc<Builders>,
    limit: Arc<Semaphore>,
    per_address: Arc<conn::PerAddress>,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Worker {
    /// The accept loop, then this worker's graceful shutdown.
    async fn serve(self) {
        let Worker {
            app,
            https,
            http,
            acceptor,
            builders,
            limit,
            per_address,
            mut stop,
        } = self;
        let timeouts = conn::Timeouts {
            first_request: app.config.header_timeout,
            keepalive: app.config.keepalive_timeout,
        };
        let https = match TcpListener::from_std(https) {
            Ok(l) => l,
            Err(err) => return tracing::error!("cannot use the HTTPS listener: {err}"),
        };
        let http = match http.map(TcpListener::from_std).transpose() {
            Ok(l) => l,
            Err(err) => return tracing::error!("cannot use the HTTP listener: {err}"),
        };
        // Every connection task holds a sender; all of them gone means all connections closed.
        let (open_tx, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
        loop {
            let (stream, tls) = tokio::select! {
                accepted = https.accept() => (accepted, true),
                accepted = accept_or_wait(http.as_ref()) => (accepted, false),
                _ = stop.changed() => break,
            };
            let (stream, peer) = match stream {
                Ok((stream, peer)) => (stream, peer),
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            // At the limit, this worker holds the one connection it accepted and waits; the
            // rest wait in the kernel's backlog. (Taking the permit before accepting would let
            // an idle worker hold it while the waiting client sits in another's queue.)
            let permit = tokio::select! {
                permit = limit.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = stop.changed() => break,
            };
            // One client address cannot take every slot: over its cap, closed at once.
            let Some(slot) = per_address.admit(peer.ip()) else {
                tracing::debug!(%peer, "connection refused: too many open from this address");
                app.metrics.refused_per_address();
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let open = app.metrics.connection();
            let app = app.clone();
            let builders = builders.clone();
            let acceptor = acceptor.clone();
            let (stop, open_tx) = (stop.clone(), open_tx.clone());
            tokio::spawn(async move {
                if tls {
                    serve_tls(stream, peer, acceptor, app, &builders, timeouts, stop).await;
                } else {
                    conn::serve(stream, &builders.plain, peer, app, false, timeouts, stop).await;
                }
                drop(open);
                drop(slot);
                drop(permit);
                drop(open_tx);
            });
            // One accept, then the connections already in progress get their turn (as nginx
            // does without multi_accept): in a burst, clients that finished their handshake
            // are answered before thousands of new handshakes are started.
            tokio::task::yield_now().await;
        }
        drop(https);
        drop(http);
        drop(open_tx);
        let deadline = app.config.shutdown_timeout;
        if tokio::time::timeout(deadline, all_closed.recv()).await.is_err() {
            tracing::warn!("connections still open after {deadline:?}; closing them");
        }
    }
}

/// One HTTP/1.1-only and one HTTP/2-only builder for TLS (ALPN already chose), and an
/// auto-detecting one for plain HTTP (HTTP/1.1, or HTTP/2 with prior knowledge).
struct Builders {
    h1: auto::Builder<TokioExecutor>,
    h2: auto::Builder<TokioExecutor>,
    plain: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(config: &ServeConfig) -> Builders {
        let make = || {
            let mut b = auto::Builder::new(TokioExecutor::new());
            b.http1()
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_timeout)
                .max_buf_size(MAX_HEADER_BYTES.max(8192));
            b.http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(128)
                .max_header_list_size(MAX_HEADER_BYTES as u32)
                .keep_alive_interval(Some(Duration::from_secs(30)))
                .keep_alive_timeout(Duration::from_secs(10));
            b
        };
        Builders {
            h1: make().http1_only(),
            h2: make().http2_only(),
            plain: make(),
        }
    }
}

async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Arc<App>,
    builders: &Builders,
    timeouts: conn::Timeouts,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let stream = match tokio::time::timeout(app.config.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            tracing::debug!("TLS handshake failed: {err}");
            app.metrics.handshake_failed(false);
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            app.metrics.handshake_failed(true);
            return;
        }
    };
    app.metrics.handshake(match stream.get_ref().1.handshake_kind() {
        Some(rustls::HandshakeKind::Resumed) => Handshake::Resumed,
        _ => Handshake::Full,
    });
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let builder = if h2 { &builders.h2 } else { &builders.h1 };
    conn::serve(stream, builder, peer, app, true, timeouts, stop).await;
}

async fn accept_or_wait(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Binds `workers` listeners on one address with SO_REUSEPORT (the kernel spreads new
/// connections over them). A plain bind comes first, so that a port held by any other
/// socket — even another SO_REUSEPORT one — is reported as busy instead of being shared.
fn listen_per_worker(addr: SocketAddr, workers: usize) -> Result<Vec<std::net::TcpListener>, ServeError> {
    let err = |source| ServeError::Listen { addr, source };
    let probe = socket(addr).map_err(err)?;
    probe.bind(&addr.into()).map_err(err)?;
    // With port 0 the probe chose the port; the workers share that one.
    let addr = probe.local_addr().map_err(err)?.as_socket().unwrap_or(addr);
    drop(probe);
    let err = |source| ServeError::Listen { addr, source };
    (0..workers.max(1))
        .map(|_| {
            let s = socket(addr)?;
            s.set_reuse_port(true)?;
            s.bind(&addr.into())?;
            s.listen(LISTEN_BACKLOG)?;
            Ok(s.into())
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(err)
}

fn socket(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}
