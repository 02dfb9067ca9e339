//! Configuration of `v8help serve`: each setting is a flag, an environment variable
//! `V8HELP_…`, and a key of an optional TOML file (`--config`). A flag or variable wins over
//! the file, the file over the built-in default.
//!
//! Each setting is one entry of a `settings!` table: `serve`'s own in the table below, the
//! error-report, forwarding and console settings in the same kind of table in their modules
//! (`reports::config`, `forward::config`, `console::config`). The entry makes the flag and
//! variable, the key of the file, their merge and the default, and names the `Bound` that
//! checks the value; each entry is also a field of the resolved settings ([`ServeConfig`],
//! `ReportsConfig`, `ForwardConfig`), but for the few inputs that the module's `resolve`
//! combines (`--cert` and `--key` into `tls_files`). Values with a shape (the CORS origin,
//! the message service) are parsed once, by `values` or the module's bound, into typed
//! values; the server never parses a setting again.
//!
//! The `settings!` macro that makes a group out of its table is in `config/table.rs`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use clap::Args;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::limits::{self, Any, Bound};
use crate::time::Zone;

mod table;
mod values;

pub(crate) use table::{file_value, resolved, settings};

pub use values::MessageService;
pub(crate) use values::{CorsOrigin, parsed};

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

settings! {
    /// `v8help serve`'s own flags (listening, the message, serving limits).
    Flags, File, Values =>
    /// Fully resolved settings of a running service: every setting of the table but the
    /// inputs as it is, and these, which `ServeConfig::resolve` makes from the inputs.
    #[derive(Debug, Clone)]
    pub struct ServeConfig from v {
        /// Certificate and key files (`--cert`, `--key`); `None` means the in-memory
        /// self-signed certificate.
        tls_files: Option<(PathBuf, PathBuf)> = None,
        /// Zone in which local date-times of the document (`starts`, `expires`) are read
        /// (`--tz`; the library default is UTC).
        zone: Zone = Zone::UTC,
        /// Why the zone is UTC although none was asked for, to be logged at start.
        zone_warning: Option<String> = None,
        /// Most connections open at once from one client IP address
        /// (`--max-connections-per-address`): one client cannot take every slot.
        max_connections_per_address: usize = (v.max_connections / 4).max(1),
        /// How long a client may take to finish its TLS handshake.
        handshake_timeout: Duration = Duration::from_secs(10),
        /// How long a client may take to send a POST body.
        body_timeout: Duration = Duration::from_secs(10),
        /// Error reports (`--reports-…`); `None`: not taken (`--reports-db off`, and the
        /// library default so that embedding code opts in).
        reports: Option<crate::reports::ReportsConfig> = None,
        /// The support console (`--admin-listen`, `--users`); `None`: not served (`off`, no
        /// report store, and the library default).
        console: Option<crate::console::config::ConsoleConfig> = None,
    };
    /// HTTPS address to listen on [default: 127.0.0.1:8443].
    listen("--listen", "V8HELP_LISTEN", "ADDR"): Option<SocketAddr>, Any => SocketAddr =
        SocketAddr::from(([127, 0, 0, 1], 8443));
    /// Certificate chain, PEM (with --key). Without both, an in-memory self-signed
    /// certificate for localhost/127.0.0.1 is used.
    cert("--cert", "V8HELP_CERT", "PEM"): Option<PathBuf>, Any => Option<PathBuf> = None, input;
    /// Private key, PEM (with --cert).
    key("--key", "V8HELP_KEY", "PEM"): Option<PathBuf>, Any => Option<PathBuf> = None, input;
    /// Also serve plain HTTP on this address (for use behind a reverse proxy).
    http_listen("--http-listen", "V8HELP_HTTP_LISTEN", "ADDR"): Option<SocketAddr>, Any => Option<SocketAddr> = None;
    /// The message document [default: ./message.json].
    message("--message", "V8HELP_MESSAGE", "PATH"): Option<PathBuf>, Any => PathBuf = PathBuf::from("message.json");
    /// A directory of message documents, one per base: DIR/NAME.json is served at /NAME/,
    /// /NAME/message.json and /NAME/help [default: none].
    messages("--messages", "V8HELP_MESSAGES", "DIR"): Option<PathBuf>, Any => Option<PathBuf> = None;
    /// Time zone for local date-times, an IANA name such as Europe/Moscow [default: the system's].
    tz("--tz", "V8HELP_TZ", "ZONE"): Option<String>, parsed::<Zone>() => Option<Zone> = None, input;
    /// Cap for Cache-Control max-age, in seconds [default: 30].
    max_age("--max-age", "V8HELP_MAX_AGE", "SECONDS"): Option<u32>, limits::MAX_AGE => u32 = 30;
    /// Access-Control-Allow-Origin for browsers [default: *].
    cors_origin("--cors-origin", "V8HELP_CORS_ORIGIN", "ORIGIN"): Option<String>, CorsOrigin => http::HeaderValue =
        http::HeaderValue::from_static("*");
    /// Message service the web help page asks: an http(s) URL (another origin, which must
    /// allow this one by CORS) or a path on the page's own origin [default: message.json
    /// next to /help].
    message_service("--message-service", "V8HELP_MESSAGE_SERVICE", "URL"):
        Option<String>, parsed::<MessageService>() => Option<MessageService> = None;
    /// Log one line per request.
    access_log("--access-log", "V8HELP_ACCESS_LOG"): bool, Any => bool = false;
    /// Most connections served at once; further clients wait in the listen backlog [default: 20000].
    max_connections("--max-connections", "V8HELP_MAX_CONNECTIONS", "N"):
        Option<usize>, limits::CONNECTIONS => usize = 20_000;
    /// Threads serving connections, each with its own listener on the shared port [default: CPUs].
    workers("--workers", "V8HELP_WORKERS", "N"): Option<usize>, limits::WORKERS => usize =
        std::thread::available_parallelism().map_or(2, |n| n.get());
    /// Seconds between safety re-reads of the message file, catching events the OS dropped [default: 5].
    recheck_interval("--recheck-interval", "V8HELP_RECHECK_INTERVAL", "SECONDS"):
        Option<f64>, limits::RECHECK_INTERVAL => Duration = Duration::from_secs(5);
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM [default: 10].
    shutdown_timeout("--shutdown-timeout", "V8HELP_SHUTDOWN_TIMEOUT", "SECONDS"):
        Option<f64>, limits::SHUTDOWN_TIMEOUT => Duration = Duration::from_secs(10);
    /// Seconds a connection may take to send its first complete request head [default: 10].
    header_timeout("--header-timeout", "V8HELP_HEADER_TIMEOUT", "SECONDS"):
        Option<f64>, limits::HEADER_TIMEOUT => Duration = Duration::from_secs(10);
    /// Seconds an idle keep-alive connection (HTTP/1.1 or HTTP/2) is kept [default: 60].
    keepalive_timeout("--keepalive-timeout", "V8HELP_KEEPALIVE_TIMEOUT", "SECONDS"):
        Option<f64>, limits::KEEPALIVE_TIMEOUT => Duration = Duration::from_secs(60);
    /// Most connections open at once from one client address [default: a quarter of --max-connections].
    // Its bound and its default come from --max-connections' value: see `ServeConfig::resolve`.
    max_connections_per_address("--max-connections-per-address", "V8HELP_MAX_CONNECTIONS_PER_ADDRESS", "N"):
        Option<usize>, Any => Option<usize> = None, input;
    /// Show the message file's path and reload errors in the public /healthz.
    health_details("--health-details", "V8HELP_HEALTH_DETAILS"): bool, Any => bool = false;
}

/// `v8help serve` flags as clap parses them, each group's from its module; unset ones fall
/// back to the TOML file, then to the defaults of the groups' tables.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the flags, with `_` for `-`).
    #[arg(long, env = "V8HELP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `serve`'s own flags: the `settings!` table of this module.
    #[command(flatten)]
    pub serve: Flags,
    /// Error reports (`--reports-…`).
    #[command(flatten)]
    pub reports: crate::reports::config::ReportsArgs,
    /// Forwarding to Sentry and webhooks (`--forward-…`, `--console-url`).
    #[command(flatten)]
    pub forward: crate::forward::config::ForwardArgs,
    /// The support console (`--admin-listen`, `--users`).
    #[command(flatten)]
    pub console: crate::console::config::ConsoleArgs,
}

/// The `--config` file: the keys of every group, read in one pass, so that an unknown key or
/// a value of the wrong type is the TOML parser's error with its line and column.
#[derive(Debug, Default)]
struct FileConfig {
    serve: File,
    reports: crate::reports::config::ReportsFile,
    forward: crate::forward::config::ForwardFile,
    console: crate::console::config::ConsoleFile,
}

/// Every key of the file, group after group, as the unknown-key error lists them.
static KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    use crate::{console::config::ConsoleFile, forward::config::ForwardFile, reports::config::ReportsFile};
    [File::KEYS, ReportsFile::KEYS, ForwardFile::KEYS, ConsoleFile::KEYS].concat()
});

impl<'de> Deserialize<'de> for FileConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FileConfig, D::Error> {
        deserializer.deserialize_struct("FileConfig", KEYS.as_slice(), FileVisitor)
    }
}

/// Hands each key's value to the group that declares the key.
struct FileVisitor;

impl<'de> Visitor<'de> for FileVisitor {
    type Value = FileConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct FileConfig")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileConfig, A::Error> {
        let mut file = FileConfig::default();
        while let Some(key) = map.next_key_seed(Key)? {
            let read = file.serve.read_value(key, &mut map)?
                || file.reports.read_value(key, &mut map)?
                || file.forward.read_value(key, &mut map)?
                || file.console.read_value(key, &mut map)?;
            if !read {
                // Not reached: `Key` takes only the groups' keys.
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(file)
    }
}

/// A key of the file, refused unless some group declares it (an error the parser places
/// at the key).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<&'static str, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<&'static str, E> {
        KEYS.iter()
            .find(|k| **k == key)
            .copied()
            .ok_or_else(|| E::unknown_field(key, KEYS.as_slice()))
    }
}

/// How a flag's value and the file's combine: a flag or variable given wins over the
/// file; a switch (`--access-log`) given is on whatever the file says; a repeatable flag
/// (`--forward-webhook`) given at least once replaces the file's list.
pub(crate) trait Source {
    /// The value as the file gives it, unless the entry names another type.
    type Raw;
    /// This flag's value, as the file's type, over the file's.
    fn or_file<F: From<Self::Raw>>(self, file: Option<F>) -> Option<F>;
}

impl<T> Source for Option<T> {
    type Raw = T;
    fn or_file<F: From<T>>(self, file: Option<F>) -> Option<F> {
        self.map(F::from).or(file)
    }
}

impl Source for bool {
    type Raw = bool;
    fn or_file<F: From<bool>>(self, file: Option<F>) -> Option<F> {
        if self { Some(F::from(true)) } else { file }
    }
}

impl<T> Source for Vec<T> {
    type Raw = Vec<T>;
    fn or_file<F: From<Vec<T>>>(self, file: Option<F>) -> Option<F> {
        if self.is_empty() { file } else { Some(F::from(self)) }
    }
}

impl ServeConfig {
    /// Resolves flags and environment (already in `args`), the TOML file they name, and defaults.
    pub fn resolve(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut v = Values::read(&args.serve, file.serve)?;
        let tls_files = match (v.cert.take(), v.key.take()) {
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
        let (zone, zone_warning) = match v.tz.take() {
            Some(zone) => (zone, None),
            None => Zone::system(),
        };
        let per_address = v
            .max_connections_per_address
            .map(|n| {
                limits::count(v.max_connections)
                    .check(n)
                    .map_err(|p| invalid("--max-connections-per-address", p))
            })
            .transpose()?;
        let reports = crate::reports::ReportsConfig::resolve(&args.reports, file.reports, &args.forward, file.forward)?;
        let console =
            crate::console::config::ConsoleConfig::resolve(&args.console, file.console)?.filter(|_| reports.is_some());
        let config = ServeConfig::from_values(v);
        Ok(ServeConfig {
            tls_files,
            zone,
            zone_warning,
            max_connections_per_address: per_address.unwrap_or(config.max_connections_per_address),
            reports,
            console,
            ..config
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
    use crate::console::config::ConsoleFile;
    use crate::forward::config::ForwardFile;
    use crate::reports::config::ReportsFile;

    /// `serve`'s arguments with `flags` and nothing else.
    fn serve(flags: Flags) -> ServeArgs {
        ServeArgs {
            serve: flags,
            ..ServeArgs::default()
        }
    }

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
            serve: Flags {
                max_age: Some(7),
                ..Flags::default()
            },
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(&args).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9443".parse().unwrap());
        assert_eq!(c.max_age, 7);
        assert_eq!(c.zone.name(), "Asia/Almaty");
        assert_eq!(c.cors_origin, "*");
    }

    #[test]
    fn the_defaults_are_the_readme_s() {
        let c = ServeConfig::default();
        assert_eq!(c.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(
            (c.message, c.messages, c.tls_files, c.http_listen),
            ("message.json".into(), None, None, None)
        );
        assert_eq!((c.max_age, c.message_service), (30, None));
        assert_eq!(c.cors_origin, "*");
        assert_eq!((c.max_connections, c.max_connections_per_address), (20_000, 5_000));
        assert_eq!(
            [
                c.recheck_interval,
                c.shutdown_timeout,
                c.header_timeout,
                c.keepalive_timeout
            ],
            [5, 10, 10, 60].map(Duration::from_secs)
        );
        assert!(!c.access_log && !c.health_details && c.reports.is_none() && c.console.is_none());
        let r = crate::reports::ReportsConfig::with_db("sqlite:x.db");
        assert_eq!((r.path.as_str(), r.max_size, r.max_bytes), ("/reports", 20 << 20, None));
        assert_eq!(
            (r.spool, r.spool_max),
            (PathBuf::from("./v8help-reports-spool"), 1 << 30)
        );
        assert_eq!(r.retention, Duration::from_secs(90 * 86_400));
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
        let args = serve(Flags {
            cert: Some("c.pem".into()),
            ..Flags::default()
        });
        assert!(
            ServeConfig::resolve(&args)
                .unwrap_err()
                .to_string()
                .contains("without --key")
        );
    }

    #[test]
    fn unknown_zone_is_refused() {
        let args = serve(Flags {
            tz: Some("Mars/Olympus".into()),
            ..Flags::default()
        });
        assert!(
            ServeConfig::resolve(&args)
                .unwrap_err()
                .to_string()
                .contains("unknown time zone")
        );
    }

    #[test]
    fn a_bound_error_names_the_flag() {
        let args = serve(Flags {
            max_connections: Some(2_000_000),
            ..Flags::default()
        });
        let text = ServeConfig::resolve(&args).unwrap_err().to_string();
        assert_eq!(text, "--max-connections: 2000000 is not between 1 and 1000000");
        let args = serve(Flags {
            max_connections: Some(100),
            max_connections_per_address: Some(101),
            ..Flags::default()
        });
        let text = ServeConfig::resolve(&args).unwrap_err().to_string();
        assert_eq!(text, "--max-connections-per-address: 101 is not between 1 and 100");
    }

    /// `serve`'s arguments as clap builds them, with every flattened group.
    fn serve_command() -> clap::Command {
        <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"))
    }

    /// Every entry of every group's table: flag, variable, TOML key.
    fn table() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
        [File::TABLE, ReportsFile::TABLE, ForwardFile::TABLE, ConsoleFile::TABLE]
            .into_iter()
            .flatten()
    }

    #[test]
    fn every_table_entry_is_its_flag_its_variable_and_its_toml_key() {
        let command = serve_command();
        for &(flag, env, key) in table() {
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
    fn every_flag_of_serve_is_a_table_entry() {
        let flags: Vec<&str> = table().map(|&(flag, _, _)| flag).collect();
        let keys: Vec<&str> = table().map(|&(_, _, key)| key).collect();
        assert_eq!(keys, *KEYS, "the file takes the tables' keys, in their order");
        for arg in serve_command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long != "config" {
                assert!(flags.contains(&format!("--{long}").as_str()), "--{long} is in no table");
            }
        }
    }

    #[test]
    fn the_file_takes_every_group_s_keys_and_refuses_others_where_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8help.toml");
        std::fs::write(
            &path,
            "max_age = 5\nreports_spool_max = 2048\nforward_threshold = 3\nusers = \"/etc/u\"\n",
        )
        .unwrap();
        let c = ServeConfig::resolve(&ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .unwrap();
        let reports = c.reports.expect("reports on by default");
        assert_eq!(
            (c.max_age, reports.spool_max, reports.forward.threshold),
            (5, 2048, Some(3))
        );
        assert_eq!(c.console.expect("console on by default").users, PathBuf::from("/etc/u"));
        std::fs::write(&path, "max_age = 5\nreports_spool_maks = 1\n").unwrap();
        let text = read_file(&path).unwrap_err().to_string();
        assert!(
            text.contains("line 2, column 1")
                && text.contains("unknown field `reports_spool_maks`, expected one of `listen`"),
            "{text}"
        );
        std::fs::write(&path, "forward_threshold = \"x\"\n").unwrap();
        let text = read_file(&path).unwrap_err().to_string();
        assert!(
            text.contains("line 1, column 21") && text.contains("expected u64"),
            "{text}"
        );
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
