//! The console's settings: `--admin-listen` and `--users`, as flags, `V8HELP_…` variables
//! and keys of the `--config` file (`admin_listen`, `users`), resolved like the rest of
//! [`crate::config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::config::ConfigError;

/// Where the console listens unless told otherwise: loopback only, so that reaching it from
/// elsewhere is a decision (a tunnel, a reverse proxy with its own access rules, or an
/// explicit address).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8444";
/// The users file unless told otherwise.
pub const DEFAULT_USERS: &str = "v8help-users";

/// `v8help serve` flags of the console.
#[derive(Debug, Clone, Default, Args)]
pub struct ConsoleArgs {
    /// HTTPS address of the support console, or `off` [default: 127.0.0.1:8444]. Needs the
    /// report store (not with --reports-db off).
    #[arg(long, env = "V8HELP_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// The console's users file, edited with `v8help users add|remove` [default: ./v8help-users].
    #[arg(long, env = "V8HELP_USERS", value_name = "FILE")]
    pub users: Option<PathBuf>,
}

/// The console's resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Where the admin listener binds.
    pub listen: SocketAddr,
    /// The users file.
    pub users: PathBuf,
}

impl ConsoleConfig {
    /// Flags and environment over the file's `admin_listen` and `users`, over the defaults;
    /// `None` for `off`.
    pub fn resolve(
        args: &ConsoleArgs,
        file_listen: Option<String>,
        file_users: Option<PathBuf>,
    ) -> Result<Option<ConsoleConfig>, ConfigError> {
        let listen = args
            .admin_listen
            .clone()
            .or(file_listen)
            .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.into());
        if listen.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let listen = listen.trim().parse::<SocketAddr>().map_err(|e| ConfigError::Invalid {
            setting: "--admin-listen",
            problem: format!("{listen:?} is not an address like 127.0.0.1:8444 or off ({e})"),
        })?;
        let users = args
            .users
            .clone()
            .or(file_users)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_USERS));
        Ok(Some(ConsoleConfig { listen, users }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_off_and_bad_addresses() {
        let c = ConsoleConfig::resolve(&ConsoleArgs::default(), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(c.listen, DEFAULT_ADMIN_LISTEN.parse().unwrap());
        assert_eq!(c.users, PathBuf::from("v8help-users"));
        let off = ConsoleArgs {
            admin_listen: Some("off".into()),
            ..ConsoleArgs::default()
        };
        assert_eq!(
            ConsoleConfig::resolve(&off, Some("127.0.0.1:1".into()), None).unwrap(),
            None
        );
        let bad = ConsoleArgs {
            admin_listen: Some("localhost".into()),
            ..ConsoleArgs::default()
        };
        let err = ConsoleConfig::resolve(&bad, None, None).unwrap_err().to_string();
        assert!(err.contains("--admin-listen"), "{err}");
        let file = ConsoleConfig::resolve(
            &ConsoleArgs::default(),
            Some("127.0.0.1:9444".into()),
            Some("/etc/u".into()),
        )
        .unwrap()
        .unwrap();
        assert_eq!((file.listen.port(), file.users), (9444, PathBuf::from("/etc/u")));
    }
}
