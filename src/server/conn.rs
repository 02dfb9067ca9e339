//! One connection from accept to close: the per-address cap checked at accept, then hyper's
//! connection under a watchdog that closes it when it is quiet.
//!
//! Quiet means: no complete request head within `--header-timeout` of the connection being
//! ready (after the TLS handshake), or no request for `--keepalive-timeout` since the last
//! answer. Only requests count as activity — bytes do not — so an HTTP/2 connection that
//! answers PINGs but asks for nothing is idle too, and gets a GOAWAY. Closing starts with
//! hyper's graceful shutdown (HTTP/1.1: close when idle; HTTP/2: GOAWAY, then the streams
//! in flight finish) and the connection is dropped after [`CLOSE_GRACE`] at the latest.
//! On service shutdown every connection gets the graceful shutdown and the worker waits
//! for them up to `--shutdown-timeout`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::routes::{self, App};
use crate::limits::CLOSE_GRACE;
use crate::reports::intake::ClientAddr;

/// Open connections per client IP address, shared by every worker and both listeners.
#[derive(Debug)]
pub(super) struct PerAddress {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    /// A table allowing `cap` connections per address (`--max-connections-per-address`).
    pub(super) fn new(cap: usize) -> Arc<PerAddress> {
        Arc::new(PerAddress {
            cap,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, or `None` when it has `cap` open already.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub(super) struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The timeouts of one connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// Until the first request head is complete (`--header-timeout`).
    pub first_request: Duration,
    /// From the last answer to the next request (`--keepalive-timeout`).
    pub keepalive: Duration,
}

/// Requests in flight on one connection, how many have started or ended, and when the last
/// one ended: read by the watchdog when its timer fires, so that a request costs two atomic
/// additions and a clock read, never a wake-up of the watchdog or a new timer.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    events: AtomicU64,
    born: Instant,
    /// Milliseconds after `born` at which the last request ended.
    last_end: AtomicU64,
}

impl Activity {
    fn start(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// How long the connection has been without a request in flight.
    fn idle(&self) -> Duration {
        let since_start = self.born.elapsed();
        if self.events.load(Ordering::Relaxed) == 0 {
            return since_start;
        }
        since_start.saturating_sub(Duration::from_millis(self.last_end.load(Ordering::Relaxed)))
    }
}

/// A request being answered; dropping it (answer produced, or request cancelled) ends it.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let at = self.0.born.elapsed().as_millis() as u64;
        self.0.last_end.store(at, Ordering::Relaxed);
        self.0.events.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Who is on a connection and since when: what its requests and its watchdog are told.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    /// The client's address (logs, per-request extensions).
    pub addr: SocketAddr,
    /// Whether the connection is TLS (answers then carry Strict-Transport-Security).
    pub tls: bool,
    /// When the TLS handshake ended (or the connection was accepted): the first request's
    /// time is counted from here.
    pub ready: Instant,
}

/// Serves one connection (TLS already done) with `builder` until the client closes, the
/// watchdog finds it quiet, or `stop` turns true.
pub(super) async fn serve<I>(
    io: I,
    builder: &auto::Builder<TokioExecutor>,
    client: Peer,
    app: Arc<App>,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        events: AtomicU64::new(0),
        born: client.ready,
        last_end: AtomicU64::new(0),
    });
    let Peer { addr: peer, tls, .. } = client;
    let quiet_closed = app.metrics.clone();
    let service = {
        let activity = activity.clone();
        service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let busy = activity.start();
            req.extensions_mut().insert(ClientAddr(peer));
            let app = app.clone();
            async move {
                let answer = routes::handle(req, app, tls).await;
                drop(busy);
                answer
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    // The sooner of the two, so that a connection whose first request came early is
    // checked against the keep-alive limit in time.
    let mut wait = timeouts.first_request.min(timeouts.keepalive);
    while !stopping {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.changed() => stopping = true,
            _ = tokio::time::sleep(wait) => {
                let limit = if activity.events.load(Ordering::Relaxed) > 0 {
                    timeouts.keepalive
                } else {
                    timeouts.first_request
                };
                if activity.in_flight.load(Ordering::Relaxed) > 0 {
                    wait = limit;
                    continue;
                }
                let idle = activity.idle();
                if idle >= limit {
                    tracing::debug!(%peer, "closing a quiet connection after {limit:?}");
                    quiet_closed.closed_quiet();
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await;
                    return;
                }
                wait = limit - idle;
            }
        }
    }
    // Service shutdown: requests in flight finish; the worker's deadline bounds the wait.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
