//! Request → response: the message endpoints, `/healthz`, CORS preflight, and the errors
//! (404, 405, 413). The message answer is a pre-rendered body chosen by time and language;
//! nothing is serialized on that path.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};

use crate::config::ServeConfig;
use crate::messages::Messages;
use crate::metrics::{self, Metrics, Route};
use crate::reports::Reports;
use crate::reports::intake::{self, ClientAddr};
use crate::watch::LiveMessage;

/// Largest accepted POST body (the client's error details), in bytes.
pub(crate) const MAX_POST_BYTES: usize = 64 * 1024;

/// The response body type of every route.
pub(crate) type Body = Full<Bytes>;

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");
const VARY_LANG: HeaderValue = HeaderValue::from_static("Accept-Language");
const VARY_LANG_ORIGIN: HeaderValue = HeaderValue::from_static("Accept-Language, Origin");
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
const MESSAGE_ALLOW: HeaderValue = HeaderValue::from_static("GET, HEAD, POST, OPTIONS");
const READ_ALLOW: HeaderValue = HeaderValue::from_static("GET, HEAD, OPTIONS");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Everything a request needs, shared by all connections.
pub(crate) struct App {
    /// The snapshot being served, swapped by the watcher when the message file changes.
    pub live: Arc<LiveMessage>,
    /// The resolved settings (CORS origin, max-age cap, message service, access log…).
    pub config: ServeConfig,
    /// Counters every worker adds to, scraped at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The error-report intake, when `--reports-db` is not `off`.
    pub reports: Option<Arc<Reports>>,
    /// The per-base documents (`--messages`), served at `/NAME/`.
    pub messages: Option<Arc<Messages>>,
    /// `max-age=<cap>`, rendered once: what nearly every answer carries (a smaller value,
    /// near a transition, is rendered when asked for).
    cache_control: HeaderValue,
    /// The help page, the service worker and their files, rendered for these settings.
    web: super::web::WebAssets,
}

impl App {
    /// Prepares the shared state; header values that depend only on configuration are
    /// rendered here, once.
    pub(crate) fn new(
        live: Arc<LiveMessage>,
        config: ServeConfig,
        reports: Option<Arc<Reports>>,
        messages: Option<Arc<Messages>>,
    ) -> Arc<App> {
        let cache_control = max_age(config.max_age);
        let web = super::web::WebAssets::new(&config);
        Arc::new(App {
            live,
            config,
            metrics: Arc::new(Metrics::default()),
            reports,
            messages,
            cache_control,
            web,
        })
    }

    fn cors_is_wildcard(&self) -> bool {
        self.config.cors_origin.as_bytes() == b"*"
    }
}

/// Answers one request. `tls` adds Strict-Transport-Security.
pub(crate) async fn handle(req: Request<Incoming>, app: Arc<App>, tls: bool) -> Result<Response<Body>, Infallible> {
    // Only the access log needs the path after routing: no copy otherwise.
    let logged = app
        .config
        .access_log
        .then(|| (std::time::Instant::now(), req.uri().path().to_string()));
    let method = req.method().clone();
    let (route, mut response) = route(req, &app).await;
    app.metrics.request(route, response.status().as_u16());
    if method == Method::HEAD {
        // Same headers as GET, no body (HTTP/2 would reject DATA frames on a HEAD stream).
        let length = response.body().size_hint().exact().unwrap_or(0);
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        *response.body_mut() = Full::new(Bytes::new());
    }
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    if tls {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    if let Some((started, path)) = logged {
        tracing::info!(
            target: "access",
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            bytes = response.body().size_hint().exact().unwrap_or(0),
            took_us = started.elapsed().as_micros() as u64,
        );
    }
    Ok(response)
}

async fn route(req: Request<Incoming>, app: &App) -> (Route, Response<Body>) {
    if super::request::bad_host(req.version(), req.headers()) {
        let (parts, body) = req.into_parts();
        let answer = error_json(
            StatusCode::BAD_REQUEST,
            "an HTTP/1.1 request needs exactly one Host header",
        );
        return (
            Route::Unknown,
            super::request::answer_after_drain(answer, &parts.headers, body).await,
        );
    }
    if let Some(reports) = &app.reports
        && let Some(call) = intake::call_for(req.uri().path(), &reports.config.path)
    {
        return (
            Route::Reports,
            intake::handle(call, req, reports, app.config.body_timeout).await,
        );
    }
    let path = req.uri().path();
    if matches!(path, "/" | "/message.json") && req.method() == Method::POST {
        return (Route::Message, post_message(req, app, &app.live, None).await);
    }
    let (parts, body) = req.into_parts();
    match answer(&parts, app) {
        // Every answer here leaves the body unread: it is discarded before the answer goes out.
        Some((route, response)) => (
            route,
            super::request::answer_after_drain(response, &parts.headers, body).await,
        ),
        None => match &app.messages {
            Some(messages) => super::bases::route(Request::from_parts(parts, body), app, messages).await,
            None => {
                let response = not_found(parts.uri.path());
                (
                    Route::Unknown,
                    super::request::answer_after_drain(response, &parts.headers, body).await,
                )
            }
        },
    }
}

/// The root's answers that do not need the request body; `None`: a path of none of them.
fn answer(req: &http::request::Parts, app: &App) -> Option<(Route, Response<Body>)> {
    Some(match req.uri.path() {
        "/" | "/message.json" => (
            Route::Message,
            match req.method {
                Method::GET | Method::HEAD => message(&req.headers, req.uri.query(), app, &app.live),
                Method::OPTIONS => preflight(app, MESSAGE_ALLOW),
                _ => not_allowed(MESSAGE_ALLOW),
            },
        ),
        "/healthz" => (
            Route::Healthz,
            match req.method {
                Method::GET | Method::HEAD => match (&app.messages, req.uri.query()) {
                    (Some(messages), Some(query)) if query.split('&').any(|p| p.starts_with("base=")) => {
                        super::bases::healthz_one(messages, query, app.config.health_details)
                    }
                    _ => healthz(app),
                },
                Method::OPTIONS => preflight(app, READ_ALLOW),
                _ => not_allowed(READ_ALLOW),
            },
        ),
        "/metrics" => (
            Route::Metrics,
            match req.method {
                Method::GET | Method::HEAD => metrics_text(app),
                _ => not_allowed(READ_ALLOW),
            },
        ),
        path => match app.web.route(&req.method, path) {
            Some(response) => (Route::Web, response),
            None if app.messages.is_some() => return None,
            None => (Route::Unknown, not_found(path)),
        },
    })
}

fn metrics_text(app: &App) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(metrics::render(
        &app.metrics,
        &app.live,
        app.reports.as_ref(),
        app.messages.as_ref(),
    ))));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    r
}

/// The message of `live` (the root document or a base's), or 304 when the client already
/// has these bytes.
pub(super) fn message(headers: &HeaderMap, query: Option<&str>, app: &App, live: &LiveMessage) -> Response<Body> {
    let snapshot = live.snapshot();
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = query.and_then(query_lang);
    let choice = snapshot.choose(Utc::now(), lang, accept);
    let max_age = choice
        .seconds_to_change
        .map_or(app.config.max_age, |s| s.min(u64::from(app.config.max_age)) as u32);

    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| etag_matches(v.as_bytes(), choice.rendered.etag.as_bytes()));
    let mut response = if not_modified {
        status_only(StatusCode::NOT_MODIFIED)
    } else {
        let mut r = Response::new(Full::new(choice.rendered.body.clone()));
        r.headers_mut().insert(header::CONTENT_TYPE, JSON);
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, choice.rendered.etag.clone());
    let cache_control = if max_age == app.config.max_age {
        app.cache_control.clone()
    } else {
        self::max_age(max_age)
    };
    h.insert(header::CACHE_CONTROL, cache_control);
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, app.config.cors_origin.clone());
    match (choice.localized, app.cors_is_wildcard()) {
        (true, true) => h.insert(header::VARY, VARY_LANG),
        (true, false) => h.insert(header::VARY, VARY_LANG_ORIGIN),
        (false, false) => h.insert(header::VARY, VARY_ORIGIN),
        (false, true) => None,
    };
    response
}

/// `Cache-Control: max-age=<seconds>`.
fn max_age(seconds: u32) -> HeaderValue {
    HeaderValue::from_str(&format!("max-age={seconds}")).unwrap_or(HeaderValue::from_static("no-cache"))
}

/// A POST carries the client's error details: read (up to the limit), then answer as GET.
/// `base` is the base whose address the client used (`None`: the root document's).
pub(super) async fn post_message(
    req: Request<Incoming>,
    app: &App,
    live: &LiveMessage,
    base: Option<&str>,
) -> Response<Body> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, mut body) = req.into_parts();
    if declared.is_some_and(|n| n > MAX_POST_BYTES as u64) {
        return super::request::answer_after_drain(too_large(), &parts.headers, body).await;
    }
    let read = super::request::read_up_to(&mut body, MAX_POST_BYTES);
    match tokio::time::timeout(app.config.body_timeout, read).await {
        Ok(Ok(details)) => {
            // The client's error details become a login-failure event, queued: the answer
            // never waits for the store.
            if let Some(reports) = &app.reports {
                let client = parts.extensions.get::<ClientAddr>();
                let base = base.map(str::to_string);
                reports.login_failure(intake::login_event(&parts.headers, client, &details, base));
            }
            message(&parts.headers, parts.uri.query(), app, live)
        }
        Ok(Err(super::request::ReadError::TooLarge)) => {
            super::request::answer_after_drain(too_large(), &parts.headers, body).await
        }
        Ok(Err(super::request::ReadError::Broken)) => {
            error_json(StatusCode::BAD_REQUEST, "the request body could not be read")
        }
        Err(_) => error_json(StatusCode::REQUEST_TIMEOUT, "the request body was not received in time"),
    }
}

/// `?lang=kk` (the first `lang` parameter).
fn query_lang(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("lang="))
        .filter(|v| !v.is_empty())
}

/// If-None-Match: `*`, or a list of tags compared weakly (RFC 9110 §13.1.2).
fn etag_matches(header: &[u8], etag: &[u8]) -> bool {
    let Ok(header) = std::str::from_utf8(header) else {
        return false;
    };
    let Ok(etag) = std::str::from_utf8(etag) else {
        return false;
    };
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

pub(super) fn healthz(app: &App) -> Response<Body> {
    let body = health(app, app.config.health_details);
    let mut r = json_response(StatusCode::OK, &body);
    r.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    r.headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, app.config.cors_origin.clone());
    r
}

/// The `/healthz` document. Without `details` it says state only: whether the last reload
/// failed, not why (an error quotes the file's path and pieces of its content, which the
/// public listener does not show unless `--health-details`).
pub(crate) fn health(app: &App, details: bool) -> serde_json::Value {
    let now = Utc::now();
    let snapshot = app.live.snapshot();
    let doc = &snapshot.document;
    let status = app.live.status();
    let mut body = serde_json::json!({
        "status": "ok",
        "state": doc.state(now).as_str(),
        "loaded_at": status.loaded_at.map(|t| t.to_rfc3339()),
        "file_missing": status.file_missing,
        "last_reload_failed": status.last_error.is_some(),
        "checks": status.checks,
        "reloads": status.reloads,
        "reload_failures": status.failures,
        "last_reload_ms": status.last_duration.as_secs_f64() * 1000.0,
        "starts": doc.starts.map(|t| t.to_rfc3339()),
        "expires": doc.expires.map(|t| t.to_rfc3339()),
        "now": now.to_rfc3339(),
        "messages": app.messages.as_ref().map(|m| super::bases::health(m, now, details)),
        "store": app.reports.as_ref().map(|r| {
            let h = r.store.health();
            serde_json::json!({
                "backend": h.backend,
                "reachable": h.reachable,
                "spooled_reports": h.spooled,
            })
        }),
    });
    if details && let Some(fields) = body.as_object_mut() {
        fields.insert("source".into(), app.live.path().display().to_string().into());
        fields.insert("last_reload_error".into(), status.last_error.as_deref().into());
    }
    body
}

pub(super) fn preflight(app: &App, allow: HeaderValue) -> Response<Body> {
    let mut r = status_only(StatusCode::NO_CONTENT);
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, app.config.cors_origin.clone());
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, allow.clone());
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Accept-Language, Content-Type, If-None-Match"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    h.insert(header::ALLOW, allow);
    if !app.cors_is_wildcard() {
        h.insert(header::VARY, VARY_ORIGIN);
    }
    r
}

pub(super) fn not_allowed(allow: HeaderValue) -> Response<Body> {
    let mut r = error_json(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut().insert(header::ALLOW, allow);
    r
}

pub(super) fn not_found(path: &str) -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "not found", "path": path}),
    )
}

fn too_large() -> Response<Body> {
    let mut r = error_json(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body is larger than {MAX_POST_BYTES} bytes"),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// `{"error": message}` with `status` (also used by the report intake).
pub(crate) fn error_json(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &serde_json::json!({"error": message}))
}

pub(super) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, JSON);
    r
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        assert!(etag_matches(b"\"abc\"", b"\"abc\""));
        assert!(etag_matches(b"W/\"abc\"", b"\"abc\""));
        assert!(etag_matches(b"\"x\", \"abc\"", b"\"abc\""));
        assert!(etag_matches(b"*", b"\"abc\""));
        assert!(!etag_matches(b"\"abd\"", b"\"abc\""));
    }

    #[test]
    fn lang_is_read_from_the_query() {
        assert_eq!(query_lang("lang=kk"), Some("kk"));
        assert_eq!(query_lang("x=1&lang=lv&lang=hy"), Some("lv"));
        assert_eq!(query_lang("lang="), None);
        assert_eq!(query_lang("language=kk"), None);
    }
}
