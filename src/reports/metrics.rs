//! The error-report figures of `/metrics`: pushReport outcomes, getInfo decisions,
//! login-failure events (taken, dropped on a full queue, lost by the store), the store's
//! size, and forwarding (attempts by target and result, outbox rows by state).

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::ReportMetrics;

/// Writes the report families into a scrape.
pub(crate) fn encode(m: &ReportMetrics, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let mut reports =
        encoder.encode_descriptor("reports", "pushReport requests, by result", None, MetricType::Counter)?;
    for (result, n) in m.outcomes() {
        ConstCounter::new(n).encode(reports.encode_family(&[("result", result)])?)?;
    }
    let mut decisions = encoder.encode_descriptor(
        "getinfo_answers",
        "getInfo answers, by decision",
        None,
        MetricType::Counter,
    )?;
    for (decision, n) in m.decisions() {
        ConstCounter::new(n).encode(decisions.encode_family(&[("decision", decision)])?)?;
    }
    let mut events = encoder.encode_descriptor(
        "login_failure_events",
        "Startup-error POSTs recorded as login failures, by fate",
        None,
        MetricType::Counter,
    )?;
    for (fate, n) in [
        ("queued", m.login_failures()),
        ("dropped", m.login_failures_dropped()),
        ("lost", m.login_failures_lost()),
    ] {
        ConstCounter::new(n).encode(events.encode_family(&[("fate", fate)])?)?;
    }
    ConstGauge::new(m.store_bytes() as i64).encode(encoder.encode_descriptor(
        "report_store_bytes",
        "Bytes of report archives in the store",
        None,
        MetricType::Gauge,
    )?)?;
    let mut attempts = encoder.encode_descriptor(
        "forward_attempts",
        "Deliveries to Sentry and webhooks tried by this process, by target and result",
        None,
        MetricType::Counter,
    )?;
    for (target, result, n) in m.forward.attempts() {
        ConstCounter::new(n).encode(attempts.encode_family(&[("target", target), ("result", result)])?)?;
    }
    let mut outbox = encoder.encode_descriptor(
        "forward_outbox",
        "Outbox rows in the store (all replicas), by state: pending (of which retrying), delivered, failed",
        None,
        MetricType::Gauge,
    )?;
    for (state, n) in m.forward.outbox() {
        ConstGauge::new(n.min(i64::MAX as u64) as i64).encode(outbox.encode_family(&[("state", state)])?)?;
    }
    Ok(())
}
