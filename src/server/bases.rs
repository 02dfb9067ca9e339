//! The per-base paths of `--messages DIR`: `/NAME/` and `/NAME/message.json` (the same
//! contract as `/`), `/NAME/help` and the rest of the web client's files under `/NAME/`,
//! and what `/healthz` says about the documents. An unknown base is a 404 naming it.
//!
//! Finding the base is one lookup with the `&str` of the path: nothing is allocated before
//! the pre-rendered answer is chosen.

use chrono::{DateTime, Utc};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::routes::{self, App, Body};
use crate::messages::{Messages, name};
use crate::metrics::Route;

const MESSAGE_ALLOW: HeaderValue = HeaderValue::from_static("GET, HEAD, POST, OPTIONS");

/// Splits `/NAME/rest` into a valid NAME and `rest` (`""`, `/`, `/message.json`, `/help`…).
pub fn split(path: &str) -> Option<(&str, &str)> {
    let path = path.strip_prefix('/')?;
    let (base, rest) = match path.find('/') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    name::is_valid(base).then_some((base, rest))
}

/// Answers a path that is none of the root's. Every answer but a POSTed message leaves
/// the request body unread: it is discarded before the answer goes out.
pub(super) async fn route(req: Request<Incoming>, app: &App, messages: &Messages) -> (Route, Response<Body>) {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let (route, response) = match split(path) {
        None => (Route::Unknown, routes::not_found(path)),
        Some((base, rest)) => match messages.get(base) {
            None => (Route::Unknown, unknown_base(base)),
            Some(live) => match rest {
                "" | "/" | "/message.json" => {
                    let response = match parts.method {
                        Method::GET | Method::HEAD => routes::message(&parts.headers, parts.uri.query(), app, &live),
                        Method::POST => {
                            let base = base.to_string();
                            let req = Request::from_parts(parts, body);
                            return (Route::Message, routes::post_message(req, app, &live, Some(&base)).await);
                        }
                        Method::OPTIONS => routes::preflight(app, MESSAGE_ALLOW),
                        _ => routes::not_allowed(MESSAGE_ALLOW),
                    };
                    (Route::Message, response)
                }
                asset => match super::web::route_for_base(&parts.method, asset, &app.config, base) {
                    Some(response) => (Route::Web, response),
                    None => (Route::Unknown, routes::not_found(path)),
                },
            },
        },
    };
    (
        route,
        super::request::answer_after_drain(response, &parts.headers, body).await,
    )
}

/// `{"error": "unknown base", "base": NAME}`, 404.
fn unknown_base(base: &str) -> Response<Body> {
    routes::json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "unknown base", "base": base}),
    )
}

/// The `messages` part of `/healthz`: the directory, counts by state, and every document's
/// state and last error. Without `details` (the public listener without
/// `--health-details`): no paths and no error texts, only whether a document's last
/// reload failed.
pub(super) fn health(messages: &Messages, now: DateTime<Utc>, details: bool) -> serde_json::Value {
    let mut documents = serde_json::to_value(messages.reports(now)).unwrap_or_default();
    if !details && let Some(list) = documents.as_array_mut() {
        list.iter_mut().for_each(state_only);
    }
    let mut health = serde_json::json!({
        "summary": messages.summary(now),
        "loaded_in_ms": messages.loaded_in().as_secs_f64() * 1000.0,
        "documents": documents,
    });
    if details && let Some(fields) = health.as_object_mut() {
        fields.insert("dir".into(), messages.dir().display().to_string().into());
    }
    health
}

/// One document's report without its path and error text.
fn state_only(report: &mut serde_json::Value) {
    if let Some(fields) = report.as_object_mut() {
        fields.remove("source");
        let failed = fields.remove("last_error").is_some_and(|e| !e.is_null());
        fields.insert("last_reload_failed".into(), failed.into());
    }
}

/// `/healthz?base=NAME`: that one document, or a 404 naming it.
pub(super) fn healthz_one(messages: &Messages, query: &str, details: bool) -> Response<Body> {
    let wanted = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("base="))
        .unwrap_or_default();
    let now = Utc::now();
    let mut r = match messages.report(wanted, now) {
        Some(report) => {
            let mut report = serde_json::to_value(report).unwrap_or_default();
            if !details {
                state_only(&mut report);
            }
            routes::json_response(
                StatusCode::OK,
                &serde_json::json!({"status": "ok", "now": now.to_rfc3339(), "base": report}),
            )
        }
        None => unknown_base(wanted),
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_base_and_rest() {
        assert_eq!(split("/erp/"), Some(("erp", "/")));
        assert_eq!(split("/erp"), Some(("erp", "")));
        assert_eq!(split("/erp/message.json"), Some(("erp", "/message.json")));
        assert_eq!(split("/hr-2/help"), Some(("hr-2", "/help")));
        assert_eq!(split("/erp/a/b"), Some(("erp", "/a/b")));
        assert_eq!(split("/"), None);
        assert_eq!(split("/../x"), None);
        assert_eq!(split("/%D0%B1/"), None);
    }
}
