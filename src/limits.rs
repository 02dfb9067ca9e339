//! The bounds of the service in one place: what each setting may be, and the fixed limits
//! that keep one client, one file or one flag from taking all memory, CPU or connections.
//!
//! Settings are checked once at start-up ([`crate::config::ServeConfig::resolve`]): a value
//! out of range is one line naming the flag and exit code 2, never a panic or an allocation
//! sized by the value. The README's "Limits" section lists every constant here.

use std::time::Duration;

use crate::config::{ConfigError, invalid};

/// Largest `--max-age`: one day. Caches should not keep a startup-error message longer.
pub const MAX_MAX_AGE: u32 = 86_400;
/// Largest `--max-connections` (and so `--max-connections-per-address`): far above what the
/// file-descriptor limit of one process allows, far below what would overflow a counter.
pub const MAX_CONNECTIONS: usize = 1_000_000;

/// `--recheck-interval`: at most 20 safety re-reads a second, at least one a day.
pub const RECHECK_INTERVAL: Seconds = Seconds {
    min: 0.05,
    max: 86_400.0,
};
/// `--shutdown-timeout`.
pub const SHUTDOWN_TIMEOUT: Seconds = Seconds {
    min: 0.001,
    max: 3_600.0,
};
/// `--header-timeout`: the first request head of a connection must be complete by then.
pub const HEADER_TIMEOUT: Seconds = Seconds {
    min: 0.05,
    max: 3_600.0,
};
/// `--keepalive-timeout`: an idle keep-alive connection is closed after this.
pub const KEEPALIVE_TIMEOUT: Seconds = Seconds {
    min: 0.05,
    max: 3_600.0,
};

/// How long one read of the message file may take before the reload is given up (a hung
/// network mount): the last good message stays and the failure is reported.
pub const FILE_READ_DEADLINE: Duration = Duration::from_secs(5);
/// Most languages in `userMessages`: every language is one pre-rendered body.
pub const MAX_LANGUAGES: usize = 64;
/// Most `Accept-Language` entries looked at; the rest of the header is ignored, so that the
/// cost of choosing a language does not grow with the header.
pub const MAX_ACCEPT_LANGUAGE_ENTRIES: usize = 32;
/// Most bytes of an unread request body read and discarded before an answer is sent (so
/// that the client, still sending, receives the answer instead of a reset).
pub const DRAIN_BYTES: u64 = 1024 * 1024;
/// Longest time spent discarding an unread request body before answering anyway.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long a connection closed for being idle gets to finish closing (HTTP/2 GOAWAY sent,
/// the client's last frames read) before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// An accepted range of seconds for a setting.
#[derive(Debug, Clone, Copy)]
pub struct Seconds {
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
}

impl Seconds {
    /// `value` as a duration, or the error naming `setting` and the range.
    pub fn check(self, setting: &'static str, value: f64) -> Result<Duration, ConfigError> {
        if value.is_finite() && value >= self.min && value <= self.max {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(invalid(
                setting,
                format!(
                    "{value} is not a number of seconds between {} and {}",
                    self.min, self.max
                ),
            ))
        }
    }
}

/// `value` if it is between 1 and `max`, else the error naming `setting`.
pub fn check_count(setting: &'static str, value: usize, max: usize) -> Result<usize, ConfigError> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(setting, format!("{value} is not between 1 and {max}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_what_is_outside_them() {
        assert!(RECHECK_INTERVAL.check("--recheck-interval", 0.000001).is_err());
        assert!(RECHECK_INTERVAL.check("--recheck-interval", f64::NAN).is_err());
        assert_eq!(
            RECHECK_INTERVAL.check("--recheck-interval", 0.5).unwrap(),
            Duration::from_millis(500)
        );
        assert!(check_count("--max-connections", 0, MAX_CONNECTIONS).is_err());
        assert!(check_count("--max-connections", usize::MAX, MAX_CONNECTIONS).is_err());
        let text = check_count("--max-connections", 2_000_000, MAX_CONNECTIONS)
            .unwrap_err()
            .to_string();
        assert_eq!(text, "--max-connections: 2000000 is not between 1 and 1000000");
    }
}
