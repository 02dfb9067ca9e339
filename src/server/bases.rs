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

/// Answers a path that is none of the root's.
pub(super) async fn route(req: Request<Incoming>, app: &App, messages: &Messages) -> (Route, Response<Body>) {
    let path = req.uri().path();
    let Some((base, rest)) = split(path) else {
        return (Route::Unknown, routes::not_found(path));
    };
    let Some(live) = messages.get(base) else {
        return (Route::Unknown, unknown_base(base));
    };
    match rest {
        "" | "/" | "/message.json" => {
            let response = match *req.method() {
                Method::GET | Method::HEAD => routes::message(req.headers(), req.uri().query(), app, &live),
                Method::POST => {
                    let base = base.to_string();
                    routes::post_message(req, app, &live, Some(&base)).await
                }
                Method::OPTIONS => routes::preflight(app, MESSAGE_ALLOW),
                _ => routes::not_allowed(MESSAGE_ALLOW),
            };
            (Route::Message, response)
        }
        asset => match super::web::route_for_base(req.method(), asset, &app.config, base) {
            Some(response) => (Route::Web, response),
            None => (Route::Unknown, routes::not_found(path)),
        },
    }
}

/// `{"error": "unknown base", "base": NAME}`, 404.
fn unknown_base(base: &str) -> Response<Body> {
    routes::json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "unknown base", "base": base}),
    )
}

/// The `messages` part of `/healthz`: the directory, counts by state, and every document's
/// state and last error.
pub(super) fn health(messages: &Messages, now: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "dir": messages.dir().display().to_string(),
        "summary": messages.summary(now),
        "loaded_in_ms": messages.loaded_in().as_secs_f64() * 1000.0,
        "documents": messages.reports(now),
    })
}

/// `/healthz?base=NAME`: that one document, or a 404 naming it.
pub(super) fn healthz_one(messages: &Messages, query: &str) -> Response<Body> {
    let wanted = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("base="))
        .unwrap_or_default();
    let now = Utc::now();
    let mut r = match messages.report(wanted, now) {
        Some(report) => routes::json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "now": now.to_rfc3339(), "base": report}),
        ),
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
