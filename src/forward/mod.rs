//! Forwarding error reports to where support already works: a Sentry project (one event per
//! report, through the envelope endpoint) and webhooks (a JSON POST per new group and when a
//! group reaches `--forward-threshold`).
//!
//! Nothing is sent from the request path. The store writes outbox rows in the same
//! transaction as the report ([`crate::store::outbox`]); the delivery task here claims due
//! rows under a lease, delivers them, and records the outcome: delivered, retried later with
//! exponential backoff (the time is in the row, so it survives restarts), or given up after
//! `MAX_ATTEMPTS` or a refusal that no retry can change. Replicas sharing a PostgreSQL
//! store claim with `FOR UPDATE SKIP LOCKED`, so each row is delivered by one of them.
//! A `429` stops deliveries to that target for its `Retry-After` (or Sentry's
//! `X-Sentry-Rate-Limits`). Outcomes are counted in `/metrics` and failures listed in the
//! console.
//!
//! - [`config`]: the settings.
//! - [`sentry`]: the DSN, the event and the envelope.
//! - `webhook`: the webhook body.

pub mod config;
pub mod sentry;
mod webhook;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use tokio::sync::Notify;

pub use config::{ForwardArgs, ForwardConfig};

use crate::store::{Claim, Delivery, OutboxItem, OutboxKind, OutboxStats, Store, StoreError};

/// How long a claim holds its rows: well over one attempt ([`REQUEST_TIMEOUT`]), so that a
/// row is never delivered twice while its claimer lives; after it, a dead claimer's rows
/// are claimed again.
pub(crate) const LEASE: Duration = Duration::from_secs(120);
/// Longest one HTTP attempt may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the outbox is looked at when nothing wakes the task (another replica's rows,
/// retries coming due).
pub(crate) const POLL: Duration = Duration::from_secs(1);
/// Rows claimed (and delivered concurrently) at once.
pub(crate) const BATCH: usize = 8;
/// Attempts after which a row is given up.
pub(crate) const MAX_ATTEMPTS: u32 = 15;
/// The first retry's delay; each further one doubles, up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The longest delay between two attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How often the outbox figures of `/metrics` are refreshed from the store.
const STATS_EVERY: Duration = Duration::from_secs(5);
/// The longest wait a rate-limit answer is taken for.
const MAX_RATE_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The delay before attempt `attempts + 1` after `attempts` failed ones.
pub(crate) fn backoff(attempts: u32) -> Duration {
    let factor = 1u32.checked_shl(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// How long a `429` (or any answer with Sentry's header) says to wait: `X-Sentry-Rate-Limits`,
/// else `Retry-After` (seconds or an HTTP date), else a minute for a 429.
pub(crate) fn rate_limit(status: u16, headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let sentry = text("x-sentry-rate-limits").and_then(sentry::rate_limited_for);
    let retry_after = text("retry-after").and_then(|v| {
        let v = v.trim();
        v.parse::<u64>().ok().map(Duration::from_secs).or_else(|| {
            DateTime::parse_from_rfc2822(v)
                .ok()
                .map(|t| (t.with_timezone(&Utc) - now).to_std().unwrap_or_default())
        })
    });
    let wait = match (sentry, retry_after) {
        (Some(s), _) => Some(s),
        (None, Some(r)) if status == 429 || status == 503 => Some(r),
        (None, _) if status == 429 => Some(Duration::from_secs(60)),
        _ => None,
    };
    wait.map(|w| w.min(MAX_RATE_LIMIT))
}

/// What one attempt's answer means for its row.
pub(crate) fn judge(
    status: u16,
    attempts_before: u32,
    rate_limited: Option<Duration>,
    body: &str,
    now: DateTime<Utc>,
) -> Delivery {
    let error = || {
        let snippet: String = body.chars().take(200).collect();
        let snippet = snippet.trim();
        if snippet.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {snippet}")
        }
    };
    if (200..300).contains(&status) {
        return Delivery::Delivered;
    }
    let retryable = status == 408 || status == 429 || status >= 500;
    if !retryable {
        return Delivery::Failed { error: error() };
    }
    retry(error(), attempts_before, rate_limited, now)
}

/// A retry after `attempts_before` earlier attempts, or giving up after the last one.
fn retry(error: String, attempts_before: u32, wait: Option<Duration>, now: DateTime<Utc>) -> Delivery {
    if attempts_before + 1 >= MAX_ATTEMPTS {
        return Delivery::Failed {
            error: format!("{error} (gave up after {MAX_ATTEMPTS} attempts)"),
        };
    }
    let wait = wait.unwrap_or_else(|| backoff(attempts_before + 1));
    Delivery::Retry {
        error,
        next_at: now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)),
    }
}

/// The forwarding figures of `/metrics`: this process's attempts by target kind and result,
/// and the outbox rows by state as the store last counted them (shared by every replica).
#[derive(Debug, Default)]
pub(crate) struct ForwardMetrics {
    /// [sentry, webhook] × [delivered, retry, failed].
    attempts: [[AtomicU64; 3]; 2],
    pending: AtomicU64,
    retrying: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ForwardMetrics {
    fn attempt(&self, item: &OutboxItem, outcome: &Delivery) {
        let t = usize::from(item.kind != OutboxKind::Report);
        let r = match outcome {
            Delivery::Delivered => 0,
            Delivery::Retry { .. } => 1,
            Delivery::Failed { .. } => 2,
        };
        self.attempts[t][r].fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self, s: OutboxStats) {
        self.pending.store(s.pending, Ordering::Relaxed);
        self.retrying.store(s.retrying, Ordering::Relaxed);
        self.delivered.store(s.delivered, Ordering::Relaxed);
        self.failed.store(s.failed, Ordering::Relaxed);
    }

    /// Attempts: (target kind, result, count).
    pub(crate) fn attempts(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        ["sentry", "webhook"]
            .into_iter()
            .enumerate()
            .flat_map(move |(t, target)| {
                ["delivered", "retry", "failed"]
                    .into_iter()
                    .enumerate()
                    .map(move |(r, result)| (target, result, self.attempts[t][r].load(Ordering::Relaxed)))
            })
    }

    /// Outbox rows by state: (state, count).
    pub(crate) fn outbox(&self) -> [(&'static str, u64); 4] {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("pending", l(&self.pending)),
            ("retrying", l(&self.retrying)),
            ("delivered", l(&self.delivered)),
            ("failed", l(&self.failed)),
        ]
    }
}

/// Why the forwarder cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client for forwarding: {0}")]
pub(crate) struct ForwardError(String);

/// The delivery side of forwarding: the settings, the HTTP client, the rate limits in force
/// and the figures.
#[derive(Debug)]
pub(crate) struct Forwarder {
    pub config: ForwardConfig,
    /// The figures of `/metrics`.
    pub metrics: Arc<ForwardMetrics>,
    client: reqwest::Client,
    /// Targets that answered "too many requests", until when.
    blocked: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Woken when this process stored a report, so its rows go out at once.
    wake: Notify,
}

impl Forwarder {
    /// A forwarder for `config` (its HTTP client: rustls, no redirects, bounded times).
    pub(crate) fn new(config: ForwardConfig, metrics: Arc<ForwardMetrics>) -> Result<Forwarder, ForwardError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("v8help/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ForwardError(e.to_string()))?;
        Ok(Forwarder {
            config,
            metrics,
            client,
            blocked: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        })
    }

    /// Says that this process stored a report (its outbox rows are due now).
    pub(crate) fn report_stored(&self) {
        self.wake.notify_one();
    }

    /// The targets not held back by a rate limit at `now`.
    fn open_targets(&self, now: DateTime<Utc>) -> Vec<String> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        self.config
            .targets()
            .into_iter()
            .filter(|t| blocked.get(t).is_none_or(|until| *until <= now))
            .collect()
    }

    fn block(&self, target: &str, until: DateTime<Utc>) {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let entry = blocked.entry(target.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Delivers due rows until `stop`.
    pub(crate) async fn run(self: Arc<Self>, store: Arc<dyn Store>, stop: impl Future<Output = ()>) {
        if self.config.is_empty() {
            return;
        }
        let token = match crate::console::auth::new_token() {
            Ok(t) => t,
            Err(err) => return tracing::error!("forwarding stopped: no random token: {err}"),
        };
        tokio::pin!(stop);
        let mut last_stats: Option<tokio::time::Instant> = None;
        let mut reported_unreachable = false;
        loop {
            let now = Utc::now();
            let targets = self.open_targets(now);
            let mut full = false;
            if !targets.is_empty() {
                let claim = Claim {
                    targets,
                    now,
                    lease_until: now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(2)),
                    token: token.clone(),
                    limit: BATCH,
                };
                match store.claim_outbox(claim).await {
                    Ok(items) => {
                        reported_unreachable = false;
                        full = items.len() == BATCH;
                        // Stopping abandons attempts in flight: their rows keep the lease
                        // and are claimed again once it runs out.
                        tokio::select! {
                            _ = self.deliver_all(&store, items, &token) => {}
                            _ = &mut stop => return,
                        }
                    }
                    Err(err @ StoreError::Unavailable { .. }) if reported_unreachable => {
                        tracing::debug!("forwarding waits for the store: {err}");
                    }
                    Err(err) => {
                        reported_unreachable = matches!(err, StoreError::Unavailable { .. });
                        tracing::warn!("forwarding cannot read the outbox: {err}");
                    }
                }
            }
            if last_stats.is_none_or(|t| t.elapsed() >= STATS_EVERY) {
                if let Ok(stats) = store.outbox_stats().await {
                    self.metrics.stats(stats);
                }
                last_stats = Some(tokio::time::Instant::now());
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Delivers claimed rows concurrently and records each outcome.
    async fn deliver_all(self: &Arc<Self>, store: &Arc<dyn Store>, items: Vec<OutboxItem>, token: &str) {
        let mut tasks = tokio::task::JoinSet::new();
        for item in items {
            let (this, store, token) = (self.clone(), store.clone(), token.to_string());
            tasks.spawn(async move {
                let outcome = this.deliver(&store, &item).await;
                this.metrics.attempt(&item, &outcome);
                match &outcome {
                    Delivery::Delivered => {
                        tracing::debug!(target = %item.target, id = item.id, "forwarded {}", item.kind.as_str())
                    }
                    Delivery::Retry { error, next_at } => tracing::warn!(
                        target = %item.target, id = item.id, attempts = item.attempts + 1,
                        "forwarding failed: {error}; next attempt at {next_at}"
                    ),
                    Delivery::Failed { error } => tracing::error!(
                        target = %item.target, id = item.id, attempts = item.attempts + 1,
                        "forwarding given up: {error}"
                    ),
                }
                match store.finish_outbox(item.id, &token, outcome, Utc::now()).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        id = item.id,
                        "outbox row's lease ran out before its outcome was recorded"
                    ),
                    Err(err) => tracing::error!(id = item.id, "cannot record a delivery: {err}"),
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// One attempt at one row.
    async fn deliver(&self, store: &Arc<dyn Store>, item: &OutboxItem) -> Delivery {
        let now = Utc::now();
        if let Some(until) = self
            .blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&item.target)
            .filter(|u| **u > now)
        {
            return retry(
                "waiting: the target asked to slow down".into(),
                item.attempts,
                (*until - now).to_std().ok(),
                now,
            );
        }
        let request = match self.request(store, item).await {
            Ok(Some(request)) => request,
            Ok(None) => {
                return Delivery::Failed {
                    error: format!("the {} is no longer configured or stored", item.kind.as_str()),
                };
            }
            Err(err) => return retry(format!("store: {err}"), item.attempts, None, now),
        };
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let wait = rate_limit(status, response.headers(), Utc::now());
                if let Some(wait) = wait {
                    self.block(
                        &item.target,
                        Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                    );
                }
                let body = if (200..300).contains(&status) {
                    String::new()
                } else {
                    response.text().await.unwrap_or_default()
                };
                judge(status, item.attempts, wait, &body, Utc::now())
            }
            Err(err) => {
                let mut text = err.to_string();
                let mut source = std::error::Error::source(&err);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                retry(text, item.attempts, None, Utc::now())
            }
        }
    }

    /// The HTTP request delivering `item`; `None` when its target or its report is gone.
    async fn request(
        &self,
        store: &Arc<dyn Store>,
        item: &OutboxItem,
    ) -> Result<Option<reqwest::RequestBuilder>, StoreError> {
        let link = self.config.group_link(&item.group_key);
        if item.kind == OutboxKind::Report {
            let Some(dsn) = self.config.sentry.as_ref().filter(|_| item.target == config::SENTRY) else {
                return Ok(None);
            };
            let Some(report) = (match item.report_id {
                Some(id) => store.report(id).await?,
                None => None,
            }) else {
                return Ok(None);
            };
            let mut attachments = Vec::new();
            let shot = report
                .summary
                .fields
                .screenshot
                .clone()
                .filter(|n| report.files.iter().any(|f| f.name == *n))
                .or_else(|| {
                    report
                        .files
                        .iter()
                        .find(|f| f.name.to_ascii_lowercase().starts_with("screenshot."))
                        .map(|f| f.name.clone())
                });
            for name in std::iter::once("report.json".to_string()).chain(shot) {
                if let Some(data) = store.archive_file(report.summary.id, &name).await? {
                    attachments.push(sentry::Attachment {
                        content_type: sentry::content_type(&name),
                        filename: name,
                        data,
                    });
                }
            }
            let event = sentry::event(&report, link.as_deref());
            let body = sentry::envelope(dsn, &event, &attachments, Utc::now());
            return Ok(Some(
                self.client
                    .post(dsn.envelope_url.clone())
                    .header("x-sentry-auth", dsn.auth_header())
                    .header("content-type", "application/x-sentry-envelope")
                    .body(body),
            ));
        }
        let Some(hook) = self.config.webhooks.iter().find(|w| w.target == item.target) else {
            return Ok(None);
        };
        let group = store.group(&item.group_key).await?;
        let body = webhook::body(item, group.as_ref(), self.config.threshold, link.as_deref());
        Ok(Some(
            self.client
                .post(hook.url.clone())
                .header("content-type", "application/json")
                .body(body.to_string()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn answers_are_judged_retryable_or_final() {
        let now = Utc::now();
        assert_eq!(judge(200, 0, None, "", now), Delivery::Delivered);
        assert!(
            matches!(judge(400, 0, None, "bad envelope", now), Delivery::Failed { error } if error == "HTTP 400: bad envelope")
        );
        let Delivery::Retry { next_at, .. } = judge(503, 2, None, "", now) else {
            panic!("a 503 is retried")
        };
        assert_eq!(next_at - now, chrono::Duration::seconds(8));
        let Delivery::Retry { next_at, .. } = judge(429, 0, Some(Duration::from_secs(7)), "", now) else {
            panic!("a 429 is retried")
        };
        assert_eq!(
            next_at - now,
            chrono::Duration::seconds(7),
            "Retry-After wins over the backoff"
        );
        assert!(matches!(
            judge(500, MAX_ATTEMPTS - 1, None, "", now),
            Delivery::Failed { .. }
        ));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert("retry-after", "5".parse().unwrap());
        assert_eq!(rate_limit(429, &h, now), Some(Duration::from_secs(5)));
        h.insert("retry-after", "Tue, 01 Dec 2026 10:00:30 GMT".parse().unwrap());
        assert_eq!(rate_limit(429, &h, now), Some(Duration::from_secs(30)));
        assert_eq!(rate_limit(500, &h, now), None);
        h.insert("x-sentry-rate-limits", "90:error:project".parse().unwrap());
        assert_eq!(rate_limit(200, &h, now), Some(Duration::from_secs(90)));
    }
}
