//! Prometheus metrics for `/metrics`: requests by route and status, TLS handshakes and their
//! failures, open connections, message reloads, certificate reloads, the message's state and
//! the seconds until it expires, the messages directory's documents by state, and the
//! error-report intake's counters.
//!
//! The request path only adds to plain atomic counters; everything else (reload figures,
//! message state) is read from its source when `/metrics` is scraped.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::Utc;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::document::State;
use crate::messages::Messages;
use crate::reports::Reports;
use crate::watch::LiveMessage;

/// What a request asked for, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The message itself: `/` and `/message.json`.
    Message,
    /// The liveness check, `/healthz`.
    Healthz,
    /// The Prometheus scrape, `/metrics`.
    Metrics,
    /// The web client's offline help: the help page, its service worker and script.
    Web,
    /// The error-registration service: getInfo and pushReport.
    Reports,
    /// Any other path, answered with 404.
    Unknown,
}

const ROUTES: [(Route, &str); 6] = [
    (Route::Message, "message"),
    (Route::Healthz, "healthz"),
    (Route::Metrics, "metrics"),
    (Route::Web, "web"),
    (Route::Reports, "reports"),
    (Route::Unknown, "unknown"),
];

/// The statuses the service answers with; anything else is counted as "other".
const STATUSES: [u16; 10] = [200, 204, 304, 400, 404, 405, 408, 413, 500, 503];

/// Counters shared by every worker thread.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// `[route][status index]`, the last status slot being "other".
    requests: [[AtomicU64; STATUSES.len() + 1]; ROUTES.len()],
    open_connections: AtomicI64,
    handshakes_full: AtomicU64,
    handshakes_resumed: AtomicU64,
    handshake_errors: AtomicU64,
    handshake_timeouts: AtomicU64,
    refused_per_address: AtomicU64,
    closed_quiet: AtomicU64,
    to_report_lanes: AtomicU64,
    certificate_reloads: AtomicU64,
    certificate_reload_failures: AtomicU64,
}

/// Whether a TLS handshake started a new session or resumed one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Handshake {
    /// A new session: the full key exchange and certificate signature.
    Full,
    /// A session resumed from the cache or a ticket, skipping the signature.
    Resumed,
}

impl Metrics {
    /// Counts one answered request.
    pub(crate) fn request(&self, route: Route, status: u16) {
        let r = ROUTES.iter().position(|(x, _)| *x == route).unwrap_or(ROUTES.len() - 1);
        let s = STATUSES.iter().position(|x| *x == status).unwrap_or(STATUSES.len());
        self.requests[r][s].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was accepted; the returned guard counts it as open until dropped.
    pub(crate) fn connection(self: &Arc<Self>) -> OpenConnection {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// Counts a completed TLS handshake.
    pub(crate) fn handshake(&self, kind: Handshake) {
        match kind {
            Handshake::Full => &self.handshakes_full,
            Handshake::Resumed => &self.handshakes_resumed,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed at accept: its address had `--max-connections-per-address` open.
    pub(crate) fn refused_per_address(&self) {
        self.refused_per_address.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed for being quiet (no request within the header or
    /// keep-alive timeout).
    pub(crate) fn closed_quiet(&self) {
        self.closed_quiet.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection handed to a report lane (its first request was a report call).
    pub(crate) fn to_report_lane(&self) {
        self.to_report_lanes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed TLS handshake (`timed_out`: the client did not finish in time).
    pub(crate) fn handshake_failed(&self, timed_out: bool) {
        if timed_out {
            &self.handshake_timeouts
        } else {
            &self.handshake_errors
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a certificate reload attempt.
    pub(crate) fn certificate_reload(&self, ok: bool) {
        if ok {
            &self.certificate_reloads
        } else {
            &self.certificate_reload_failures
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// Decrements the open-connection gauge when the connection ends.
pub(crate) struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Renders the metrics in the Prometheus/OpenMetrics text format.
pub(crate) fn render(
    metrics: &Arc<Metrics>,
    live: &Arc<LiveMessage>,
    reports: Option<&Arc<Reports>>,
    messages: Option<&Arc<Messages>>,
) -> String {
    let mut registry = Registry::with_prefix("v8help");
    registry.register_collector(Box::new(Scrape {
        metrics: metrics.clone(),
        live: live.clone(),
        reports: reports.cloned(),
        messages: messages.cloned(),
    }));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

/// The messages directory as counts (a label per state, never per base: thousands of
/// bases would be thousands of series).
fn encode_bases(s: &crate::messages::Summary, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let mut states = encoder.encode_descriptor(
        "base_documents",
        "Documents of the messages directory, by their state now",
        None,
        MetricType::Gauge,
    )?;
    for (state, n) in [
        ("active", s.active),
        ("scheduled", s.scheduled),
        ("expired", s.expired),
        ("none", s.none),
    ] {
        ConstGauge::new(n as i64).encode(states.encode_family(&[("state", state)])?)?;
    }
    gauge(
        encoder,
        "base_documents_failing",
        "Documents whose last load was refused (their last good version is served)",
        s.failing as i64,
    )?;
    counter(
        encoder,
        "base_reloads",
        "Loads that changed a document of the messages directory",
        s.reloads,
    )?;
    counter(
        encoder,
        "base_reload_failures",
        "Loads of documents of the messages directory that were refused",
        s.failures,
    )
}

/// Reads everything at scrape time.
#[derive(Debug)]
struct Scrape {
    metrics: Arc<Metrics>,
    live: Arc<LiveMessage>,
    reports: Option<Arc<Reports>>,
    messages: Option<Arc<Messages>>,
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let m = &self.metrics;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        let mut requests = encoder.encode_descriptor(
            "requests",
            "Requests answered, by route and status",
            None,
            MetricType::Counter,
        )?;
        for (r, (_, route)) in ROUTES.iter().enumerate() {
            for (s, slot) in m.requests[r].iter().enumerate() {
                let n = load(slot);
                if n == 0 {
                    continue;
                }
                let status = STATUSES.get(s).map_or_else(|| "other".to_string(), u16::to_string);
                let labels = [("route", *route), ("status", status.as_str())];
                ConstCounter::new(n).encode(requests.encode_family(&labels)?)?;
            }
        }

        let mut handshakes = encoder.encode_descriptor(
            "tls_handshakes",
            "Completed TLS handshakes, by kind",
            None,
            MetricType::Counter,
        )?;
        for (kind, n) in [
            ("full", load(&m.handshakes_full)),
            ("resumed", load(&m.handshakes_resumed)),
        ] {
            ConstCounter::new(n).encode(handshakes.encode_family(&[("kind", kind)])?)?;
        }
        let mut failures = encoder.encode_descriptor(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in [
            ("error", load(&m.handshake_errors)),
            ("timeout", load(&m.handshake_timeouts)),
        ] {
            ConstCounter::new(n).encode(failures.encode_family(&[("reason", reason)])?)?;
        }
        gauge(
            &mut encoder,
            "open_connections",
            "Connections open now",
            m.open_connections.load(Ordering::Relaxed),
        )?;

        counter(
            &mut encoder,
            "connections_refused_per_address",
            "Connections closed at accept: their address had --max-connections-per-address open",
            load(&m.refused_per_address),
        )?;
        counter(
            &mut encoder,
            "connections_closed_quiet",
            "Connections closed for sending no request within --header-timeout or --keepalive-timeout",
            load(&m.closed_quiet),
        )?;
        counter(
            &mut encoder,
            "connections_to_report_lanes",
            "Connections served at low priority on a report lane: their first request was getInfo or pushReport",
            load(&m.to_report_lanes),
        )?;

        let status = self.live.status();
        counter(
            &mut encoder,
            "reloads",
            "Message file loads that changed the served message",
            status.reloads,
        )?;
        counter(
            &mut encoder,
            "reload_failures",
            "Message file loads that were refused",
            status.failures,
        )?;
        counter(
            &mut encoder,
            "certificate_reloads",
            "Certificate and key loads",
            load(&m.certificate_reloads),
        )?;
        counter(
            &mut encoder,
            "certificate_reload_failures",
            "Certificate and key loads that were refused",
            load(&m.certificate_reload_failures),
        )?;

        if let Some(reports) = &self.reports {
            crate::reports::metrics::encode(&reports.metrics, &mut encoder)?;
            let health = reports.store.health();
            ConstGauge::new(i64::from(health.reachable)).encode(encoder.encode_descriptor(
                "store_reachable",
                "1 while the report store answers, 0 while it cannot be reached",
                None,
                MetricType::Gauge,
            )?)?;
            ConstGauge::new(health.spooled.min(i64::MAX as u64) as i64).encode(encoder.encode_descriptor(
                "store_spooled_reports",
                "Reports acknowledged and waiting in the spool for the database",
                None,
                MetricType::Gauge,
            )?)?;
        }

        let now = Utc::now();
        if let Some(messages) = &self.messages {
            encode_bases(&messages.summary(now), &mut encoder)?;
        }
        let snapshot = self.live.snapshot();
        let state = snapshot.document.state(now);
        let mut states = encoder.encode_descriptor(
            "message_state",
            "1 for the message's current state",
            None,
            MetricType::Gauge,
        )?;
        for s in [State::Active, State::Scheduled, State::Expired, State::None] {
            ConstGauge::new(i64::from(s == state)).encode(states.encode_family(&[("state", s.as_str())])?)?;
        }
        if let Some(expires) = snapshot.document.expires.filter(|_| state != State::None) {
            let seconds = (expires.with_timezone(&Utc) - now).num_milliseconds() as f64 / 1000.0;
            ConstGauge::new(seconds.max(0.0)).encode(encoder.encode_descriptor(
                "message_seconds_until_expiry",
                "Seconds until the message expires (0 once expired)",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}
