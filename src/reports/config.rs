//! The error-report settings of `v8help serve` (`--reports-…`), how they are resolved from
//! flags, environment and the TOML file, and the duration and size forms they take
//! (`90d`, `24h`, `20MiB`).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ConfigError, Source, invalid};
use crate::forward::config::{ForwardArgs, ForwardConfig, ForwardFile};
use crate::limits::Any;

/// Default of `--reports-db`, also of the `reports` commands'.
pub(crate) const DEFAULT_DB: &str = "sqlite:./v8help-reports.db";

crate::config::settings! {
    /// The `--reports-…` flags of `v8help serve`, flattened into its arguments.
    ReportsArgs, ReportsFile, ReportsValues =>
    /// Resolved error-report settings: the table's, and where reports are forwarded.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ReportsConfig from v {
        /// Where reports are forwarded (Sentry, webhooks); empty: nowhere.
        forward: ForwardConfig = ForwardConfig::default(),
    };
    /// Where error reports are kept: sqlite:PATH, postgres://USER@HOST/DB (shared by
    /// replicas), or `off` to take none [default: sqlite:./v8help-reports.db].
    reports_db("--reports-db", "V8HELP_REPORTS_DB", "ADDRESS"): Option<String>, Any => String = DEFAULT_DB.into(), field db;
    /// Path under which the error-registration service answers getInfo and pushReport
    /// [default: /reports/].
    // `ReportsConfig::path` holds it normalized: starting with `/`, ending without (`/reports`).
    reports_path("--reports-path", "V8HELP_REPORTS_PATH", "PATH"): Option<String>, service_path => String =
        normalize_path("/reports/"), field path;
    /// TOML rules deciding the getInfo answers (hot-reloaded) [default: send every report].
    reports_rules("--reports-rules", "V8HELP_REPORTS_RULES", "FILE"): Option<PathBuf>, Any => Option<PathBuf> = None, field rules;
    /// Largest report archive taken, e.g. 20MiB; larger ones get 413 [default: 20MiB].
    reports_max_size("--reports-max-size", "V8HELP_REPORTS_MAX_SIZE", "SIZE"):
        Option<String> as toml::Value, archive_size => u64 = 20 * 1024 * 1024, field max_size;
    /// How long reports and login failures are kept, e.g. 90d [default: 90d].
    reports_retention("--reports-retention", "V8HELP_REPORTS_RETENTION", "DURATION"):
        Option<String>, |text: String| parse_duration(&text) => Duration = Duration::from_secs(90 * 86_400), field retention;
    /// Most bytes of archives kept; the oldest reports go first, e.g. 10GiB [default: no limit].
    reports_max_bytes("--reports-max-bytes", "V8HELP_REPORTS_MAX_BYTES", "SIZE"):
        Option<String> as toml::Value, size => Option<u64> = None, field max_bytes;
    /// A file whose first line is the PostgreSQL password (a mounted Kubernetes Secret)
    /// [default: the password in the URL, if any].
    // Only with a postgres:// --reports-db: checked in `ReportsConfig::resolve`.
    reports_db_password_file("--reports-db-password-file", "V8HELP_REPORTS_DB_PASSWORD_FILE", "FILE"):
        Option<PathBuf>, Any => Option<PathBuf> = None, field db_password_file;
    /// With PostgreSQL: the directory where reports wait while the database is unreachable
    /// (replayed in order when it is back) [default: ./v8help-reports-spool].
    reports_spool("--reports-spool", "V8HELP_REPORTS_SPOOL", "DIR"): Option<PathBuf>, Any => PathBuf =
        PathBuf::from("./v8help-reports-spool"), field spool;
    /// Most bytes the spool holds; past it pushReport answers 503 [default: 1GiB].
    reports_spool_max("--reports-spool-max", "V8HELP_REPORTS_SPOOL_MAX", "SIZE"):
        Option<String> as toml::Value, size => u64 = 1024 * 1024 * 1024, field spool_max;
}

impl ReportsConfig {
    /// Settings for a store at `db` with every other setting at its default.
    pub fn with_db(db: impl Into<String>) -> ReportsConfig {
        let values = ReportsValues {
            reports_db: db.into(),
            ..ReportsValues::default()
        };
        ReportsConfig::from_values(values)
    }

    /// Flags and environment win over the file, the file over the defaults; `None` when
    /// `--reports-db off` (and then no other report or forwarding setting is looked at).
    pub(crate) fn resolve(
        args: &ReportsArgs,
        file: ReportsFile,
        forward_args: &ForwardArgs,
        forward_file: ForwardFile,
    ) -> Result<Option<ReportsConfig>, ConfigError> {
        let db: Option<String> = args.reports_db.clone().or_file(file.reports_db.clone());
        if db.is_some_and(|db| db.eq_ignore_ascii_case("off")) {
            return Ok(None);
        }
        let values = ReportsValues::read(args, file)?;
        if values.reports_db_password_file.is_some() && !is_postgres(&values.reports_db) {
            return Err(invalid(
                "--reports-db-password-file",
                "is for a postgres:// --reports-db".into(),
            ));
        }
        let forward = ForwardConfig::resolve(forward_args, forward_file)?;
        Ok(Some(ReportsConfig {
            forward,
            ..ReportsConfig::from_values(values)
        }))
    }
}

/// `--reports-path`: a path starting with `/`, normalized.
fn service_path(path: String) -> Result<String, String> {
    if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
        return Err(format!("{path:?} is not a path starting with /"));
    }
    Ok(normalize_path(&path))
}

/// A size setting: a size such as `20MiB` on the command line, that or a number of bytes in
/// the file.
fn size(value: toml::Value) -> Result<u64, String> {
    match value {
        toml::Value::Integer(n) => parse_size(&n.to_string()),
        toml::Value::String(s) => parse_size(&s),
        other => Err(format!("{other} is not a size")),
    }
}

/// `--reports-max-size`: a size, not 0.
fn archive_size(value: toml::Value) -> Result<u64, String> {
    match size(value)? {
        0 => Err("must be more than 0".into()),
        max => Ok(max),
    }
}

/// Whether a `--reports-db` address names PostgreSQL.
pub(crate) fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `/reports/`, `reports`, `//reports//` → `/reports`; `/` → `` (methods at the root).
pub(crate) fn normalize_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("/{}", parts.join("/"))
    }
}

/// A duration such as `90d`, `24h`, `30m`, `45s` or `2w` (a bare number is seconds).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90d, 24h or 30m"))?;
    let unit_secs = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use s, m, h, d or w)")),
    };
    n.checked_mul(unit_secs)
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is not a positive duration"))
}

/// A size such as `20MiB`, `200KB`, `10G` or a bare number of bytes (K, M, G are powers of
/// 1024, with or without `iB`/`B`).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 20MiB or 500KiB"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_admins_write_them() {
        assert_eq!(parse_size("20MiB"), Ok(20 << 20));
        assert_eq!(parse_size("200KB"), Ok(200 << 10));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("20 parsecs").is_err());
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn the_path_is_normalized_whatever_slashes_it_has() {
        assert_eq!(normalize_path("/reports/"), "/reports");
        assert_eq!(normalize_path("//api//v1/"), "/api/v1");
        assert_eq!(normalize_path("/"), "");
    }

    #[test]
    fn off_disables_reports_and_the_flag_wins_over_the_file() {
        let forward = ForwardArgs::default();
        let off = ReportsArgs {
            reports_db: Some("off".into()),
            reports_path: Some("not checked when off".into()),
            ..ReportsArgs::default()
        };
        let resolve = |args: &ReportsArgs, file| ReportsConfig::resolve(args, file, &forward, ForwardFile::default());
        assert_eq!(resolve(&off, ReportsFile::default()).unwrap(), None);
        let file = ReportsFile {
            reports_max_size: Some(toml::Value::String("1MiB".into())),
            reports_retention: Some("7d".into()),
            ..ReportsFile::default()
        };
        let args = ReportsArgs {
            reports_max_size: Some("2MiB".into()),
            ..ReportsArgs::default()
        };
        let c = resolve(&args, file).unwrap().unwrap();
        assert_eq!(c.max_size, 2 << 20);
        assert_eq!(c.retention, Duration::from_secs(7 * 86_400));
        assert_eq!(
            c,
            ReportsConfig {
                max_size: 2 << 20,
                retention: c.retention,
                ..ReportsConfig::with_db(DEFAULT_DB)
            }
        );
    }

    #[test]
    fn a_size_in_the_file_is_a_number_or_a_string() {
        assert_eq!(size(toml::Value::Integer(1024)), Ok(1024));
        assert_eq!(size(toml::Value::String("1KiB".into())), Ok(1024));
        assert_eq!(size(toml::Value::Boolean(true)).unwrap_err(), "true is not a size");
        assert_eq!(
            archive_size(toml::Value::Integer(0)).unwrap_err(),
            "must be more than 0"
        );
    }
}
