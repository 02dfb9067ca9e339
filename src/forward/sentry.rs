//! Sentry: the DSN, the event built from a stored report, the envelope that carries it with
//! `report.json` and the screenshot as attachments, and the rate-limit answers
//! (`Retry-After`, `X-Sentry-Rate-Limits`).
//!
//! The envelope format: a header line (JSON), then per item a header line with its `type`
//! and `length` in bytes, the payload and a line break. It goes to
//! `{scheme}://{host}/api/{project}/envelope/` with the key in the `X-Sentry-Auth` header.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::store::ReportDetail;

/// The client name sent to Sentry.
const CLIENT: &str = concat!("v8help/", env!("CARGO_PKG_VERSION"));
/// Longest tag value Sentry takes.
const MAX_TAG: usize = 200;

/// A parsed Sentry DSN: `{scheme}://{public_key}[:{secret}]@{host}[:{port}]/{path/}{project}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// The DSN as given (the envelope header repeats it).
    pub text: String,
    /// The public key.
    pub public_key: String,
    /// The legacy secret key, if the DSN has one.
    pub secret_key: Option<String>,
    /// The envelope endpoint.
    pub envelope_url: reqwest::Url,
}

impl Dsn {
    /// Parses a DSN; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Dsn, String> {
        let url = reqwest::Url::parse(text).map_err(|e| format!("{e} (expected https://KEY@HOST/PROJECT)"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("the DSN's scheme must be http or https".into());
        }
        let host = url.host_str().ok_or("the DSN names no host")?;
        if url.username().is_empty() {
            return Err("the DSN has no public key (KEY@ before the host)".into());
        }
        let path = url.path().trim_end_matches('/');
        let (prefix, project) = path.rsplit_once('/').unwrap_or(("", path));
        if project.is_empty()
            || !project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("the DSN's path must end with the project id".into());
        }
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let envelope = format!("{}://{host}{port}{prefix}/api/{project}/envelope/", url.scheme());
        Ok(Dsn {
            text: text.to_string(),
            public_key: url.username().to_string(),
            secret_key: url.password().map(str::to_string),
            envelope_url: reqwest::Url::parse(&envelope).map_err(|e| e.to_string())?,
        })
    }

    /// The `X-Sentry-Auth` header's value.
    pub(crate) fn auth_header(&self) -> String {
        let mut h = format!(
            "Sentry sentry_version=7, sentry_client={CLIENT}, sentry_key={}",
            self.public_key
        );
        if let Some(secret) = &self.secret_key {
            h.push_str(&format!(", sentry_secret={secret}"));
        }
        h
    }
}

/// A stable event id for report `id` of this store: a retry after a lost answer sends the
/// same id, which Sentry stores once.
pub(crate) fn event_id(report: &ReportDetail) -> String {
    let s = &report.summary;
    let digest = Sha256::digest(format!(
        "v8help-event\n{}\n{}\n{}",
        s.group_key,
        s.id,
        s.received_at.timestamp_millis()
    ));
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// The event of one report: the group key as fingerprint, the error text as message, the
/// platform, configuration and user as tags and contexts.
pub(crate) fn event(report: &ReportDetail, link: Option<&str>) -> Value {
    let s = &report.summary;
    let f = &s.fields;
    let mut tags = Map::new();
    for (name, value) in [
        ("platform.type", &f.platform_type),
        ("platform.version", &f.app_version),
        ("app", &f.app_name),
        ("config", &f.config_name),
        ("config.version", &f.config_version),
        ("os", &f.os_version),
        ("user", &f.user_name),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            tags.insert(name.into(), json!(clip(v, MAX_TAG)));
        }
    }
    tags.insert("group".into(), json!(clip(&s.group_key, MAX_TAG)));
    let message = f
        .error_text
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "(no error text in the report)".into());
    let mut event = json!({
        "event_id": event_id(report),
        "timestamp": s.received_at.timestamp_millis() as f64 / 1000.0,
        "platform": "other",
        "level": "error",
        "logger": "v8help",
        "message": {"formatted": message},
        "fingerprint": [s.group_key],
        "tags": tags,
        "contexts": {
            "os": {"type": "os", "name": f.os_version},
            "platform": {
                "type": "platform",
                "platform_type": f.platform_type,
                "app_name": f.app_name,
                "app_version": f.app_version,
                "client_id": f.client_id,
            },
            "config": {"type": "config", "name": f.config_name, "version": f.config_version},
            "user": {"type": "user", "name": f.user_name, "description": f.user_description},
            "report": {
                "type": "report",
                "id": s.id,
                "uuid": f.report_uuid,
                "time": f.report_time,
                "group": s.group_key,
                "console": link,
            },
        },
        "extra": {"user_description": f.user_description, "files": report.files},
    });
    if let Some(user) = f.user_name.as_deref().filter(|u| !u.is_empty()) {
        event["user"] = json!({"username": user});
    }
    if let (Some(name), Some(version)) = (&f.config_name, &f.config_version) {
        event["release"] = json!(clip(&format!("{name}@{version}"), MAX_TAG));
    }
    event
}

/// A file attached to the event.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    /// Its name as Sentry shows it.
    pub filename: String,
    /// Its MIME type.
    pub content_type: &'static str,
    /// Its bytes, as they were in the archive.
    pub data: Bytes,
}

/// The content type of an attached file by its name.
pub(crate) fn content_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    match lower.rsplit_once('.').map(|(_, ext)| ext) {
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        Some("txt" | "log") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The envelope: its header, the event, then each attachment.
pub(crate) fn envelope(dsn: &Dsn, event: &Value, attachments: &[Attachment], now: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::new();
    let header = json!({
        "event_id": event["event_id"],
        "dsn": dsn.text,
        "sent_at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    push_line(&mut out, header.to_string().as_bytes());
    let body = event.to_string();
    let item = json!({"type": "event", "length": body.len(), "content_type": "application/json"});
    push_line(&mut out, item.to_string().as_bytes());
    push_line(&mut out, body.as_bytes());
    for a in attachments {
        let item = json!({
            "type": "attachment",
            "length": a.data.len(),
            "filename": a.filename,
            "content_type": a.content_type,
            "attachment_type": "event.attachment",
        });
        push_line(&mut out, item.to_string().as_bytes());
        push_line(&mut out, &a.data);
    }
    out
}

fn push_line(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    out.push(b'\n');
}

/// How long `X-Sentry-Rate-Limits` tells us to wait before sending an event again: entries
/// `seconds:categories:scope…`, comma-separated; an entry applies when its categories are
/// empty (all) or include `error`.
pub(crate) fn rate_limited_for(header: &str) -> Option<Duration> {
    header
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.trim().split(':');
            let secs: u64 = parts.next()?.trim().parse().ok()?;
            let categories = parts.next().unwrap_or("");
            let applies = categories.is_empty() || categories.split(';').any(|c| c == "error" || c == "default");
            applies.then_some(Duration::from_secs(secs))
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dsn_gives_the_envelope_endpoint_and_the_auth_header() {
        let d = Dsn::parse("https://abc123@o1.ingest.example.io:8443/sub/42").unwrap();
        assert_eq!(
            d.envelope_url.as_str(),
            "https://o1.ingest.example.io:8443/sub/api/42/envelope/"
        );
        assert!(d.auth_header().contains("sentry_key=abc123"));
        assert!(Dsn::parse("https://o1.example/42").is_err(), "no key");
        assert!(Dsn::parse("https://k@o1.example/").is_err(), "no project");
    }

    #[test]
    fn rate_limit_headers_apply_to_events_only_when_they_say_so() {
        assert_eq!(
            rate_limited_for("60:error;attachment:organization, 10::key"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(rate_limited_for("30:transaction:organization"), None);
        assert_eq!(rate_limited_for("garbage"), None);
    }
}
