//! The console's settings: `--admin-listen` and `--users`, as flags, `V8HELP_…` variables
//! and keys of the `--config` file (`admin_listen`, `users`), resolved like the rest of
//! [`crate::config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::limits::Any;

crate::config::settings! {
    /// `v8help serve` flags of the console.
    ConsoleArgs, ConsoleFile, ConsoleValues;
    /// HTTPS address of the support console, or `off` [default: 127.0.0.1:8444]. Needs the
    /// report store (not with --reports-db off).
    // Loopback by default, so that reaching the console from elsewhere is a decision (a
    // tunnel, a reverse proxy with its own access rules, or an explicit address).
    admin_listen("--admin-listen", "V8HELP_ADMIN_LISTEN", "ADDR"): Option<String>, admin_listen => Option<SocketAddr> =
        Some(SocketAddr::from(([127, 0, 0, 1], 8444)));
    /// The console's users file, edited with `v8help users add|remove` [default: ./v8help-users].
    users("--users", "V8HELP_USERS", "FILE"): Option<PathBuf>, Any => PathBuf = PathBuf::from("v8help-users");
}

/// `--admin-listen`: an address, or `None` for `off`.
fn admin_listen(listen: String) -> Result<Option<SocketAddr>, String> {
    if listen.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match listen.trim().parse::<SocketAddr>() {
        Ok(addr) => Ok(Some(addr)),
        Err(e) => Err(format!("{listen:?} is not an address like 127.0.0.1:8444 or off ({e})")),
    }
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
    /// Flags and environment over the file, over the defaults; `None` for `off`.
    pub(crate) fn resolve(args: &ConsoleArgs, file: ConsoleFile) -> Result<Option<ConsoleConfig>, ConfigError> {
        let v = ConsoleValues::read(args, file)?;
        Ok(v.admin_listen.map(|listen| ConsoleConfig { listen, users: v.users }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_off_and_bad_addresses() {
        let c = ConsoleConfig::resolve(&ConsoleArgs::default(), ConsoleFile::default())
            .unwrap()
            .unwrap();
        assert_eq!(c.listen, "127.0.0.1:8444".parse().unwrap());
        assert_eq!(c.users, PathBuf::from("v8help-users"));
        let off = ConsoleArgs {
            admin_listen: Some("off".into()),
            ..ConsoleArgs::default()
        };
        let file = ConsoleFile {
            admin_listen: Some("127.0.0.1:1".into()),
            ..ConsoleFile::default()
        };
        assert_eq!(ConsoleConfig::resolve(&off, file).unwrap(), None);
        let bad = ConsoleArgs {
            admin_listen: Some("localhost".into()),
            ..ConsoleArgs::default()
        };
        let err = ConsoleConfig::resolve(&bad, ConsoleFile::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--admin-listen: \"localhost\" is not an address"),
            "{err}"
        );
        let file = ConsoleFile {
            admin_listen: Some("127.0.0.1:9444".into()),
            users: Some("/etc/u".into()),
        };
        let file = ConsoleConfig::resolve(&ConsoleArgs::default(), file).unwrap().unwrap();
        assert_eq!((file.listen.port(), file.users), (9444, PathBuf::from("/etc/u")));
    }
}
