//! What the console needs beyond the [`Store`]'s reads: marking a group through the reports
//! service (so getInfo answers from the new mark at once), and turning the store's sparse
//! time buckets into the fixed series the bar charts draw.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::store::{Bucket, Mark, Store, StoreFuture};

/// Sets or clears support's mark on a group, durably and in what getInfo answers from.
/// [`crate::reports::Reports`] implements it; [`StoreMarks`] does the durable half alone.
pub trait MarkGroup: Send + Sync {
    /// `Some`: set (or replace) the mark on group `key`; `None`: clear it.
    fn mark<'a>(&'a self, key: &'a str, mark: Option<Mark>) -> StoreFuture<'a, ()>;
}

impl MarkGroup for crate::reports::Reports {
    fn mark<'a>(&'a self, key: &'a str, mark: Option<Mark>) -> StoreFuture<'a, ()> {
        Box::pin(crate::reports::Reports::mark(self, key, mark))
    }
}

/// Marks written to the store only, for a console run without the intake (nothing in
/// memory to update).
#[derive(Debug, Clone)]
pub struct StoreMarks(pub Arc<dyn Store>);

impl MarkGroup for StoreMarks {
    fn mark<'a>(&'a self, key: &'a str, mark: Option<Mark>) -> StoreFuture<'a, ()> {
        match mark {
            Some(mark) => self.0.set_mark(key, mark),
            None => self.0.clear_mark(key),
        }
    }
}

/// `n` counts of `step` each, the last ending at `now` (oldest first), from the store's
/// buckets (which list only the steps that have events, by their start).
pub(super) fn series(buckets: &[Bucket], now: DateTime<Utc>, step: Duration, n: usize) -> Vec<u32> {
    let mut out = vec![0u32; n];
    let step_ms = step.num_milliseconds().max(1);
    // The step that holds `now` is the last one.
    let last_start = now.timestamp_millis().div_euclid(step_ms) * step_ms;
    for b in buckets {
        let back = (last_start - b.start.timestamp_millis()).div_euclid(step_ms);
        if (0..n as i64).contains(&back) {
            let slot = &mut out[n - 1 - back as usize];
            *slot = slot.saturating_add(u32::try_from(b.count).unwrap_or(u32::MAX));
        }
    }
    out
}

/// Where the series of `n` steps ending at `now` starts (the first step's start).
pub(super) fn series_start(now: DateTime<Utc>, step: Duration, n: usize) -> DateTime<Utc> {
    let step_ms = step.num_milliseconds().max(1);
    let last_start = now.timestamp_millis().div_euclid(step_ms) * step_ms;
    DateTime::from_timestamp_millis(last_start - step_ms * (n as i64 - 1)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_land_in_their_hour_and_old_ones_are_dropped() {
        let now = DateTime::from_timestamp(1_800_000_000 + 1800, 0).unwrap();
        let hour = |h: i64| DateTime::from_timestamp((1_800_000_000 / 3600 + h) * 3600, 0).unwrap();
        let buckets = [
            Bucket {
                start: hour(0),
                count: 3,
            },
            Bucket {
                start: hour(-1),
                count: 2,
            },
            Bucket {
                start: hour(-30),
                count: 9,
            },
        ];
        let s = series(&buckets, now, Duration::hours(1), 24);
        assert_eq!(s.len(), 24);
        assert_eq!(s[23], 3);
        assert_eq!(s[22], 2);
        assert_eq!(s.iter().sum::<u32>(), 5);
        assert_eq!(series_start(now, Duration::hours(1), 24), hour(-23));
    }
}
