//! The forwarding settings of `v8help serve`: `--forward-sentry`, `--forward-webhook`
//! (repeatable), `--forward-threshold` and `--console-url`, as flags, `V8HELP_…` variables
//! and TOML keys, resolved into a [`ForwardConfig`] and the store's [`Forwarding`] plan.

use sha2::{Digest, Sha256};

use super::sentry::Dsn;
use crate::config::ConfigError;
use crate::store::Forwarding;

/// The outbox target name of the Sentry project.
pub(crate) const SENTRY: &str = "sentry";

crate::config::settings! {
    /// The `--forward-…` flags (and `--console-url`), flattened into `v8help serve`'s.
    ForwardArgs, ForwardFile, ForwardValues =>
    /// Resolved forwarding settings.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ForwardConfig from v {};
    /// Sentry DSN (https://KEY@HOST/PROJECT): one event per error report, with report.json
    /// and the screenshot attached [default: none].
    forward_sentry("--forward-sentry", "V8HELP_FORWARD_SENTRY", "DSN"): Option<String>, sentry => Option<Dsn> = None, field sentry;
    /// Webhook URL for a JSON POST on every new group and when a group reaches
    /// --forward-threshold reports; repeatable (in the variable: comma-separated) [default: none].
    forward_webhook("--forward-webhook", "V8HELP_FORWARD_WEBHOOK", "URL", value_delimiter = ','):
        Vec<String>, webhooks => Vec<Webhook> = Vec::new(), field webhooks;
    /// Report count of a group that is announced to the webhooks once reached [default: new
    /// groups only].
    forward_threshold("--forward-threshold", "V8HELP_FORWARD_THRESHOLD", "N"): Option<u64>, threshold => Option<u64> = None, field threshold;
    /// The support console's address as support opens it (https://support.example.ru), for
    /// the links in webhooks and Sentry events [default: no link].
    console_url("--console-url", "V8HELP_CONSOLE_URL", "URL"): Option<String>, console_url => Option<String> = None;
}

/// `--forward-sentry`: a DSN; empty is none.
fn sentry(dsn: String) -> Result<Option<Dsn>, String> {
    match dsn.trim() {
        "" => Ok(None),
        dsn => Dsn::parse(dsn).map(Some),
    }
}

/// `--forward-webhook`: each URL once, empty ones skipped.
fn webhooks(urls: Vec<String>) -> Result<Vec<Webhook>, String> {
    let mut webhooks: Vec<Webhook> = Vec::new();
    for url in urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
        let hook = Webhook::parse(url)?;
        if !webhooks.contains(&hook) {
            webhooks.push(hook);
        }
    }
    Ok(webhooks)
}

/// `--forward-threshold`: at least 1.
fn threshold(n: u64) -> Result<u64, String> {
    match n {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// `--console-url`: an http(s) URL, kept without its trailing `/`.
fn console_url(url: String) -> Result<String, String> {
    let parsed = reqwest::Url::parse(&url).map_err(|e| format!("{url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// One webhook: its URL and its name in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where the POST goes.
    pub url: reqwest::Url,
    /// `webhook:` and a hash of the URL: stable across restarts and replicas, and no secret
    /// token of the URL lands in the database or the console.
    pub target: String,
}

impl Webhook {
    /// The webhook at `url`.
    pub fn parse(url: &str) -> Result<Webhook, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!("{url:?} is not an http(s) URL"));
        }
        let hash = Sha256::digest(url.as_bytes());
        let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Ok(Webhook {
            url: parsed,
            target: format!("webhook:{hex}"),
        })
    }
}

impl ForwardConfig {
    /// Flags and environment win over the file.
    pub(crate) fn resolve(args: &ForwardArgs, file: ForwardFile) -> Result<ForwardConfig, ConfigError> {
        Ok(ForwardConfig::from_values(ForwardValues::read(args, file)?))
    }

    /// Whether anything is forwarded.
    pub fn is_empty(&self) -> bool {
        self.sentry.is_none() && self.webhooks.is_empty()
    }

    /// The outbox rows each stored report brings.
    pub(crate) fn forwarding(&self) -> Forwarding {
        Forwarding {
            every_report: self.sentry.iter().map(|_| SENTRY.to_string()).collect(),
            group_events: self.webhooks.iter().map(|w| w.target.clone()).collect(),
            threshold: self.threshold,
        }
    }

    /// Every target this process delivers to.
    pub(crate) fn targets(&self) -> Vec<String> {
        let f = self.forwarding();
        f.every_report.into_iter().chain(f.group_events).collect()
    }

    /// The console's page of group `key`, when the console's address is known.
    pub(crate) fn group_link(&self, key: &str) -> Option<String> {
        self.console_url
            .as_ref()
            .map(|base| format!("{base}{}", crate::console::pages::group_url(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_named_by_a_hash_and_the_flag_wins_over_the_file() {
        let args = ForwardArgs {
            forward_webhook: vec!["https://chat.example/hooks/SECRET".into()],
            forward_threshold: Some(10),
            console_url: Some("https://support.example/".into()),
            ..ForwardArgs::default()
        };
        let file = ForwardFile {
            forward_webhook: Some(vec!["https://other.example/".into()]),
            forward_threshold: Some(3),
            ..ForwardFile::default()
        };
        let c = ForwardConfig::resolve(&args, file).unwrap();
        assert_eq!(c.webhooks.len(), 1);
        assert!(c.webhooks[0].target.starts_with("webhook:") && !c.webhooks[0].target.contains("SECRET"));
        assert_eq!(c.threshold, Some(10));
        assert_eq!(
            c.group_link("app:a b").as_deref(),
            Some("https://support.example/group?key=app%3Aa+b")
        );
        let bad = ForwardArgs {
            forward_webhook: vec!["ftp://x".into()],
            ..ForwardArgs::default()
        };
        let err = ForwardConfig::resolve(&bad, ForwardFile::default()).unwrap_err();
        assert_eq!(err.to_string(), "--forward-webhook: \"ftp://x\" is not an http(s) URL");
    }

    #[test]
    fn the_toml_file_takes_the_forwarding_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8help.toml");
        std::fs::write(
            &path,
            r#"
forward_sentry = "https://key@sentry.example.ru/42"
forward_webhook = ["https://chat.example.ru/a", "https://chat.example.ru/b"]
forward_threshold = 25
console_url = "https://support.example.ru:8444"
"#,
        )
        .unwrap();
        let args = crate::config::ServeArgs {
            config: Some(path),
            ..crate::config::ServeArgs::default()
        };
        let config = crate::config::ServeConfig::resolve(&args).unwrap();
        let f = config.reports.expect("reports on by default").forward;
        assert_eq!(
            f.sentry.map(|d| d.envelope_url.to_string()).as_deref(),
            Some("https://sentry.example.ru/api/42/envelope/")
        );
        assert_eq!(f.webhooks.len(), 2);
        assert_eq!(f.threshold, Some(25));
        assert_eq!(f.console_url.as_deref(), Some("https://support.example.ru:8444"));
    }
}
