//! Lossless reader and writer for 1C:Enterprise base lists (`*.v8i`) and `1CEStart.cfg`.
//!
//! A base list looks like an INI file but is not one: `;` and `#` are data, section names
//! may contain `=` and brackets, keys are case-sensitive, and duplicates happen. Generic INI
//! parsers lose data on such files, so this module reads them line by line and keeps every
//! byte:
//!
//! - [`parse`] (in `reader`) turns bytes into a [`BaseList`]: lines with their exact endings,
//!   `[sections]`, typed [`Entry`] views (base or group, `Connect`, `Folder`, `ID`,
//!   `OrderInList`, `StartupErrorHelpText`, `StartupErrorHelpURL`) and [`Diagnostic`]s.
//!   It never fails: whatever is odd about a file becomes a diagnostic.
//! - [`Connect::parse`] reads the `Connect` string (`File=`, `Srvr=`+`Ref=`, `ws=`, quotes,
//!   `""` escapes, unknown fragments).
//! - [`apply`] (in `writer`) sets keys in chosen sections by splicing the original bytes,
//!   so everything it was not asked to change stays identical.
//! - [`parse_start_cfg`] reads `1CEStart.cfg` (UTF-16LE or UTF-8) for its
//!   `CommonInfoBases=` entries.
//! - `replace_file` (in `file`) is the only I/O: backup, then atomic replace, refusing if the
//!   file changed since it was read.

mod cfg;
mod check;
mod connect;
mod diagnostic;
mod error;
mod file;
mod name;
mod reader;
mod syntax;
mod writer;

pub use cfg::{CfgEncoding, CfgEntry, StartCfg, parse_start_cfg};
pub(crate) use check::cross_check;
pub use connect::{Connect, ConnectKind};
pub use diagnostic::{Diagnostic, Finding, Presence, Severity};
pub(crate) use error::V8iError;
pub use error::{CfgError, EditError};
pub(crate) use file::replace_file;
pub(crate) use name::names_equal;
pub use reader::{BaseList, Entry, EntryKind, InvalidUtf8, KeyLine, LineKind, LineRef, OrderInList, Section, parse};
pub use writer::{Change, Edited, SetKey, apply};

/// The key whose value the client shows under a startup error.
pub const HELP_TEXT_KEY: &str = "StartupErrorHelpText";
/// The key whose value the client opens from the "Need help" link.
pub const HELP_URL_KEY: &str = "StartupErrorHelpURL";
/// The key whose presence makes a section a base rather than a group.
pub(crate) const CONNECT_KEY: &str = "Connect";
/// The key holding the base's (or group's) place in the tree, e.g. `/Отделы/Бухгалтерия`.
pub(crate) const FOLDER_KEY: &str = "Folder";
/// The key holding the base's identifier (a GUID written by the launcher).
pub(crate) const ID_KEY: &str = "ID";
/// The key holding the position among siblings; may be fractional.
pub(crate) const ORDER_KEY: &str = "OrderInList";

/// True when `url` is an absolute `http://` or `https://` URL with a host, which is what the
/// client can open from the "Need help" link.
pub(crate) fn is_http_url(url: &str) -> bool {
    let bytes = url.as_bytes();
    let starts_with = |prefix: &[u8]| bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix);
    let rest = if starts_with(b"https://") {
        &url[8..]
    } else if starts_with(b"http://") {
        &url[7..]
    } else {
        return false;
    };
    let host_end = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let clean = if url.is_ascii() {
        url.bytes().all(|b| b.is_ascii_graphic())
    } else {
        !url.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    host_end > 0 && clean
}

#[cfg(test)]
mod tests {
    use super::is_http_url;

    #[test]
    fn http_urls_need_a_scheme_and_a_host() {
        assert!(is_http_url("https://help.example.com/?base=buh#top"));
        assert!(is_http_url("HTTP://x"));
        assert!(is_http_url("https://справка.рф/база"));
        assert!(!is_http_url("help.example.com"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("https:///path"));
        assert!(!is_http_url("https://exa mple.com"));
        assert!(!is_http_url("mailto:admin@example.com"));
        assert!(!is_http_url("http"));
    }
}
