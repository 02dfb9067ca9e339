//! The error-report settings of `v8help serve` (`--reports-…`), how they are resolved from
//! flags, environment and the TOML file, and the duration and size forms they take
//! (`90d`, `24h`, `20MiB`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::config::ConfigError;

/// Default of `--reports-db`.
pub const DEFAULT_DB: &str = "sqlite:./v8help-reports.db";
/// Default of `--reports-spool`.
pub const DEFAULT_SPOOL: &str = "./v8help-reports-spool";
/// Default of `--reports-spool-max`: 1 GiB.
pub const DEFAULT_SPOOL_MAX: u64 = 1024 * 1024 * 1024;
/// Default of `--reports-path`.
pub const DEFAULT_PATH: &str = "/reports/";
/// Default of `--reports-max-size`: 20 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 20 * 1024 * 1024;
/// Default of `--reports-retention`: 90 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);

/// The `--reports-…` flags of `v8help serve`, flattened into its arguments.
#[derive(Debug, Clone, Default, Args)]
pub struct ReportsArgs {
    /// Where error reports are kept: sqlite:PATH, postgres://USER@HOST/DB (shared by
    /// replicas), or `off` to take none [default: sqlite:./v8help-reports.db].
    #[arg(long, env = "V8HELP_REPORTS_DB", value_name = "ADDRESS")]
    pub reports_db: Option<String>,
    /// Path under which the error-registration service answers getInfo and pushReport
    /// [default: /reports/].
    #[arg(long, env = "V8HELP_REPORTS_PATH", value_name = "PATH")]
    pub reports_path: Option<String>,
    /// TOML rules deciding the getInfo answers (hot-reloaded) [default: send every report].
    #[arg(long, env = "V8HELP_REPORTS_RULES", value_name = "FILE")]
    pub reports_rules: Option<PathBuf>,
    /// Largest report archive taken, e.g. 20MiB; larger ones get 413 [default: 20MiB].
    #[arg(long, env = "V8HELP_REPORTS_MAX_SIZE", value_name = "SIZE")]
    pub reports_max_size: Option<String>,
    /// How long reports and login failures are kept, e.g. 90d [default: 90d].
    #[arg(long, env = "V8HELP_REPORTS_RETENTION", value_name = "DURATION")]
    pub reports_retention: Option<String>,
    /// Most bytes of archives kept; the oldest reports go first, e.g. 10GiB [default: no limit].
    #[arg(long, env = "V8HELP_REPORTS_MAX_BYTES", value_name = "SIZE")]
    pub reports_max_bytes: Option<String>,
    /// A file whose first line is the PostgreSQL password (a mounted Kubernetes Secret)
    /// [default: the password in the URL, if any].
    #[arg(long, env = "V8HELP_REPORTS_DB_PASSWORD_FILE", value_name = "FILE")]
    pub reports_db_password_file: Option<PathBuf>,
    /// With PostgreSQL: the directory where reports wait while the database is unreachable
    /// (replayed in order when it is back) [default: ./v8help-reports-spool].
    #[arg(long, env = "V8HELP_REPORTS_SPOOL", value_name = "DIR")]
    pub reports_spool: Option<PathBuf>,
    /// Most bytes the spool holds; past it pushReport answers 503 [default: 1GiB].
    #[arg(long, env = "V8HELP_REPORTS_SPOOL_MAX", value_name = "SIZE")]
    pub reports_spool_max: Option<String>,
    /// Forwarding to Sentry and webhooks (`--forward-…`, `--console-url`).
    #[command(flatten)]
    pub forward: crate::forward::ForwardArgs,
}

/// The same settings as written in the TOML file (`reports_db = …`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ReportsFile {
    /// `reports_db`.
    pub reports_db: Option<String>,
    /// `reports_path`.
    pub reports_path: Option<String>,
    /// `reports_rules`.
    pub reports_rules: Option<PathBuf>,
    /// `reports_max_size` (a number of bytes or a size such as "20MiB").
    pub reports_max_size: Option<toml::Value>,
    /// `reports_retention` ("90d").
    pub reports_retention: Option<String>,
    /// `reports_max_bytes` (a number of bytes or a size such as "10GiB").
    pub reports_max_bytes: Option<toml::Value>,
    /// `reports_db_password_file`.
    pub reports_db_password_file: Option<PathBuf>,
    /// `reports_spool`.
    pub reports_spool: Option<PathBuf>,
    /// `reports_spool_max` (a number of bytes or a size such as "1GiB").
    pub reports_spool_max: Option<toml::Value>,
    /// `forward_sentry`, `forward_webhook`, `forward_threshold`, `console_url`.
    pub forward: crate::forward::ForwardFile,
}

/// Resolved error-report settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportsConfig {
    /// The store's address (`sqlite:PATH` or `postgres://…`).
    pub db: String,
    /// The file holding the PostgreSQL password, if any.
    pub db_password_file: Option<PathBuf>,
    /// With PostgreSQL: where reports wait while the database is unreachable.
    pub spool: PathBuf,
    /// Most bytes the spool holds.
    pub spool_max: u64,
    /// The base path, normalized to start with `/` and end without one (`/reports`).
    pub path: String,
    /// The rules file, if any.
    pub rules: Option<PathBuf>,
    /// Largest archive (request body) taken, in bytes.
    pub max_size: u64,
    /// How long reports and login failures are kept.
    pub retention: Duration,
    /// Most archive bytes kept (`None`: no limit).
    pub max_bytes: Option<u64>,
    /// Where reports are forwarded (Sentry, webhooks); empty: nowhere.
    pub forward: crate::forward::ForwardConfig,
}

impl ReportsConfig {
    /// Settings for a store at `db` with every other setting at its default.
    pub fn with_db(db: impl Into<String>) -> ReportsConfig {
        ReportsConfig {
            db: db.into(),
            db_password_file: None,
            spool: PathBuf::from(DEFAULT_SPOOL),
            spool_max: DEFAULT_SPOOL_MAX,
            path: normalize_path(DEFAULT_PATH),
            rules: None,
            max_size: DEFAULT_MAX_SIZE,
            retention: DEFAULT_RETENTION,
            max_bytes: None,
            forward: crate::forward::ForwardConfig::default(),
        }
    }

    /// Flags and environment win over the file, the file over the defaults; `None` when
    /// `--reports-db off`.
    pub fn resolve(args: &ReportsArgs, file: ReportsFile) -> Result<Option<ReportsConfig>, ConfigError> {
        let db = args
            .reports_db
            .clone()
            .or(file.reports_db)
            .unwrap_or_else(|| DEFAULT_DB.into());
        if db.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let mut c = ReportsConfig::with_db(db);
        if let Some(path) = args.reports_path.clone().or(file.reports_path) {
            if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
                return Err(invalid(
                    "--reports-path",
                    format!("{path:?} is not a path starting with /"),
                ));
            }
            c.path = normalize_path(&path);
        }
        c.rules = args.reports_rules.clone().or(file.reports_rules);
        let size =
            |flag: &'static str, arg: &Option<String>, file: Option<toml::Value>| -> Result<Option<u64>, ConfigError> {
                let text = match (arg, file) {
                    (Some(a), _) => a.clone(),
                    (None, Some(toml::Value::Integer(n))) => n.to_string(),
                    (None, Some(toml::Value::String(s))) => s,
                    (None, Some(other)) => return Err(invalid(flag, format!("{other} is not a size"))),
                    (None, None) => return Ok(None),
                };
                parse_size(&text).map(Some).map_err(|p| invalid(flag, p))
            };
        if let Some(max) = size("--reports-max-size", &args.reports_max_size, file.reports_max_size)? {
            if max == 0 {
                return Err(invalid("--reports-max-size", "must be more than 0".into()));
            }
            c.max_size = max;
        }
        c.max_bytes = size("--reports-max-bytes", &args.reports_max_bytes, file.reports_max_bytes)?;
        c.db_password_file = args.reports_db_password_file.clone().or(file.reports_db_password_file);
        if c.db_password_file.is_some() && !is_postgres(&c.db) {
            return Err(invalid(
                "--reports-db-password-file",
                "is for a postgres:// --reports-db".into(),
            ));
        }
        if let Some(dir) = args.reports_spool.clone().or(file.reports_spool) {
            c.spool = dir;
        }
        if let Some(max) = size("--reports-spool-max", &args.reports_spool_max, file.reports_spool_max)? {
            c.spool_max = max;
        }
        c.forward = crate::forward::ForwardConfig::resolve(&args.forward, file.forward)?;
        if let Some(r) = args.reports_retention.clone().or(file.reports_retention) {
            c.retention = parse_duration(&r).map_err(|p| invalid("--reports-retention", p))?;
        }
        Ok(Some(c))
    }
}

/// Whether a `--reports-db` address names PostgreSQL.
pub fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

fn invalid(setting: &'static str, problem: String) -> ConfigError {
    ConfigError::Invalid { setting, problem }
}

/// `/reports/`, `reports`, `//reports//` → `/reports`; `/` → `` (methods at the root).
pub fn normalize_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("/{}", parts.join("/"))
    }
}

/// A duration such as `90d`, `24h`, `30m`, `45s` or `2w` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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
pub fn parse_size(text: &str) -> Result<u64, String> {
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
        let off = ReportsArgs {
            reports_db: Some("off".into()),
            ..ReportsArgs::default()
        };
        assert_eq!(ReportsConfig::resolve(&off, ReportsFile::default()).unwrap(), None);
        let file = ReportsFile {
            reports_max_size: Some(toml::Value::String("1MiB".into())),
            reports_retention: Some("7d".into()),
            ..ReportsFile::default()
        };
        let args = ReportsArgs {
            reports_max_size: Some("2MiB".into()),
            ..ReportsArgs::default()
        };
        let c = ReportsConfig::resolve(&args, file).unwrap().unwrap();
        assert_eq!(c.max_size, 2 << 20);
        assert_eq!(c.retention, Duration::from_secs(7 * 86_400));
        assert_eq!(c.db, DEFAULT_DB);
    }
}
