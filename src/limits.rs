//! The bounds of the service in one place: what each setting may be, and the fixed limits
//! that keep one client, one file or one flag from taking all memory, CPU or connections.
//!
//! Settings are checked once at start-up ([`crate::config::ServeConfig::resolve`]): each
//! setting's `settings!` entry names its `Bound` (one here, or the parser function of a
//! module's setting with a shape of its own); a value out of range is one line naming the
//! flag and exit code 2, never a panic or an allocation sized by the value.
//! The README's "Limits" section lists every constant here.

use std::time::Duration;

/// Largest `--max-age`: one day. Caches should not keep a startup-error message longer.
pub const MAX_MAX_AGE: u32 = 86_400;
/// `--max-age`: at most [`MAX_MAX_AGE`].
pub(crate) const MAX_AGE: Between<u32> = Between {
    min: 0,
    max: MAX_MAX_AGE,
    unit: " seconds (one day at most)",
};
/// Largest `--max-connections` (and so `--max-connections-per-address`): far above what the
/// file-descriptor limit of one process allows, far below what would overflow a counter.
pub(crate) const MAX_CONNECTIONS: usize = 1_000_000;
/// `--max-connections`: between 1 and [`MAX_CONNECTIONS`].
pub(crate) const CONNECTIONS: Between<usize> = count(MAX_CONNECTIONS);
/// `--workers`: between 1 and 1024 threads.
pub(crate) const WORKERS: Between<usize> = count(1024);

/// `--recheck-interval`: at most 20 safety re-reads a second, at least one a day.
pub(crate) const RECHECK_INTERVAL: Seconds = Seconds {
    min: 0.05,
    max: 86_400.0,
};
/// `--shutdown-timeout`.
pub(crate) const SHUTDOWN_TIMEOUT: Seconds = Seconds {
    min: 0.001,
    max: 3_600.0,
};
/// `--header-timeout`: the first request head of a connection must be complete by then.
pub(crate) const HEADER_TIMEOUT: Seconds = Seconds {
    min: 0.05,
    max: 3_600.0,
};
/// `--keepalive-timeout`: an idle keep-alive connection is closed after this.
pub(crate) const KEEPALIVE_TIMEOUT: Seconds = Seconds {
    min: 0.05,
    max: 3_600.0,
};

/// How long one read of the message file may take before the reload is given up (a hung
/// network mount): the last good message stays and the failure is reported.
pub(crate) const FILE_READ_DEADLINE: Duration = Duration::from_secs(5);
/// Most languages in `userMessages`: every language is one pre-rendered body.
pub const MAX_LANGUAGES: usize = 64;
/// Most `Accept-Language` entries looked at; the rest of the header is ignored, so that the
/// cost of choosing a language does not grow with the header.
pub(crate) const MAX_ACCEPT_LANGUAGE_ENTRIES: usize = 32;
/// Most bytes of an unread request body read and discarded before an answer is sent (so
/// that the client, still sending, receives the answer instead of a reset).
pub(crate) const DRAIN_BYTES: u64 = 1024 * 1024;
/// Longest time spent discarding an unread request body before answering anyway.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long a connection closed for being idle gets to finish closing (HTTP/2 GOAWAY sent,
/// the client's last frames read) before it is dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What a setting's value may be: turns the value as read (from a flag, a variable or the
/// file) into the value used, or says what is wrong with it (the caller names the flag).
pub(crate) trait Bound<T> {
    /// The value the service uses.
    type Out;
    /// `value` if it is within the bound, else the problem with it.
    fn check(&self, value: T) -> Result<Self::Out, String>;
}

/// A function from the value as read to the value used, such as a module's parser of a
/// setting with a shape of its own (`--reports-path`, `--forward-webhook`).
impl<T, O, F: Fn(T) -> Result<O, String>> Bound<T> for F {
    type Out = O;
    fn check(&self, value: T) -> Result<O, String> {
        self(value)
    }
}

/// Any value the setting's type can hold (an address, a path).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Any;

impl<T> Bound<T> for Any {
    type Out = T;
    fn check(&self, value: T) -> Result<T, String> {
        Ok(value)
    }
}

/// An accepted range of seconds for a setting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds {
    pub min: f64,
    pub max: f64,
}

impl Bound<f64> for Seconds {
    type Out = Duration;
    fn check(&self, value: f64) -> Result<Duration, String> {
        if value.is_finite() && value >= self.min && value <= self.max {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(format!(
                "{value} is not a number of seconds between {} and {}",
                self.min, self.max
            ))
        }
    }
}

/// A value between `min` and `max`, both included (a count of threads or connections, a
/// `max-age`); `unit` follows the numbers in the error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Between<T> {
    pub min: T,
    pub max: T,
    pub unit: &'static str,
}

impl<T: PartialOrd + Copy + std::fmt::Display> Bound<T> for Between<T> {
    type Out = T;
    fn check(&self, value: T) -> Result<T, String> {
        if value >= self.min && value <= self.max {
            Ok(value)
        } else {
            Err(format!(
                "{value} is not between {} and {}{}",
                self.min, self.max, self.unit
            ))
        }
    }
}

/// A count between 1 and `max`.
pub(crate) const fn count(max: usize) -> Between<usize> {
    Between { min: 1, max, unit: "" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_what_is_outside_them() {
        assert!(RECHECK_INTERVAL.check(0.000001).is_err());
        assert!(RECHECK_INTERVAL.check(f64::NAN).is_err());
        assert_eq!(RECHECK_INTERVAL.check(0.5).unwrap(), Duration::from_millis(500));
        assert!(CONNECTIONS.check(0).is_err());
        assert!(CONNECTIONS.check(usize::MAX).is_err());
        let text = CONNECTIONS.check(2_000_000).unwrap_err();
        assert_eq!(text, "2000000 is not between 1 and 1000000");
        assert_eq!(MAX_AGE.check(MAX_MAX_AGE), Ok(MAX_MAX_AGE));
        assert_eq!(
            MAX_AGE.check(MAX_MAX_AGE + 1).unwrap_err(),
            "86401 is not between 0 and 86400 seconds (one day at most)"
        );
    }
}
