//! Configuration of `v8help serve`: each setting is a flag, an environment variable
//! `V8HELP_…`, and a key of an optional TOML file (`--config`). A flag or variable wins over
//! the file, the file over the built-in default.
//!
//! Each of `serve`'s own settings is one entry of the `settings!` table below: the entry
//! makes the flag and variable of [`ServeArgs`], the key of the file and their merge, and
//! names the [`Bound`](crate::limits::Bound) that checks the value. Values with a shape
//! (the CORS origin, the message service) are parsed once, by `values`, into the typed
//! fields of [`ServeConfig`]; the server never parses a setting again. The error-report,
//! console and forwarding settings keep their own `Args` in their modules, and their file
//! keys are listed in `FileConfig`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::limits::{self, Any, Bound};
use crate::time::Zone;

mod values;

pub use values::{CorsOrigin, MessageService, Parsed, cors_origin, parsed};

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

/// Declares `v8help serve`'s own settings, one entry each:
///
/// ```text
/// /// the flag's help text
/// name("--flag", "V8HELP_VARIABLE", "VALUE_NAME"): type clap parses, bound => type used;
/// ```
///
/// and from that one entry come the clap argument (flag and variable) of [`ServeArgs`], the
/// TOML key `name` of the `--config` file, their merge (flag or variable over the file),
/// and the check of the merged value by its [`Bound`] (an error naming the flag), into a
/// field of `Settings`. What a setting's value becomes in [`ServeConfig`], and its
/// default, is [`ServeConfig::resolve`]'s and [`ServeConfig::default`]'s.
macro_rules! settings {
    ($(
        $(#[doc = $help:literal])*
        $name:ident($flag:literal, $env:literal $(, $value_name:literal)?): $arg:ty, $bound:expr => $out:ty;
    )*) => {
        /// `v8help serve` flags as clap parses them; unset ones fall back to the TOML file,
        /// then to the defaults in [`ServeConfig`].
        #[derive(Debug, Clone, Default, Args)]
        pub struct ServeArgs {
            /// TOML file with any of the settings below (keys as the flags, with `_` for `-`).
            #[arg(long, env = "V8HELP_CONFIG", value_name = "FILE")]
            pub config: Option<PathBuf>,
            $(
                $(#[doc = $help])*
                #[arg(long, env = $env $(, value_name = $value_name)?)]
                pub $name: $arg,
            )*
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
            $( $name: Option<<$arg as Source>::Raw>, )*
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

        /// Every setting of the table as the flags, the variables and the file give it,
        /// checked by its bound: `None` where none of them gives it.
        struct Settings {
            $( $name: Option<$out>, )*
        }

        impl Settings {
            /// Merges `args` over `file` (taking the file's values) and checks each
            /// setting, in the table's order.
            fn read(args: &ServeArgs, file: &mut FileConfig) -> Result<Settings, ConfigError> {
                Ok(Settings {
                    $(
                        $name: Source::or_file(args.$name.clone(), file.$name.take())
                            .map(|value| Bound::check(&$bound, value))
                            .transpose()
                            .map_err(|problem| invalid($flag, problem))?,
                    )*
                })
            }
        }

        /// Every entry of the table: flag, variable, TOML key.
        #[cfg(test)]
        const TABLE: &[(&str, &str, &str)] = &[$( ($flag, $env, stringify!($name)), )*];
    };
}

settings! {
    /// HTTPS address to listen on [default: 127.0.0.1:8443].
    listen("--listen", "V8HELP_LISTEN", "ADDR"): Option<SocketAddr>, Any => SocketAddr;
    /// Certificate chain, PEM (with --key). Without both, an in-memory self-signed
    /// certificate for localhost/127.0.0.1 is used.
    cert("--cert", "V8HELP_CERT", "PEM"): Option<PathBuf>, Any => PathBuf;
    /// Private key, PEM (with --cert).
    key("--key", "V8HELP_KEY", "PEM"): Option<PathBuf>, Any => PathBuf;
    /// Also serve plain HTTP on this address (for use behind a reverse proxy).
    http_listen("--http-listen", "V8HELP_HTTP_LISTEN", "ADDR"): Option<SocketAddr>, Any => SocketAddr;
    /// The message document [default: ./message.json].
    message("--message", "V8HELP_MESSAGE", "PATH"): Option<PathBuf>, Any => PathBuf;
    /// A directory of message documents, one per base: DIR/NAME.json is served at /NAME/,
    /// /NAME/message.json and /NAME/help [default: none].
    messages("--messages", "V8HELP_MESSAGES", "DIR"): Option<PathBuf>, Any => PathBuf;
    /// Time zone for local date-times, an IANA name such as Europe/Moscow [default: the system's].
    tz("--tz", "V8HELP_TZ", "ZONE"): Option<String>, parsed::<Zone>() => Zone;
    /// Cap for Cache-Control max-age, in seconds [default: 30].
    max_age("--max-age", "V8HELP_MAX_AGE", "SECONDS"): Option<u32>, limits::MAX_AGE => u32;
    /// Access-Control-Allow-Origin for browsers [default: *].
    cors_origin("--cors-origin", "V8HELP_CORS_ORIGIN", "ORIGIN"): Option<String>, CorsOrigin => http::HeaderValue;
    /// Message service the web help page asks: an http(s) URL (another origin, which must
    /// allow this one by CORS) or a path on the page's own origin [default: message.json
    /// next to /help].
    message_service("--message-service", "V8HELP_MESSAGE_SERVICE", "URL"):
        Option<String>, parsed::<MessageService>() => MessageService;
    /// Log one line per request.
    access_log("--access-log", "V8HELP_ACCESS_LOG"): bool, Any => bool;
    /// Most connections served at once; further clients wait in the listen backlog [default: 20000].
    max_connections("--max-connections", "V8HELP_MAX_CONNECTIONS", "N"): Option<usize>, limits::CONNECTIONS => usize;
    /// Threads serving connections, each with its own listener on the shared port [default: CPUs].
    workers("--workers", "V8HELP_WORKERS", "N"): Option<usize>, limits::WORKERS => usize;
    /// Seconds between safety re-reads of the message file, catching events the OS dropped [default: 5].
    recheck_interval("--recheck-interval", "V8HELP_RECHECK_INTERVAL", "SECONDS"):
        Option<f64>, limits::RECHECK_INTERVAL => Duration;
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM [default: 10].
    shutdown_timeout("--shutdown-timeout", "V8HELP_SHUTDOWN_TIMEOUT", "SECONDS"):
        Option<f64>, limits::SHUTDOWN_TIMEOUT => Duration;
    /// Seconds a connection may take to send its first complete request head [default: 10].
    header_timeout("--header-timeout", "V8HELP_HEADER_TIMEOUT", "SECONDS"):
        Option<f64>, limits::HEADER_TIMEOUT => Duration;
    /// Seconds an idle keep-alive connection (HTTP/1.1 or HTTP/2) is kept [default: 60].
    keepalive_timeout("--keepalive-timeout", "V8HELP_KEEPALIVE_TIMEOUT", "SECONDS"):
        Option<f64>, limits::KEEPALIVE_TIMEOUT => Duration;
    /// Most connections open at once from one client address [default: a quarter of --max-connections].
    // Its bound is --max-connections' value: checked in `ServeConfig::resolve`.
    max_connections_per_address("--max-connections-per-address", "V8HELP_MAX_CONNECTIONS_PER_ADDRESS", "N"):
        Option<usize>, Any => usize;
    /// Show the message file's path and reload errors in the public /healthz.
    health_details("--health-details", "V8HELP_HEALTH_DETAILS"): bool, Any => bool;
}

/// How a flag's value and the file's combine: a flag or variable given wins over the
/// file; a switch (`--access-log`) given is on whatever the file says.
trait Source {
    /// The value as the file and the bound take it.
    type Raw;
    /// This flag's value over the file's.
    fn or_file(self, file: Option<Self::Raw>) -> Option<Self::Raw>;
}

impl<T> Source for Option<T> {
    type Raw = T;
    fn or_file(self, file: Option<T>) -> Option<T> {
        self.or(file)
    }
}

impl Source for bool {
    type Raw = bool;
    fn or_file(self, file: Option<bool>) -> Option<bool> {
        if self { Some(true) } else { file }
    }
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
        let mut file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let s = Settings::read(args, &mut file)?;
        let d = ServeConfig::default();
        let tls_files = match (s.cert, s.key) {
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
        let (zone, zone_warning) = match s.tz {
            Some(zone) => (zone, None),
            None => Zone::system(),
        };
        let max_connections = s.max_connections.unwrap_or(d.max_connections);
        let max_connections_per_address = match s.max_connections_per_address {
            Some(n) => limits::Count { max: max_connections }
                .check(n)
                .map_err(|p| invalid("--max-connections-per-address", p))?,
            None => (max_connections / 4).max(1),
        };
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
        let console = crate::console::config::ConsoleConfig::resolve(&args.console, file.admin_listen, file.users)?
            .filter(|_| reports.is_some());
        Ok(ServeConfig {
            console,
            reports,
            workers: s.workers.unwrap_or(d.workers),
            listen: s.listen.unwrap_or(d.listen),
            tls_files,
            http_listen: s.http_listen,
            message: s.message.unwrap_or(d.message),
            messages: s.messages,
            zone,
            zone_warning,
            max_age: s.max_age.unwrap_or(d.max_age),
            cors_origin: s.cors_origin.unwrap_or(d.cors_origin),
            message_service: s.message_service,
            access_log: s.access_log.unwrap_or(d.access_log),
            max_connections,
            max_connections_per_address,
            health_details: s.health_details.unwrap_or(d.health_details),
            recheck_interval: s.recheck_interval.unwrap_or(d.recheck_interval),
            shutdown_timeout: s.shutdown_timeout.unwrap_or(d.shutdown_timeout),
            header_timeout: s.header_timeout.unwrap_or(d.header_timeout),
            keepalive_timeout: s.keepalive_timeout.unwrap_or(d.keepalive_timeout),
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

    #[test]
    fn a_bound_error_names_the_flag() {
        let args = ServeArgs {
            max_connections: Some(2_000_000),
            ..ServeArgs::default()
        };
        let text = ServeConfig::resolve(&args).unwrap_err().to_string();
        assert_eq!(text, "--max-connections: 2000000 is not between 1 and 1000000");
        let args = ServeArgs {
            max_connections: Some(100),
            max_connections_per_address: Some(101),
            ..ServeArgs::default()
        };
        let text = ServeConfig::resolve(&args).unwrap_err().to_string();
        assert_eq!(text, "--max-connections-per-address: 101 is not between 1 and 100");
    }

    /// `serve`'s arguments as clap builds them, with every flattened group.
    fn serve_command() -> clap::Command {
        <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"))
    }

    #[test]
    fn every_table_entry_is_its_flag_its_variable_and_its_toml_key() {
        let command = serve_command();
        for &(flag, env, key) in TABLE {
            assert_eq!(flag, format!("--{}", key.replace('_', "-")), "{key}");
            assert_eq!(env, format!("V8HELP_{}", key.to_ascii_uppercase()), "{key}");
            let arg = command
                .get_arguments()
                .find(|a| a.get_long() == Some(&flag[2..]))
                .unwrap_or_else(|| panic!("no clap argument {flag}"));
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(env), "{flag}");
            let file: Result<FileConfig, _> = toml::from_str(&format!("{key} = 1"));
            if let Err(e) = file {
                assert!(!e.to_string().contains("unknown field"), "{key}: {e}");
            }
        }
    }

    #[test]
    fn the_readme_configuration_tables_list_every_setting_of_serve() {
        let readme = include_str!("../README.md");
        let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `--")).collect();
        for arg in serve_command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let flag = format!("`--{long}");
            let named: Vec<&&str> = rows
                .iter()
                .filter(|r| r[2..].starts_with(&flag) && r[2 + flag.len()..].starts_with([' ', '`']))
                .collect();
            assert!(!named.is_empty(), "README has no row for --{long}");
            if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
                assert!(
                    named.iter().any(|r| r.contains(&format!("`{env}`"))),
                    "README has no row for --{long} with {env}"
                );
            }
        }
    }
}
