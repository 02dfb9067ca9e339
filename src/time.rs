//! Time rules: the service's time zone, the date-times admins write in the message
//! document, and the shorter forms the `message set` command accepts (`14:00`, `+2h`).
//!
//! Nothing here reads the clock: every function that needs "now" takes it as a parameter.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The zone that local date-times (without an offset) are read in; `--tz` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(Tz);

/// Why a zone name or a date-time was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The zone asked for (`--tz`, `V8HELP_TZ` or `tz` in the config file) is not an IANA name.
    #[error("unknown time zone {0:?} (expected an IANA name such as Europe/Moscow)")]
    UnknownZone(String),
    /// A `starts`/`expires` value of the message document is not a date-time.
    #[error(
        "{0:?} is not a date-time (expected RFC 3339 such as 2026-11-22T14:00:00+03:00, or a local 2026-11-22T14:00:00)"
    )]
    NotADateTime(String),
    /// A local date-time falls in the hour the clocks skip forward in the service's zone.
    #[error("{time} does not exist in {zone} (the clocks skip it)")]
    NonexistentLocalTime {
        /// The local date-time as written.
        time: String,
        /// The IANA name of the zone it was read in.
        zone: String,
    },
    /// A time given to `message set --until`/`--from` or `message show --at` is in none of
    /// the accepted forms.
    #[error("{0:?} is not a time (expected RFC 3339, a local date-time, HH:MM, or +2h / +30m / +1d)")]
    NotAWhen(String),
}

impl Zone {
    /// UTC; also what tests use so that they do not depend on the machine's zone.
    pub const UTC: Zone = Zone(Tz::UTC);

    /// The zone of this machine (from `TZ` or `/etc/localtime`), or UTC when it cannot be
    /// determined; the second value says why UTC was chosen.
    pub(crate) fn system() -> (Zone, Option<String>) {
        match iana_time_zone::get_timezone() {
            Ok(name) => match name.parse::<Zone>() {
                Ok(zone) => (zone, None),
                Err(_) => (
                    Zone::UTC,
                    Some(format!("system time zone {name:?} is unknown, using UTC")),
                ),
            },
            Err(err) => (
                Zone::UTC,
                Some(format!("cannot determine the system time zone ({err}), using UTC")),
            ),
        }
    }

    /// The IANA name of the zone.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// Reads a local date-time in this zone. A time that occurs twice (the hour the clocks go
    /// back) means its first occurrence; a time that never occurs is an error.
    pub(crate) fn local(&self, naive: NaiveDateTime) -> Result<DateTime<FixedOffset>, TimeError> {
        match self.0.from_local_datetime(&naive) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.fixed_offset()),
            LocalResult::None => Err(TimeError::NonexistentLocalTime {
                time: naive.format("%Y-%m-%dT%H:%M:%S").to_string(),
                zone: self.name().to_string(),
            }),
        }
    }

    /// The instant `t` as seen in this zone, with the zone's offset at that instant.
    pub fn at(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.0).fixed_offset()
    }
}

impl FromStr for Zone {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<Tz>()
            .map(Zone)
            .map_err(|_| TimeError::UnknownZone(s.to_string()))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const LOCAL_FORMATS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// Parses a date-time as the message document allows it: RFC 3339 with an offset, or a local
/// date-time without one, read in `zone`.
pub(crate) fn parse_date_time(s: &str, zone: Zone) -> Result<DateTime<FixedOffset>, TimeError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t);
    }
    for format in LOCAL_FORMATS {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
            return zone.local(naive);
        }
    }
    Err(TimeError::NotADateTime(s.to_string()))
}

/// A time given on the command line, and how it was understood, for the admin to read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct When {
    /// The instant, with the offset of the zone it was read in.
    pub at: DateTime<FixedOffset>,
    /// For `HH:MM`: "today" or "tomorrow", so that the command can say which it chose.
    pub day: Option<&'static str>,
}

/// Parses a WHEN of `message set`: RFC 3339, a local date-time, `HH:MM` (today in `zone`,
/// or tomorrow when that time has already passed), or a relative `+2h`, `+30m`, `+1d`, `+90s`.
pub(crate) fn parse_when(s: &str, now: DateTime<Utc>, zone: Zone) -> Result<When, TimeError> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('+') {
        let duration = parse_relative(rest).ok_or_else(|| TimeError::NotAWhen(s.to_string()))?;
        return Ok(When {
            at: zone.at(now + duration),
            day: None,
        });
    }
    if let Ok(time) = NaiveTime::parse_from_str(s, "%H:%M") {
        let today: NaiveDate = zone.at(now).date_naive();
        let at = zone.local(today.and_time(time))?;
        if at > now {
            return Ok(When { at, day: Some("today") });
        }
        let tomorrow = today.succ_opt().ok_or_else(|| TimeError::NotAWhen(s.to_string()))?;
        return Ok(When {
            at: zone.local(tomorrow.and_time(time))?,
            day: Some("tomorrow"),
        });
    }
    match parse_date_time(s, zone) {
        Ok(at) => Ok(When { at, day: None }),
        Err(TimeError::NotADateTime(_)) => Err(TimeError::NotAWhen(s.to_string())),
        Err(other) => Err(other),
    }
}

/// `2h`, `30m`, `1d`, `90s`, or combinations such as `1h30m`.
fn parse_relative(s: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut digits = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().ok()?;
        digits.clear();
        let part = match c {
            'd' => Duration::try_days(n)?,
            'h' => Duration::try_hours(n)?,
            'm' => Duration::try_minutes(n)?,
            's' => Duration::try_seconds(n)?,
            _ => return None,
        };
        total = total.checked_add(&part)?;
        any = true;
    }
    (any && digits.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn rfc3339_keeps_its_offset() {
        let t = parse_date_time("2026-11-22T14:00:00+03:00", Zone::UTC).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T14:00:00+03:00");
    }

    #[test]
    fn local_time_is_read_in_the_zone() {
        let moscow: Zone = "Europe/Moscow".parse().unwrap();
        let t = parse_date_time("2026-11-22T14:00:00", moscow).unwrap();
        assert_eq!(t.with_timezone(&Utc), utc("2026-11-22T11:00:00Z"));
        let t = parse_date_time("2026-11-22 14:00", moscow).unwrap();
        assert_eq!(t.with_timezone(&Utc), utc("2026-11-22T11:00:00Z"));
    }

    #[test]
    fn a_skipped_local_time_is_an_error_and_a_repeated_one_means_the_first() {
        let riga: Zone = "Europe/Riga".parse().unwrap();
        let err = parse_date_time("2026-03-29T03:30:00", riga).unwrap_err();
        assert!(matches!(err, TimeError::NonexistentLocalTime { .. }), "{err}");
        let t = parse_date_time("2026-10-25T03:30:00", riga).unwrap();
        assert_eq!(t.offset().local_minus_utc(), 3 * 3600);
    }

    #[test]
    fn unknown_zone_is_named() {
        let err = "Europe/Atlantis".parse::<Zone>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown time zone \"Europe/Atlantis\" (expected an IANA name such as Europe/Moscow)"
        );
    }

    #[test]
    fn hh_mm_is_today_or_tomorrow() {
        let moscow: Zone = "Europe/Moscow".parse().unwrap();
        let now = utc("2026-11-22T08:00:00Z"); // 11:00 in Moscow
        let w = parse_when("14:00", now, moscow).unwrap();
        assert_eq!(w.day, Some("today"));
        assert_eq!(w.at.with_timezone(&Utc), utc("2026-11-22T11:00:00Z"));
        let w = parse_when("10:30", now, moscow).unwrap();
        assert_eq!(w.day, Some("tomorrow"));
        assert_eq!(w.at.with_timezone(&Utc), utc("2026-11-23T07:30:00Z"));
    }

    #[test]
    fn relative_times_add_to_now() {
        let now = utc("2026-11-22T08:00:00Z");
        assert_eq!(
            parse_when("+2h", now, Zone::UTC).unwrap().at.with_timezone(&Utc),
            utc("2026-11-22T10:00:00Z")
        );
        assert_eq!(
            parse_when("+1h30m", now, Zone::UTC).unwrap().at.with_timezone(&Utc),
            utc("2026-11-22T09:30:00Z")
        );
        assert!(parse_when("+2x", now, Zone::UTC).is_err());
        assert!(parse_when("+", now, Zone::UTC).is_err());
        assert!(parse_when("+5", now, Zone::UTC).is_err());
    }

    #[test]
    fn garbage_is_not_a_when() {
        let err = parse_when("tomorrow-ish", utc("2026-11-22T08:00:00Z"), Zone::UTC).unwrap_err();
        assert!(matches!(err, TimeError::NotAWhen(_)));
    }
}
