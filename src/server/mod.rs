//! Serving: the HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN), the optional plain-HTTP
//! listener for use behind a reverse proxy, connection limits and timeouts, and graceful
//! shutdown.
//!
//! The server gets only what it serves: `Listeners::bind` does everything that can fail
//! at start-up (ports, the TLS configuration), and `run` serves an `App` on them until
//! its shutdown token is cancelled. What keeps the served state fresh (file watchers, the
//! report service) is wired up by [`crate::service`], not here.

pub mod bases;
mod conn;
mod lane;
mod request;
pub(crate) mod routes;
pub mod tls;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::metrics::{Handshake, OpenConnection};
use crate::platform;
pub(crate) use routes::App;
use tls::{Certificate, TlsError};

/// Pending connections the kernel queues per listener: enough for thousands of thin clients
/// failing at the same second (Linux caps it at `net.core.somaxconn`, 4096 by default).
pub(crate) const LISTEN_BACKLOG: i32 = 8192;
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

/// The bound sockets and the TLS configuration: nothing left that can fail.
pub(crate) struct Listeners {
    /// One HTTPS listener per worker thread, all on the same port (SO_REUSEPORT).
    https: Vec<std::net::TcpListener>,
    /// The same for plain HTTP, when configured.
    http: Vec<std::net::TcpListener>,
    acceptor: TlsAcceptor,
}

impl Listeners {
    /// Binds `config`'s listen addresses, one socket per worker, and prepares TLS with
    /// `certificate` (which may be replaced while serving).
    pub(crate) fn bind(config: &ServeConfig, certificate: Arc<Certificate>) -> Result<Listeners, ServeError> {
        let acceptor = TlsAcceptor::from(tls::server_config(certificate)?);
        let https = listen_per_worker(config.listen, config.workers)?;
        let http = match config.http_listen {
            Some(addr) => listen_per_worker(addr, config.workers)?,
            None => Vec::new(),
        };
        Ok(Listeners { https, http, acceptor })
    }

    /// The bound HTTPS address (useful with port 0).
    pub(crate) fn https_addr(&self) -> Option<SocketAddr> {
        self.https.first().and_then(|l| l.local_addr().ok())
    }

    /// The bound plain-HTTP address, if any.
    pub(crate) fn http_addr(&self) -> Option<SocketAddr> {
        self.http.first().and_then(|l| l.local_addr().ok())
    }
}

/// Serves `app` on `listeners` until `shutdown` is cancelled, then stops accepting and gives
/// in-flight requests up to the configured deadline.
///
/// Connections are served by `workers` threads, each with its own single-threaded runtime
/// and its own listener on the shared port: the kernel spreads new connections over them,
/// and a connection never moves between threads (no work stealing, no cross-thread wake-ups
/// on the request path) — except once, at its first request, to a report lane
/// ([`lane`]) when that request is a report call.
pub(crate) async fn run(listeners: Listeners, app: Arc<App>, shutdown: CancellationToken) {
    let Listeners {
        https,
        mut http,
        acceptor,
    } = listeners;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let builders = Arc::new(Builders::new(&app.config));
    let (lanes, lane_threads) = match app.reports.as_ref().map(|_| lane::Lanes::start(https.len())) {
        Some(Ok((lanes, threads))) => (Some(Arc::new(lanes)), Some(threads)),
        Some(Err(err)) => {
            tracing::error!("cannot start the report lanes (reports are served with the message): {err}");
            (None, None)
        }
        None => (None, None),
    };
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
            lanes: lanes.clone(),
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

    shutdown.cancelled().await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    let _ = stop_tx.send(true);
    for done in finished {
        let _ = done.await;
    }
    if let Some(threads) = lane_threads {
        threads.stop();
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
    /// Where report calls are served, when reports are on.
    lanes: Option<Arc<lane::Lanes>>,
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
            lanes,
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
            let accepted = Accepted {
                client: conn::Peer {
                    addr: peer,
                    tls,
                    ready: Instant::now(),
                },
                held: Held {
                    _open: app.metrics.connection(),
                    _slot: slot,
                    _permit: permit,
                    _open_tx: open_tx.clone(),
                },
                app: app.clone(),
                builders: builders.clone(),
                lanes: lanes.clone(),
                timeouts,
                stop: stop.clone(),
            };
            let stream = lane::Socket::Attached(stream);
            if tls {
                let acceptor = acceptor.clone();
                tokio::spawn(serve_tls(stream, acceptor, accepted));
            } else {
                tokio::spawn(accepted.serve(stream, Protocol::Plain));
            }
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

async fn serve_tls(stream: lane::Socket, acceptor: TlsAcceptor, accepted: Accepted) {
    let app = &accepted.app;
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
    accepted
        .serve(stream, if h2 { Protocol::H2 } else { Protocol::H1 })
        .await;
}

/// What a connection holds while it is open, wherever it is served: released at its end.
struct Held {
    _open: OpenConnection,
    _slot: conn::AddressSlot,
    _permit: OwnedSemaphorePermit,
    /// The worker waits at shutdown until every connection has dropped its sender.
    _open_tx: tokio::sync::mpsc::Sender<()>,
}

/// How a connection speaks, which picks its hyper builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// TLS with ALPN `http/1.1` (or none).
    H1,
    /// TLS with ALPN `h2`.
    H2,
    /// Plain HTTP: HTTP/1.1, or HTTP/2 with prior knowledge.
    Plain,
}

/// One accepted connection and what serving it takes.
struct Accepted {
    /// Its `ready` is set again once the TLS handshake is done.
    client: conn::Peer,
    held: Held,
    app: Arc<App>,
    builders: Arc<Builders>,
    lanes: Option<Arc<lane::Lanes>>,
    timeouts: conn::Timeouts,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// A connection whose socket can move to a lane thread: plain, or TLS over it.
trait Movable: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn socket(&mut self) -> &mut lane::Socket;
}

impl Movable for lane::Socket {
    fn socket(&mut self) -> &mut lane::Socket {
        self
    }
}

impl Movable for tokio_rustls::server::TlsStream<lane::Socket> {
    fn socket(&mut self) -> &mut lane::Socket {
        self.get_mut().0
    }
}

impl Accepted {
    /// Serves the connection (TLS done) here, or on a report lane when reports are on and
    /// its first request is a report call.
    async fn serve<I: Movable>(mut self, mut io: I, protocol: Protocol) {
        self.client.ready = Instant::now();
        let Some(lanes) = self.lanes.clone().filter(|_| protocol != Protocol::H2) else {
            return self.finish(lane::Prefixed::new(Vec::new(), io), protocol).await;
        };
        if *self.stop.borrow() {
            return;
        }
        // The first line counts against the header timeout as hyper's reading would.
        let read = tokio::select! {
            read = tokio::time::timeout(self.timeouts.first_request, lane::first_request_line(&mut io)) => read,
            _ = self.stop.changed() => return,
        };
        let head = match read {
            Ok(Ok(head)) if !head.is_empty() => head,
            Ok(_) => return,
            Err(_) => {
                tracing::debug!(peer = %self.client.addr, "closing a quiet connection: no request line in time");
                self.app.metrics.closed_quiet();
                return;
            }
        };
        let is_report = |path: &str| {
            self.app
                .reports
                .as_ref()
                .is_some_and(|r| crate::reports::intake::call_for(path, &r.config.path).is_some())
        };
        if !lane::is_report_line(&head, is_report) {
            return self.finish(lane::Prefixed::new(head, io), protocol).await;
        }
        if let Err(err) = io.socket().detach() {
            return tracing::debug!(peer = %self.client.addr, "cannot hand the connection to a report lane: {err}");
        }
        self.app.metrics.to_report_lane();
        lanes.spawn(async move {
            if let Err(err) = io.socket().attach() {
                return tracing::debug!(peer = %self.client.addr, "cannot take the connection on a report lane: {err}");
            }
            self.finish(lane::Prefixed::new(head, io), protocol).await;
        });
    }

    async fn finish<I: Movable>(self, io: lane::Prefixed<I>, protocol: Protocol) {
        let builder = match protocol {
            Protocol::H1 => &self.builders.h1,
            Protocol::H2 => &self.builders.h2,
            Protocol::Plain => &self.builders.plain,
        };
        conn::serve(io, builder, self.client, self.app, self.timeouts, self.stop).await;
        drop(self.held);
    }
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
/// Where sockets cannot share an address (Windows), one listener serves every connection.
fn listen_per_worker(addr: SocketAddr, workers: usize) -> Result<Vec<std::net::TcpListener>, ServeError> {
    let err = |source| ServeError::Listen { addr, source };
    let probe = platform::listen_socket(addr, false).map_err(err)?;
    probe.bind(&addr.into()).map_err(err)?;
    // With port 0 the probe chose the port; the workers share that one.
    let addr = probe.local_addr().map_err(err)?.as_socket().unwrap_or(addr);
    drop(probe);
    let err = |source| ServeError::Listen { addr, source };
    let workers = if platform::SHARED_LISTENERS { workers.max(1) } else { 1 };
    (0..workers)
        .map(|_| {
            let s = platform::listen_socket(addr, true)?;
            s.bind(&addr.into())?;
            s.listen(LISTEN_BACKLOG)?;
            Ok(s.into())
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(err)
}
