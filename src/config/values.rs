//! The typed values settings become: each is parsed here once, at start-up, so that the
//! server only ever holds values that are known to be good (a `HeaderValue` for the CORS
//! origin, a [`MessageService`] that knows its origin) and never re-parses or falls back.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use http::{HeaderValue, Uri};

use crate::limits::Bound;

/// The parser of `--cors-origin` as a setting's [`Bound`]: [`cors_origin`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CorsOrigin;

impl Bound<String> for CorsOrigin {
    type Out = HeaderValue;
    fn check(&self, value: String) -> Result<HeaderValue, String> {
        cors_origin(&value)
    }
}

/// A setting read by its type's `FromStr` ([`MessageService`], a zone), as a [`Bound`].
pub(crate) struct Parsed<T>(PhantomData<fn() -> T>);

/// The [`Parsed`] bound of `T`.
pub(crate) const fn parsed<T>() -> Parsed<T> {
    Parsed(PhantomData)
}

impl<T: FromStr> Bound<String> for Parsed<T>
where
    T::Err: fmt::Display,
{
    type Out = T;
    fn check(&self, value: String) -> Result<T, String> {
        value.parse().map_err(|e: T::Err| e.to_string())
    }
}

/// `--cors-origin` as the header value it becomes: anything a header may carry, not empty.
pub(crate) fn cors_origin(text: &str) -> Result<HeaderValue, String> {
    match HeaderValue::from_str(text) {
        Ok(value) if !text.is_empty() => Ok(value),
        _ => Err(format!("{text:?} is not a valid origin")),
    }
}

/// `--message-service`: the message service the web help page asks, checked, with the
/// origin its Content-Security-Policy must allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageService {
    url: String,
    origin: Option<String>,
}

impl MessageService {
    /// The URL or path as given (it is what the page and the worker fetch).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `scheme://host:port` of an absolute URL; `None` for a path on the page's own origin.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
}

impl FromStr for MessageService {
    type Err = String;

    fn from_str(url: &str) -> Result<MessageService, String> {
        Ok(MessageService {
            origin: message_service_origin(url)?,
            url: url.to_string(),
        })
    }
}

impl fmt::Display for MessageService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Checks a `--message-service` value and returns the origin the help page's CSP must
/// allow: `None` for a path on the page's own origin (`/v8help/message.json`), the
/// `scheme://host:port` of an absolute `http(s)` URL.
fn message_service_origin(url: &str) -> Result<Option<String>, String> {
    if url.starts_with('/') && !url.starts_with("//") {
        return match url.parse::<Uri>() {
            Ok(_) => Ok(None),
            Err(err) => Err(format!("{url:?} is not a valid path: {err}")),
        };
    }
    let uri: Uri = url
        .parse()
        .map_err(|err| format!("{url:?} is not an http:// or https:// URL ({err}), nor a path starting with /"))?;
    let scheme = match uri.scheme_str() {
        Some(s @ ("http" | "https")) => s,
        _ => {
            return Err(format!(
                "{url:?} must be an http:// or https:// URL, or a path starting with /"
            ));
        }
    };
    let authority = uri
        .authority()
        .map(|a| a.as_str())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("{url:?} has no host"))?;
    if !authority
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(format!(
            "{url:?}: the host may hold only letters, digits, '.', '-', ':' and brackets (no user name)"
        ));
    }
    Ok(Some(format!("{scheme}://{}", authority.to_ascii_lowercase())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_service_must_be_http_url_or_path() {
        assert_eq!(message_service_origin("/v8help/message.json"), Ok(None));
        assert_eq!(
            message_service_origin("http://127.0.0.1:9000/message.json"),
            Ok(Some("http://127.0.0.1:9000".into()))
        );
        assert_eq!(
            message_service_origin("https://help.example"),
            Ok(Some("https://help.example".into()))
        );
        for bad in [
            "ftp://x/",
            "help.example/message.json",
            "//help.example/x",
            "https://user@help.example/",
            "javascript:alert(1)",
        ] {
            assert!(message_service_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_parsed_service_keeps_the_url_as_given_and_its_lowercased_origin() {
        let s: MessageService = "https://Help.example:8443/m.json?a=1".parse().unwrap();
        assert_eq!(s.url(), "https://Help.example:8443/m.json?a=1");
        assert_eq!(s.origin(), Some("https://help.example:8443"));
    }

    #[test]
    fn a_cors_origin_is_a_non_empty_header_value() {
        assert_eq!(cors_origin("https://1c.example").unwrap(), "https://1c.example");
        assert!(cors_origin("").is_err());
        assert_eq!(cors_origin("a\nb").unwrap_err(), "\"a\\nb\" is not a valid origin");
    }
}
