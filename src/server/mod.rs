//! Serving: the HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN), the optional plain-HTTP
//! listener for use behind a reverse proxy, connection limits and timeouts, and graceful
//! shutdown.
//!
//! [`Server::bind`] does everything that can fail at start-up (ports, certificate, key), so
//! that a bad setting is one clear error before anything is served; [`Server::run`] then
//! serves until its shutdown future completes.

pub mod routes;
pub mod tls;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::ServeConfig;
use crate::watch::{self, LiveMessage};
pub use routes::App;
use tls::{Identity, TlsError};

/// Pending connections the kernel queues per listener: enough for thousands of thin clients
/// failing at the same second (Linux caps it at `net.core.somaxconn`, 4096 by default).
pub const LISTEN_BACKLOG: i32 = 8192;
/// Largest request head (request line and headers) accepted over HTTP/1.1 and HTTP/2.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A service whose sockets are bound and whose TLS is ready: nothing left that can fail.
pub struct Server {
    app: Arc<App>,
    https: TcpListener,
    http: Option<TcpListener>,
    acceptor: TlsAcceptor,
    /// SHA-256 of the certificate when it is the in-memory self-signed one.
    pub self_signed_fingerprint: Option<String>,
}

impl Server {
    /// Binds the listeners, loads the certificate and key (or makes the self-signed one)
    /// and loads the message file (whose absence or errors are logged, not fatal).
    /// Must be called inside a tokio runtime.
    pub fn bind(config: ServeConfig) -> Result<Server, ServeError> {
        let (identity, files) = match &config.tls_files {
            Some((cert, key)) => (Identity::from_files(cert, key)?, Some((cert.as_path(), key.as_path()))),
            None => (Identity::self_signed()?, None),
        };
        let self_signed_fingerprint = files.is_none().then(|| identity.fingerprint());
        let acceptor = TlsAcceptor::from(tls::server_config(identity, files)?);
        let https = listen(config.listen)?;
        let http = config.http_listen.map(listen).transpose()?;
        let live = LiveMessage::load(config.message.clone(), config.zone);
        Ok(Server {
            app: App::new(live, config),
            https,
            http,
            acceptor,
            self_signed_fingerprint,
        })
    }

    /// The bound HTTPS address (useful with port 0).
    pub fn https_addr(&self) -> SocketAddr {
        self.https.local_addr().unwrap_or(self.app.config.listen)
    }

    /// The bound plain-HTTP address, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The served message, for callers that want to reload it (SIGHUP) or read its status.
    pub fn live(&self) -> Arc<LiveMessage> {
        self.app.live.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting and gives in-flight requests
    /// up to the configured deadline. `reload` forces a re-read of the message file.
    pub async fn run(self, reload: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        let Server {
            app,
            https,
            http,
            acceptor,
            ..
        } = self;
        let config = &app.config;
        let (stop_watch_tx, stop_watch_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(watch::watch(app.live.clone(), config.recheck_interval, reload, async {
            let _ = stop_watch_rx.await;
        }));

        let builders = Arc::new(Builders::new(config));
        let limit = Arc::new(Semaphore::new(config.max_connections));
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = limit.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                () = &mut shutdown => break,
            };
            let (stream, tls) = tokio::select! {
                accepted = https.accept() => (accepted, true),
                accepted = accept_or_wait(http.as_ref()) => (accepted, false),
                () = &mut shutdown => break,
            };
            let stream = match stream {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let watcher = graceful.watcher();
            let app = app.clone();
            let builders = builders.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if tls {
                    serve_tls(stream, acceptor, app, &builders, watcher).await;
                } else {
                    let service = service_fn(move |req| routes::handle(req, app.clone(), false));
                    let conn = builders.plain.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
                drop(permit);
            });
        }
        drop(https);
        drop(http);
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        let _ = stop_watch_tx.send(());
        if tokio::time::timeout(config.shutdown_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "connections still open after {:?}; closing them",
                config.shutdown_timeout
            );
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
    acceptor: TlsAcceptor,
    app: Arc<App>,
    builders: &Builders,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let stream = match tokio::time::timeout(app.config.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            tracing::debug!("TLS handshake failed: {err}");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let builder = if h2 { &builders.h2 } else { &builders.h1 };
    let service = service_fn(move |req| routes::handle(req, app.clone(), true));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let _ = watcher.watch(conn.into_owned()).await;
}

async fn accept_or_wait(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Binds with SO_REUSEADDR and a deep backlog.
fn listen(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    let err = |source| ServeError::Listen { addr, source };
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(LISTEN_BACKLOG).map_err(err)?;
    TcpListener::from_std(socket.into()).map_err(err)
}
