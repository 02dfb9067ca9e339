//! Who is asking: session tokens and their cookie, the per-session CSRF token, HTTP Basic
//! for scripts, the same-origin check for changes, and the limiter for failed logins.
//!
//! A session token is 32 random bytes sent only in the cookie; the store keeps only its
//! SHA-256 (`session_key`), so a copy of the database opens no session. The CSRF token is
//! derived from the session token with another label (`csrf_token`): forms carry it, and
//! a request without the cookie's secret cannot produce it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use http::HeaderMap;
use http::header;
use sha2::{Digest, Sha256};

/// The session cookie's name. `__Host-` makes browsers insist on Secure, Path=/ and no
/// Domain, so no other host can set or shadow it.
pub(crate) const COOKIE: &str = "__Host-v8help-console";
/// How long a login lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A new random session token (base64url of 32 bytes), or why the OS gave no randomness.
pub(crate) fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn labelled_hash(label: &str, token: &str) -> String {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0]);
    h.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// What the store keeps for a session token: its SHA-256, never the token.
pub(crate) fn session_key(token: &str) -> String {
    labelled_hash("v8help-console-session", token)
}

/// The CSRF token of the session whose token is `token`.
pub(crate) fn csrf_token(token: &str) -> String {
    labelled_hash("v8help-console-csrf", token)
}

/// Compares two strings in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Set-Cookie` value that opens a session.
pub(crate) fn set_cookie(token: &str) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        SESSION_TTL.as_secs()
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// The session token from the request's cookies, if any.
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_string())
        })
}

/// `Authorization: Basic …` as (name, password), when present and well-formed.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// Whether a state-changing request may come from where it says: a browser's `Origin` (or,
/// without one, `Sec-Fetch-Site`) must be this console itself, whose address the request
/// names as `host` (HTTP/2's `:authority`, else `Host`). Scripts send neither header.
pub(crate) fn same_origin(headers: &HeaderMap, host: Option<&str>) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else { return false };
        return match host {
            Some(host) => origin.eq_ignore_ascii_case(&format!("https://{host}")),
            None => false,
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

/// Failed logins allowed per user name within [`WINDOW`].
pub const MAX_FAILURES_PER_NAME: u32 = 5;
/// Failed logins allowed per client address within [`WINDOW`].
pub(crate) const MAX_FAILURES_PER_ADDR: u32 = 10;
/// The window over which failures are counted; a locked key is free again when it ends.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most keys remembered; past it, expired windows are dropped, then the oldest.
const MAX_KEYS: usize = 10_000;

/// Counts failed logins per client address and per user name in fixed windows, and says
/// when a key is over its limit (and for how long). Kept in memory: a replica switch
/// resets it, which gives an attacker one more window, not a way in.
#[derive(Debug, Default)]
pub(crate) struct LoginLimiter {
    by_addr: HashMap<IpAddr, Window>,
    by_name: HashMap<String, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

impl Window {
    fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.started + WINDOW
    }

    fn retry_after(&self, now: DateTime<Utc>, limit: u32) -> Option<Duration> {
        (self.active(now) && self.failures >= limit).then(|| {
            let end = self.started + WINDOW;
            (end - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_secs(1))
        })
    }
}

impl LoginLimiter {
    /// `Some(wait)` when `addr` or `name` has failed too often and may not try now.
    pub(crate) fn locked(&self, addr: IpAddr, name: &str, now: DateTime<Utc>) -> Option<Duration> {
        let by_addr = self
            .by_addr
            .get(&addr)
            .and_then(|w| w.retry_after(now, MAX_FAILURES_PER_ADDR));
        let by_name = self
            .by_name
            .get(name)
            .and_then(|w| w.retry_after(now, MAX_FAILURES_PER_NAME));
        by_addr.max(by_name)
    }

    /// Records a failed login of `name` from `addr`.
    pub(crate) fn failed(&mut self, addr: IpAddr, name: &str, now: DateTime<Utc>) {
        if self.by_addr.len() + self.by_name.len() >= MAX_KEYS {
            self.prune(now);
        }
        bump(
            self.by_addr.entry(addr).or_insert(Window {
                started: now,
                failures: 0,
            }),
            now,
        );
        let name: String = name.chars().take(crate::users::MAX_NAME_BYTES).collect();
        bump(
            self.by_name.entry(name).or_insert(Window {
                started: now,
                failures: 0,
            }),
            now,
        );
    }

    /// A successful login clears the name's count (not the address's: one known password
    /// must not reset the guessing budget of an address).
    pub(crate) fn succeeded(&mut self, name: &str) {
        self.by_name.remove(name);
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        self.by_addr.retain(|_, w| w.active(now));
        self.by_name.retain(|_, w| w.active(now));
        if self.by_addr.len() + self.by_name.len() >= MAX_KEYS {
            self.by_addr.clear();
            self.by_name.clear();
        }
    }
}

fn bump(window: &mut Window, now: DateTime<Utc>) {
    if !window.active(now) {
        *window = Window {
            started: now,
            failures: 0,
        };
    }
    window.failures = window.failures.saturating_add(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_name_is_locked_after_five_failures_until_its_window_ends() {
        let mut l = LoginLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..MAX_FAILURES_PER_NAME {
            assert_eq!(l.locked(a, "anna", at(i as i64)), None);
            l.failed(a, "anna", at(i as i64));
        }
        let wait = l.locked(a, "anna", at(60)).unwrap();
        assert_eq!(wait, WINDOW - Duration::from_secs(60));
        // Another name from another address is not affected.
        assert_eq!(l.locked("10.0.0.2".parse().unwrap(), "boris", at(60)), None);
        assert_eq!(l.locked(a, "anna", at(WINDOW.as_secs() as i64)), None);
    }

    #[test]
    fn an_address_trying_many_names_is_locked() {
        let mut l = LoginLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..MAX_FAILURES_PER_ADDR {
            l.failed(a, &format!("user{i}"), at(0));
        }
        assert!(l.locked(a, "someone-new", at(1)).is_some());
        assert!(l.locked("10.0.0.9".parse().unwrap(), "someone-new", at(1)).is_none());
    }

    #[test]
    fn tokens_are_random_and_their_hashes_differ_by_purpose() {
        let t = new_token().unwrap();
        assert_ne!(t, new_token().unwrap());
        assert_eq!(t.len(), 43);
        assert_ne!(session_key(&t), csrf_token(&t));
        assert!(!session_key(&t).contains(&t));
    }

    #[test]
    fn cookies_and_basic_credentials_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=1; {COOKIE}=tok; b=2")).unwrap(),
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YW5uYTpwdzpwdw=="),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("tok"));
        assert_eq!(basic_credentials(&h), Some(("anna".into(), "pw:pw".into())));
    }

    #[test]
    fn cross_origin_changes_are_refused() {
        let host = Some("127.0.0.1:8444");
        let mut h = HeaderMap::new();
        assert!(same_origin(&h, host));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://127.0.0.1:8444"));
        assert!(same_origin(&h, host));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h, host));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h, host));
    }
}
