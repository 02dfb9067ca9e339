//! Reading a `report.json` tolerantly, and the group a report (or a getInfo request)
//! belongs to.
//!
//! Shapes vary by platform release, so nothing is required: a field that is missing or of
//! another type is simply absent, and the whole document is kept as parsed, unknown fields
//! included. Grouping follows what support teams asked of the peers: the application stack
//! hash first (it is the same on every OS and bitness), then the server and client stack
//! hashes, then the error text.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::ReportFields;

/// `report.json` as parsed: the fields shown and grouped on, and the whole document.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ParsedReport {
    /// The fields shown and grouped on.
    pub fields: ReportFields,
    /// The document (`Null` when absent or not JSON).
    pub json: Value,
}

/// Parses `report.json` bytes: UTF-8 with or without a BOM; anything unreadable gives empty
/// fields and `Null`, never an error (the archive is still kept).
pub(super) fn parse(bytes: Option<&[u8]>) -> ParsedReport {
    let json = bytes
        .map(|b| b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b))
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .unwrap_or(Value::Null);
    ParsedReport {
        fields: fields(&json),
        json,
    }
}

/// The text at `path` (numbers and booleans as written); empty strings count as absent.
fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut at = v;
    for key in path {
        at = at.get(key)?;
    }
    match at {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn fields(v: &Value) -> ReportFields {
    let sys = ["errorInfo", "systemErrorInfo"];
    let app = ["errorInfo", "applicationErrorInfo"];
    // errors: [[text, [categories]], …]; some releases write [{"text": …}] or plain strings.
    let error_text = v
        .pointer("/errorInfo/applicationErrorInfo/errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| match e {
                    Value::Array(a) => a.first().and_then(Value::as_str),
                    Value::Object(o) => o.get("text").and_then(Value::as_str),
                    Value::String(s) => Some(s.as_str()),
                    _ => None,
                })
                .filter(|t| !t.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|t| !t.is_empty());
    ReportFields {
        report_time: text(v, &["time"]),
        report_uuid: text(v, &["id"]),
        user_name: text(v, &["sessionInfo", "userName"]),
        client_id: text(v, &["clientInfo", "systemInfo", "clientID"]),
        os_version: text(v, &["clientInfo", "systemInfo", "osVersion"]),
        app_name: text(v, &["clientInfo", "appName"]),
        app_version: text(v, &["clientInfo", "appVersion"]),
        platform_type: text(v, &["clientInfo", "platformType"]),
        config_name: text(v, &["configInfo", "name"]),
        config_version: text(v, &["configInfo", "version"]),
        error_text,
        user_description: text(v, &["errorInfo", "userDescription"]),
        app_stack_hash: text(v, &[app[0], app[1], "stackHash"]),
        client_stack_hash: text(v, &[sys[0], sys[1], "clientStackHash"]),
        server_stack_hash: text(v, &[sys[0], sys[1], "serverStackHash"]),
        screenshot: text(v, &["screenshot", "file"]),
    }
}

/// The group key: `app:<stackHash>`, else `sys:<server>/<client>`, else `text:<digest of the
/// error text>`, else `none`. A getInfo request with the same hashes gets the same key.
pub(super) fn group_key(
    app_stack_hash: Option<&str>,
    server_stack_hash: Option<&str>,
    client_stack_hash: Option<&str>,
    error_text: Option<&str>,
) -> String {
    fn present(s: Option<&str>) -> Option<&str> {
        s.map(str::trim).filter(|s| !s.is_empty())
    }
    if let Some(h) = present(app_stack_hash) {
        return format!("app:{}", h.to_ascii_uppercase());
    }
    let (server, client) = (present(server_stack_hash), present(client_stack_hash));
    if server.is_some() || client.is_some() {
        return format!(
            "sys:{}/{}",
            server.unwrap_or("").to_ascii_uppercase(),
            client.unwrap_or("").to_ascii_uppercase()
        );
    }
    if let Some(t) = present(error_text) {
        // Whitespace differences (line breaks, trailing spaces) do not split a group.
        let normalized: Vec<&str> = t.split_whitespace().collect();
        let digest = Sha256::digest(normalized.join(" ").as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        return format!("text:{hex}");
    }
    "none".into()
}

/// The group of a parsed report.
pub(super) fn group_of(f: &ReportFields) -> String {
    group_key(
        f.app_stack_hash.as_deref(),
        f.server_stack_hash.as_deref(),
        f.client_stack_hash.as_deref(),
        f.error_text.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bom_missing_fields_and_unknown_fields_are_all_fine() {
        let doc = b"\xEF\xBB\xBF{\"time\":\"2020-11-11T23:17:47+03:00\",\"sessionInfo\":{\"userName\":\"\"},\
            \"futureField\":{\"x\":1},\"errorInfo\":{\"applicationErrorInfo\":{\"errors\":[[\"boom\",[]]]}}}";
        let p = parse(Some(doc));
        assert_eq!(p.fields.report_time.as_deref(), Some("2020-11-11T23:17:47+03:00"));
        assert_eq!(p.fields.user_name, None);
        assert_eq!(p.fields.error_text.as_deref(), Some("boom"));
        assert_eq!(p.json["futureField"]["x"], 1);
        assert_eq!(parse(Some(b"not json")).json, Value::Null);
        assert_eq!(parse(None).fields, ReportFields::default());
    }

    #[test]
    fn grouping_prefers_the_application_stack_hash_then_system_hashes_then_text() {
        assert_eq!(group_key(Some("ab"), Some("s"), Some("c"), Some("t")), "app:AB");
        assert_eq!(group_key(Some(" "), Some("s"), Some("c"), Some("t")), "sys:S/C");
        let a = group_key(None, None, None, Some("Division by zero\n"));
        assert_eq!(a, group_key(None, None, None, Some("Division  by zero")));
        assert!(a.starts_with("text:"));
        assert_ne!(a, group_key(None, None, None, Some("Division by one")));
        assert_eq!(group_key(None, None, None, None), "none");
    }
}
