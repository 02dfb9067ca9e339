//! Configuration of `v8help serve`: each setting is a flag, an environment variable
//! `V8HELP_…`, and a key of an optional TOML file (`--config`). A flag or variable wins over
//! the file, the file over the built-in default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::time::Zone;

mod values;

pub use values::{MessageService, cors_origin};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The `--config` file as given.
        path: PathBuf,
        /// Why reading it failed.
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML or has a key or value `v8help serve` does not
    /// accept.
    #[error("config file {path}: {message}")]
    Parse {
        /// The `--config` file as given.
        path: PathBuf,
        /// The TOML parser's complaint, on one line.
        message: String,
    },
    /// A setting has a value the service cannot run with, or lacks its partner
    /// (`--cert` without `--key`).
    #[error("{setting}: {problem}")]
    Invalid {
        /// The flag to fix, such as `--workers`.
        setting: &'static str,
        /// What is wrong with its value.
        problem: String,
    },
}

/// `v8help serve` flags as clap parses them; unset ones fall back to the TOML file, then to
/// the defaults in [`ServeConfig`].
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the flags, with `_` for `-`).
    #[arg(long, env = "V8HELP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTPS address to listen on [default: 127.0.0.1:8443].
    #[arg(long, env = "V8HELP_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Certificate chain, PEM (with --key). Without both, an in-memory self-signed
    /// certificate for localhost/127.0.0.1 is used.
    #[arg(long, env = "V8HELP_CERT", value_name = "PEM")]
    pub cert: Option<PathBuf>,
    /// Private key, PEM (with --cert).
    #[arg(long, env = "V8HELP_KEY", value_name = "PEM")]
    pub key: Option<PathBuf>,
    /// Also serve plain HTTP on this address (for use behind a reverse proxy).
    #[arg(long, env = "V8HELP_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// The message document [default: ./message.json].
    #[arg(long, env = "V8HELP_MESSAGE", value_name = "PATH")]
    pub message: Option<PathBuf>,
    /// A directory of message documents, one per base: DIR/NAME.json is served at /NAME/,
    /// /NAME/message.json and /NAME/help [default: none].
    #[arg(long, env = "V8HELP_MESSAGES", value_name = "DIR")]
    pub messages: Option<PathBuf>,
    /// Time zone for local date-times, an IANA name such as Europe/Moscow [default: the system's].
    #[arg(long, env = "V8HELP_TZ", value_name = "ZONE")]
    pub tz: Option<String>,
    /// Cap for Cache-Control max-age, in seconds [default: 30].
    #[arg(long, env = "V8HELP_MAX_AGE", value_name = "SECONDS")]
    pub max_age: Option<u32>,
    /// Access-Control-Allow-Origin for browsers [default: *].
    #[arg(long, env = "V8HELP_CORS_ORIGIN", value_name = "ORIGIN")]
    pub cors_origin: Option<String>,
    /// Message service the web help page asks: an http(s) URL (another origin, which must
    /// allow this one by CORS) or a path on the page's own origin [default: message.json
    /// next to /help].
    #[arg(long, env = "V8HELP_MESSAGE_SERVICE", value_name = "URL")]
    pub message_service: Option<String>,
    /// Log one line per request.
    #[arg(long, env = "V8HELP_ACCESS_LOG")]
    pub access_log: bool,
    /// Most connections served at once; further clients wait in the listen backlog [default: 20000].
    #[arg(long, env = "V8HELP_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Threads serving connections, each with its own listener on the shared port [default: CPUs].
    #[arg(long, env = "V8HELP_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// Seconds between safety re-reads of the message file, catching events the OS dropped [default: 5].
    #[arg(long, env = "V8HELP_RECHECK_INTERVAL", value_name = "SECONDS")]
    pub recheck_interval: Option<f64>,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM [default: 10].
    #[arg(long, env = "V8HELP_SHUTDOWN_TIMEOUT", value_name = "SECONDS")]
    pub shutdown_timeout: Option<f64>,
    /// Seconds a connection may take to send its first complete request head [default: 10].
    #[arg(long, env = "V8HELP_HEADER_TIMEOUT", value_name = "SECONDS")]
    pub header_timeout: Option<f64>,
    /// Seconds an idle keep-alive connection (HTTP/1.1 or HTTP/2) is kept [default: 60].
    #[arg(long, env = "V8HELP_KEEPALIVE_TIMEOUT", value_name = "SECONDS")]
    pub keepalive_timeout: Option<f64>,
    /// Most connections open at once from one client address [default: a quarter of --max-connections].
    #[arg(long, env = "V8HELP_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Show the message file's path and reload errors in the public /healthz.
    #[arg(long, env = "V8HELP_HEALTH_DETAILS")]
    pub health_details: bool,
    /// Error reports (`--reports-…`).
    #[command(flatten)]
    pub reports: crate::reports::ReportsArgs,
    /// The support console (`--admin-listen`, `--users`).
    #[command(flatten)]
    pub console: crate::console::config::ConsoleArgs,
}

/// The TOML file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    http_listen: Option<SocketAddr>,
    message: Option<PathBuf>,
    messages: Option<PathBuf>,
    tz: Option<String>,
    max_age: Option<u32>,
    cors_origin: Option<String>,
    message_service: Option<String>,
    access_log: Option<bool>,
    max_connections: Option<usize>,
    workers: Option<usize>,
    recheck_interval: Option<f64>,
    shutdown_timeout: Option<f64>,
    header_timeout: Option<f64>,
    keepalive_timeout: Option<f64>,
    max_connections_per_address: Option<usize>,
    health_details: Option<bool>,
    // Error reports: see crate::reports::config.
    reports_db: Option<String>,
    reports_path: Option<String>,
    reports_rules: Option<PathBuf>,
    reports_max_size: Option<toml::Value>,
    reports_retention: Option<String>,
    reports_max_bytes: Option<toml::Value>,
    // The support console: see crate::console::config.
    admin_listen: Option<String>,
    users: Option<PathBuf>,
    reports_db_password_file: Option<PathBuf>,
    reports_spool: Option<PathBuf>,
    reports_spool_max: Option<toml::Value>,
    // Forwarding: see crate::forward::config.
    forward_sentry: Option<String>,
    forward_webhook: Option<Vec<String>>,
    forward_threshold: Option<u64>,
    console_url: Option<String>,
}

/// Fully resolved settings of a running service.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// HTTPS address to listen on (`--listen`).
    pub listen: SocketAddr,
    /// Certificate and key files; `None` means the in-memory self-signed certificate.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Plain-HTTP address for use behind a reverse proxy (`--http-listen`); `None`: HTTPS only.
    pub http_listen: Option<SocketAddr>,
    /// The message document to watch and serve (`--message`).
    pub message: PathBuf,
    /// The directory of per-base documents (`--messages`); `None`: only the root document.
    pub messages: Option<PathBuf>,
    /// Zone in which local date-times of the document (`starts`, `expires`) are read (`--tz`).
    pub zone: Zone,
    /// Why the zone is UTC although none was asked for, to be logged at start.
    pub zone_warning: Option<String>,
    /// Cap, in seconds, for the `Cache-Control` max-age of message responses (`--max-age`).
    pub max_age: u32,
    /// `Access-Control-Allow-Origin` sent so browsers may read the message (`--cors-origin`).
    pub cors_origin: http::HeaderValue,
    /// The message service the web help page asks (`--message-service`); `None`: the
    /// `message.json` next to the page.
    pub message_service: Option<MessageService>,
    /// Whether to log one line per request (`--access-log`).
    pub access_log: bool,
    /// Most connections served at once across all workers (`--max-connections`).
    pub max_connections: usize,
    /// Most connections open at once from one client IP address
    /// (`--max-connections-per-address`): one client cannot take every slot.
    pub max_connections_per_address: usize,
    /// How long an idle keep-alive connection is kept, on both protocols (`--keepalive-timeout`).
    pub keepalive_timeout: Duration,
    /// Whether the public `/healthz` shows the file's path and reload errors (`--health-details`).
    pub health_details: bool,
    /// Worker threads, each with its own single-threaded runtime and listener.
    pub workers: usize,
    /// Time between safety re-reads of the message file, catching events the OS dropped
    /// (`--recheck-interval`).
    pub recheck_interval: Duration,
    /// How long in-flight requests get to finish after SIGINT/SIGTERM (`--shutdown-timeout`).
    pub shutdown_timeout: Duration,
    /// How long a new connection may take to send its first complete request head
    /// (`--header-timeout`; slowloris and quiet-connection guard).
    pub header_timeout: Duration,
    /// How long a client may take to finish its TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a client may take to send a POST body.
    pub body_timeout: Duration,
    /// Error reports (`--reports-…`); `None`: not taken (`--reports-db off`, and the
    /// library default so that embedding code opts in).
    pub reports: Option<crate::reports::ReportsConfig>,
    /// The support console (`--admin-listen`, `--users`); `None`: not served (`off`, no
    /// report store, and the library default).
    pub console: Option<crate::console::config::ConsoleConfig>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls_files: None,
            http_listen: None,
            message: PathBuf::from("message.json"),
            messages: None,
            zone: Zone::UTC,
            zone_warning: None,
            max_age: 30,
            cors_origin: http::HeaderValue::from_static("*"),
            message_service: None,
            access_log: false,
            max_connections: 20_000,
            max_connections_per_address: 5_000,
            keepalive_timeout: Duration::from_secs(60),
            health_details: false,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            recheck_interval: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            reports: None,
            console: None,
        }
    }
}

impl ServeConfig {
    /// Resolves flags and environment (already in `args`), the TOML file they name, and defaults.
    pub fn resolve(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let d = ServeConfig::default();
        let cert = args.cert.clone().or(file.cert);
        let key = args.key.clone().or(file.key);
        let tls_files = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "--key",
                    "--cert was given without --key; give both or neither".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "--cert",
                    "--key was given without --cert; give both or neither".into(),
                ));
            }
        };
        let (zone, zone_warning) = match args.tz.clone().or(file.tz) {
            Some(name) => (name.parse::<Zone>().map_err(|e| invalid("--tz", e.to_string()))?, None),
            None => Zone::system(),
        };
        let cors_origin = match args.cors_origin.clone().or(file.cors_origin) {
            Some(text) => values::cors_origin(&text).map_err(|p| invalid("--cors-origin", p))?,
            None => d.cors_origin,
        };
        let message_service = args
            .message_service
            .clone()
            .or(file.message_service)
            .map(|url| {
                url.parse::<MessageService>()
                    .map_err(|p| invalid("--message-service", p))
            })
            .transpose()?;
        let max_connections = args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(d.max_connections);
        crate::limits::check_count("--max-connections", max_connections, crate::limits::MAX_CONNECTIONS)?;
        let max_connections_per_address = match args.max_connections_per_address.or(file.max_connections_per_address) {
            Some(n) => crate::limits::check_count("--max-connections-per-address", n, max_connections)?,
            None => (max_connections / 4).max(1),
        };
        let max_age = args.max_age.or(file.max_age).unwrap_or(d.max_age);
        if max_age > crate::limits::MAX_MAX_AGE {
            return Err(invalid(
                "--max-age",
                format!(
                    "{max_age} is more than {} seconds (one day)",
                    crate::limits::MAX_MAX_AGE
                ),
            ));
        }
        let reports = crate::reports::ReportsConfig::resolve(
            &args.reports,
            crate::reports::config::ReportsFile {
                reports_db: file.reports_db,
                reports_path: file.reports_path,
                reports_rules: file.reports_rules,
                reports_max_size: file.reports_max_size,
                reports_retention: file.reports_retention,
                reports_max_bytes: file.reports_max_bytes,
                reports_db_password_file: file.reports_db_password_file,
                reports_spool: file.reports_spool,
                reports_spool_max: file.reports_spool_max,
                forward: crate::forward::ForwardFile {
                    forward_sentry: file.forward_sentry,
                    forward_webhook: file.forward_webhook,
                    forward_threshold: file.forward_threshold,
                    console_url: file.console_url,
                },
            },
        )?;
        let workers = args.workers.or(file.workers).unwrap_or(d.workers);
        if workers == 0 || workers > 1024 {
            return Err(invalid("--workers", format!("{workers} is not between 1 and 1024")));
        }
        let console = crate::console::config::ConsoleConfig::resolve(&args.console, file.admin_listen, file.users)?
            .filter(|_| reports.is_some());
        Ok(ServeConfig {
            console,
            reports,
            workers,
            listen: args.listen.or(file.listen).unwrap_or(d.listen),
            tls_files,
            http_listen: args.http_listen.or(file.http_listen),
            message: args.message.clone().or(file.message).unwrap_or(d.message),
            messages: args.messages.clone().or(file.messages),
            zone,
            zone_warning,
            max_age,
            cors_origin,
            message_service,
            access_log: args.access_log || file.access_log.unwrap_or(false),
            max_connections,
            max_connections_per_address,
            health_details: args.health_details || file.health_details.unwrap_or(false),
            recheck_interval: seconds(
                "--recheck-interval",
                args.recheck_interval.or(file.recheck_interval),
                crate::limits::RECHECK_INTERVAL,
            )?
            .unwrap_or(d.recheck_interval),
            shutdown_timeout: seconds(
                "--shutdown-timeout",
                args.shutdown_timeout.or(file.shutdown_timeout),
                crate::limits::SHUTDOWN_TIMEOUT,
            )?
            .unwrap_or(d.shutdown_timeout),
            header_timeout: seconds(
                "--header-timeout",
                args.header_timeout.or(file.header_timeout),
                crate::limits::HEADER_TIMEOUT,
            )?
            .unwrap_or(d.header_timeout),
            keepalive_timeout: seconds(
                "--keepalive-timeout",
                args.keepalive_timeout.or(file.keepalive_timeout),
                crate::limits::KEEPALIVE_TIMEOUT,
            )?
            .unwrap_or(d.keepalive_timeout),
            ..d
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        message: e.to_string().trim().replace('\n', " "),
    })
}

fn seconds(
    setting: &'static str,
    value: Option<f64>,
    range: crate::limits::Seconds,
) -> Result<Option<Duration>, ConfigError> {
    value.map(|v| range.check(setting, v)).transpose()
}

pub(crate) fn invalid(setting: &'static str, problem: String) -> ConfigError {
    ConfigError::Invalid { setting, problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8help.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9443\"\nmax_age = 5\ntz = \"Asia/Almaty\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            max_age: Some(7),
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(&args).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9443".parse().unwrap());
        assert_eq!(c.max_age, 7);
        assert_eq!(c.zone.name(), "Asia/Almaty");
        assert_eq!(c.cors_origin, "*");
    }

    #[test]
    fn unknown_key_in_the_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8help.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9443\"\n").unwrap();
        let err = ServeConfig::resolve(&ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("v8help.toml") && text.contains("lisen"), "{text}");
    }

    #[test]
    fn cert_without_key_is_refused() {
        let args = ServeArgs {
            cert: Some("c.pem".into()),
            ..ServeArgs::default()
        };
        assert!(
            ServeConfig::resolve(&args)
                .unwrap_err()
                .to_string()
                .contains("without --key")
        );
    }

    #[test]
    fn unknown_zone_is_refused() {
        let args = ServeArgs {
            tz: Some("Mars/Olympus".into()),
            ..ServeArgs::default()
        };
        assert!(
            ServeConfig::resolve(&args)
                .unwrap_err()
                .to_string()
                .contains("unknown time zone")
        );
    }
}
