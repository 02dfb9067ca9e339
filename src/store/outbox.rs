//! The outbox: deliveries to other systems (Sentry, webhooks) that a report's commit owes.
//!
//! A backend writes the outbox rows of a report in the same transaction as the report, as its
//! [`Forwarding`] plan says: one row per report for each per-report target, and one row when
//! a group is new or reaches the threshold for each group-event target (at most one of each
//! per group and target, even when replicas race). The delivery task of [`crate::forward`]
//! then claims due rows under a lease ([`Claim`]), delivers them and records the outcome
//! ([`Delivery`]); a row another replica holds is skipped, and a row whose lease ran out (its
//! replica died) is claimed again. The rows survive restarts, and so do their retry times.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ReportId;

/// Which outbox rows a stored report brings with it (what `--forward-…` configured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarding {
    /// Targets that get one delivery per report (`sentry`).
    pub every_report: Vec<String>,
    /// Targets that get a delivery when a group is new and when it reaches `threshold`
    /// reports (the webhooks).
    pub group_events: Vec<String>,
    /// The report count whose reaching is announced to `group_events` (`--forward-threshold`);
    /// `None`: new groups only.
    pub threshold: Option<u64>,
}

impl Forwarding {
    /// Whether nothing is forwarded (no outbox rows are written).
    pub fn is_empty(&self) -> bool {
        self.every_report.is_empty() && self.group_events.is_empty()
    }

    /// How far a group's reports need counting after an insert to tell which group events it
    /// brings: 1 is "new", the threshold is "reached".
    pub fn count_cap(&self) -> u64 {
        self.threshold.unwrap_or(1).max(1)
    }

    /// The group events a group now counting `count` (capped at [`Forwarding::count_cap`])
    /// brings: new at 1, the threshold once reached (a repeat is ignored by the store).
    pub fn group_events_at(&self, count: u64) -> Vec<OutboxKind> {
        let mut kinds = Vec::new();
        if self.group_events.is_empty() {
            return kinds;
        }
        if count == 1 {
            kinds.push(OutboxKind::NewGroup);
        }
        if let Some(t) = self.threshold.filter(|t| *t > 1)
            && count >= t
        {
            kinds.push(OutboxKind::Threshold);
        }
        kinds
    }
}

/// What an outbox row announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// One report (a Sentry event).
    Report,
    /// A group's first report.
    NewGroup,
    /// A group reached `--forward-threshold` reports.
    Threshold,
}

impl OutboxKind {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Report => "report",
            OutboxKind::NewGroup => "new_group",
            OutboxKind::Threshold => "threshold",
        }
    }

    /// The kind named by `word`.
    pub fn parse(word: &str) -> Option<OutboxKind> {
        match word {
            "report" => Some(OutboxKind::Report),
            "new_group" => Some(OutboxKind::NewGroup),
            "threshold" => Some(OutboxKind::Threshold),
            _ => None,
        }
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxItem {
    /// Its number (also what makes a delivery's id stable across retries).
    pub id: i64,
    /// The target's name (`sentry`, `webhook:…`).
    pub target: String,
    /// What it announces.
    pub kind: OutboxKind,
    /// The group.
    pub group_key: String,
    /// The report that brought it.
    pub report_id: Option<ReportId>,
    /// The group's count when it was written (capped where counting further was not needed).
    pub count: u64,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it is due (next).
    pub next_at: DateTime<Utc>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was given up.
    pub failed_at: Option<DateTime<Utc>>,
}

/// A request to claim due rows: those of `targets` due at `now` that no live lease holds
/// get a lease of `token` until `lease_until`; at most `limit`, oldest first.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Only rows for these targets (the ones this process can deliver to).
    pub targets: Vec<String>,
    /// The time due rows are compared with.
    pub now: DateTime<Utc>,
    /// Until when the claim holds the rows.
    pub lease_until: DateTime<Utc>,
    /// The claimer's token: only its holder can record an outcome.
    pub token: String,
    /// Most rows claimed.
    pub limit: usize,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered: the row is done.
    Delivered,
    /// Failed for now: try again at `next_at`.
    Retry {
        /// Why it failed.
        error: String,
        /// When to try again.
        next_at: DateTime<Utc>,
    },
    /// Failed for good (the target refused it, or too many attempts).
    Failed {
        /// Why.
        error: String,
    },
}

/// Outbox rows by state, for `/metrics` and the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxStats {
    /// Not yet delivered and not given up.
    pub pending: u64,
    /// Of the pending, those that failed at least once.
    pub retrying: u64,
    /// Delivered.
    pub delivered: u64,
    /// Given up.
    pub failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_events_fire_when_new_and_when_the_threshold_is_reached() {
        let f = Forwarding {
            every_report: vec![],
            group_events: vec!["webhook:x".into()],
            threshold: Some(3),
        };
        assert_eq!(f.group_events_at(1), [OutboxKind::NewGroup]);
        assert!(f.group_events_at(2).is_empty());
        assert_eq!(f.group_events_at(3), [OutboxKind::Threshold]);
        assert_eq!(f.count_cap(), 3);
        let none = Forwarding::default();
        assert!(none.group_events_at(1).is_empty() && none.is_empty());
    }
}
