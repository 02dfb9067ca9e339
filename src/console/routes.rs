//! The console's router: login and logout, the pages, the downloads and the JSON API. It
//! knows nothing of the public routes and they know nothing of it; it is only ever served
//! by the admin listener ([`super::ConsoleServer`]).
//!
//! Every request but the login form and the stylesheet needs a session (pages, downloads,
//! the API) or, under `/api/` only, HTTP Basic. Every change is a POST that must come from
//! this console's own origin and carry the session's CSRF token (forms) or come with Basic
//! and a JSON body (scripts).
//!
//! (Over 600 lines: every console route with its authentication and CSRF check in one
//! router, so a reader sees in one place that no route skips them.)

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use maud::Markup;
use serde::Deserialize;

use super::Console;
use super::auth::{self, SESSION_TTL};
use super::data::{series, series_start};
use super::i18n::Lang;
use super::pages::{self, Viewer};
use crate::server::routes::Body;
use crate::store::{
    GroupQuery, GroupSummary, Mark, MarkState, ReportDetail, ReportId, ReportSummary, Session, StoreError,
};

/// Largest accepted form or JSON body.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// Longest accepted note on a mark.
const MAX_NOTE_CHARS: usize = 2000;

const CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
);
const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// Who a request is from, and how they proved it.
enum Who {
    /// A browser with a session cookie; `csrf` is the token its forms must carry.
    Session { user: String, token: String, csrf: String },
    /// A script with HTTP Basic (only under `/api/`).
    Basic { user: String },
}

impl Who {
    fn user(&self) -> &str {
        match self {
            Who::Session { user, .. } | Who::Basic { user } => user,
        }
    }
}

/// Answers one request to the console. `peer` is the client's address (for the login limiter).
pub(super) async fn handle(req: Request<Incoming>, console: Arc<Console>, peer: IpAddr) -> Response<Body> {
    let now = Utc::now();
    let lang = Lang::from_accept(req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let mut response = route(req, &console, peer, lang, now).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, CSP);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the
    // console's own form posts, and the origin check needs the real one.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    response
}

async fn route(
    req: Request<Incoming>,
    console: &Console,
    peer: IpAddr,
    lang: Lang,
    now: DateTime<Utc>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    let api = segments.first() == Some(&"api");
    match (&method, segments.as_slice()) {
        (&Method::GET, ["console.css"]) => {
            let mut r = with_type(Bytes::from_static(pages::CSS.as_bytes()), "text/css; charset=utf-8");
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
            return r;
        }
        (&Method::GET, ["login"]) => return page(StatusCode::OK, pages::login(lang, None, "")),
        (&Method::POST, ["login"]) => return login(req, console, peer, lang, now).await,
        _ => {}
    }
    let who = match authenticate(req.headers(), console, peer, api, now).await {
        Ok(Some(who)) => who,
        Ok(None) if api => return unauthorized(),
        Ok(None) => return redirect("/login"),
        Err(response) => return response,
    };
    let viewer_csrf = match &who {
        Who::Session { csrf, .. } => csrf.clone(),
        Who::Basic { .. } => String::new(),
    };
    let viewer = Viewer {
        user: who.user(),
        csrf: &viewer_csrf,
    };
    let id = |s: &str| s.parse::<ReportId>().ok();
    let query = req.uri().query().unwrap_or("").to_string();
    let key = || {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
    };
    let store = &console.store;
    let result: Result<Option<Response<Body>>, StoreError> = match (&method, segments.as_slice()) {
        (&Method::POST, ["logout"]) => {
            let (parts, body) = req.into_parts();
            if let Err(r) = checked_form(&parts, body, &who).await {
                return r;
            }
            if let Who::Session { token, .. } = &who {
                if let Err(err) = store.delete_session(&auth::session_key(token)).await {
                    tracing::error!("{err}");
                }
            }
            let mut r = redirect("/login");
            set_header(&mut r, header::SET_COOKIE, &auth::clear_cookie());
            return r;
        }
        (&Method::GET, [""]) => groups_with_hours(console, now)
            .await
            .map(|g| Some(html(pages::groups(lang, &viewer, &g)))),
        (&Method::GET, ["group"]) => match key() {
            Some(key) => group_page(console, &key, now)
                .await
                .map(|g| g.map(|(g, hours, reports)| html(pages::group(lang, &viewer, &g, &hours, &reports)))),
            None => Ok(None),
        },
        (&Method::POST, ["group", "mark"]) => {
            let (parts, body) = req.into_parts();
            let form = match checked_form(&parts, body, &who).await {
                Ok(form) => form,
                Err(r) => return r,
            };
            let (Some(key), Some(state)) = (form.get("key"), form.get("state")) else {
                return bad_request("key and state are required");
            };
            let note = form.get("note").cloned().unwrap_or_default();
            match mark(console, &who, key, state, &note, now).await {
                Ok(Ok(())) => Ok(Some(redirect(&pages::group_url(key)))),
                Ok(Err(r)) => return r,
                Err(err) => Err(err),
            }
        }
        (&Method::GET, ["reports", rid]) => match id(rid) {
            Some(rid) => store.report(rid).await.map(|r| {
                r.map(|r| {
                    let shot = screenshot_name(&r).is_some();
                    html(pages::report(lang, &viewer, &r, shot))
                })
            }),
            None => Ok(None),
        },
        (&Method::GET, ["reports", rid, "screenshot"]) => match id(rid) {
            Some(rid) => match store.report(rid).await {
                Ok(Some(r)) => match screenshot_name(&r) {
                    Some(name) => store.archive_file(rid, &name).await.map(|b| b.map(screenshot)),
                    None => Ok(None),
                },
                other => other.map(|_| None),
            },
            None => Ok(None),
        },
        (&Method::GET, ["reports", rid, "files", n]) => match (id(rid), n.parse::<usize>().ok()) {
            (Some(rid), Some(n)) => match store.report(rid).await {
                Ok(Some(r)) => match r.files.get(n) {
                    Some(file) => store
                        .archive_file(rid, &file.name)
                        .await
                        .map(|b| b.map(|b| download(b, &file.name))),
                    None => Ok(None),
                },
                other => other.map(|_| None),
            },
            _ => Ok(None),
        },
        (&Method::GET, ["reports", rid, "archive"]) => match id(rid) {
            Some(rid) => store
                .archive(rid)
                .await
                .map(|a| a.map(|a| download(a, &format!("report-{rid}.zip")))),
            None => Ok(None),
        },
        (&Method::GET, ["failures"]) => {
            let step = chrono::Duration::minutes(1);
            let start = series_start(now, step, MINUTES);
            match store.login_failures(start, LATEST_FAILURES).await {
                Ok(latest) => store.login_failures_per_minute(start).await.map(|b| {
                    Some(html(pages::failures(
                        lang,
                        &viewer,
                        &series(&b, now, step, MINUTES),
                        start,
                        &latest,
                    )))
                }),
                Err(err) => Err(err),
            }
        }
        (&Method::GET, ["api", "health"]) => Ok(console.health.get().map(|report| json(&report()))),
        (&Method::GET, ["forwarding"]) => match store.outbox_stats().await {
            Ok(stats) => store
                .outbox_problems(MAX_PROBLEMS)
                .await
                .map(|problems| Some(html(pages::forwarding(lang, &viewer, &stats, &problems)))),
            Err(err) => Err(err),
        },
        (&Method::GET, ["api", "groups"]) => groups_with_hours(console, now).await.map(|groups| {
            let list: Vec<serde_json::Value> = groups
                .into_iter()
                .map(|(g, hours)| serde_json::json!({"group": g, "per_hour": hours}))
                .collect();
            Some(json(&list))
        }),
        (&Method::GET, ["api", "group"]) => match key() {
            Some(key) => group_page(console, &key, now)
                .await
                .map(|g| g.map(|(g, hours, _)| json(&serde_json::json!({"group": g, "per_hour": hours})))),
            None => return api_error(StatusCode::BAD_REQUEST, "?key= is required"),
        },
        (&Method::GET, ["api", "group", "reports"]) => match key() {
            Some(key) => match store.group(&key).await {
                Ok(Some(_)) => store.group_reports(&key, MAX_REPORTS).await.map(|r| Some(json(&r))),
                other => other.map(|_| None),
            },
            None => return api_error(StatusCode::BAD_REQUEST, "?key= is required"),
        },
        (&Method::GET, ["api", "reports", rid]) => match id(rid) {
            Some(rid) => store.report(rid).await.map(|r| r.map(|r| json(&r))),
            None => Ok(None),
        },
        (&Method::POST, ["api", "mark"]) => {
            let (parts, body) = req.into_parts();
            let m = match checked_json::<MarkRequest>(&parts, body, &who).await {
                Ok(m) => m,
                Err(r) => return r,
            };
            match mark(console, &who, &m.key, &m.state, &m.note, now).await {
                Ok(Ok(())) => Ok(Some(json(
                    &serde_json::json!({"key": m.key, "state": m.state, "note": m.note}),
                ))),
                Ok(Err(r)) => return r,
                Err(err) => Err(err),
            }
        }
        _ => Ok(None),
    };
    match result {
        Ok(Some(response)) => response,
        Ok(None) if api => api_error(StatusCode::NOT_FOUND, "not found"),
        Ok(None) => not_found(lang, &viewer),
        Err(err) => {
            tracing::error!("console {method} {path}: {err}");
            if api {
                api_error(StatusCode::INTERNAL_SERVER_ERROR, "the reports store did not answer")
            } else {
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    pages::problem(lang, Some(&viewer), lang.t().store_error),
                )
            }
        }
    }
}

/// Latest events listed (with their base) on the login-failures page.
const LATEST_FAILURES: usize = 200;

/// Minutes on the login-failures page.
const MINUTES: usize = 24 * 60;
/// Most reports listed on a group's page.
const MAX_REPORTS: usize = 200;
/// Most failed deliveries listed on the forwarding page.
const MAX_PROBLEMS: usize = 100;

/// Every group with its reports in each of the last 24 hours.
async fn groups_with_hours(console: &Console, now: DateTime<Utc>) -> Result<Vec<(GroupSummary, Vec<u32>)>, StoreError> {
    let groups = console.store.list_groups(GroupQuery::default()).await?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let hours = hours(console, &g.key, now).await?;
        out.push((g, hours));
    }
    Ok(out)
}

async fn hours(console: &Console, key: &str, now: DateTime<Utc>) -> Result<Vec<u32>, StoreError> {
    let step = chrono::Duration::hours(1);
    let buckets = console.store.reports_per_hour(key, series_start(now, step, 24)).await?;
    Ok(series(&buckets, now, step, 24))
}

/// A group, its hourly counts and its latest reports.
async fn group_page(
    console: &Console,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<(GroupSummary, Vec<u32>, Vec<ReportSummary>)>, StoreError> {
    let Some(group) = console.store.group(key).await? else {
        return Ok(None);
    };
    let hours = hours(console, key, now).await?;
    let reports = console.store.group_reports(key, MAX_REPORTS).await?;
    Ok(Some((group, hours, reports)))
}

/// The screenshot's name in the archive: the one report.json names, else a file called
/// `screenshot.*`.
fn screenshot_name(r: &ReportDetail) -> Option<String> {
    let named = r
        .summary
        .fields
        .screenshot
        .as_deref()
        .filter(|n| r.files.iter().any(|f| f.name == *n));
    named.map(str::to_string).or_else(|| {
        r.files
            .iter()
            .find(|f| {
                let lower = f.name.to_ascii_lowercase();
                lower.rsplit('/').next().is_some_and(|n| n.starts_with("screenshot."))
            })
            .map(|f| f.name.clone())
    })
}

#[derive(Deserialize)]
struct MarkRequest {
    key: String,
    state: String,
    #[serde(default)]
    note: String,
}

/// Sets or clears a mark through the reports service. The inner `Err` is a response for a
/// request that names no group or no valid state.
async fn mark(
    console: &Console,
    who: &Who,
    key: &str,
    state: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Result<(), Response<Body>>, StoreError> {
    let state = match state {
        "none" => None,
        other => match MarkState::parse(other) {
            Some(state) => Some(state),
            None => return Ok(Err(bad_request("state must be none, known or fixed"))),
        },
    };
    if console.store.group(key).await?.is_none() {
        return Ok(Err(api_error(StatusCode::NOT_FOUND, "no such group")));
    }
    let mark = state.map(|state| Mark {
        state,
        note: note.chars().take(MAX_NOTE_CHARS).collect(),
        by: who.user().to_string(),
        at: now,
    });
    console.marks.mark(key, mark).await?;
    tracing::info!(user = %who.user(), group = %key, state = state.map_or("none", MarkState::as_str), "console: group marked");
    Ok(Ok(()))
}

/// The session from the cookie, or (under `/api/` only) Basic credentials. `Err` is a
/// response to send as is (429 for a locked-out Basic user).
async fn authenticate(
    headers: &HeaderMap,
    console: &Console,
    peer: IpAddr,
    api: bool,
    now: DateTime<Utc>,
) -> Result<Option<Who>, Response<Body>> {
    if let Some(token) = auth::cookie_token(headers) {
        match console.store.session(&auth::session_key(&token), now).await {
            Ok(Some(Session { user, .. })) if console.users.current().contains(&user) => {
                let csrf = auth::csrf_token(&token);
                return Ok(Some(Who::Session { user, token, csrf }));
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!("{err}");
                return Err(api_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the reports store did not answer",
                ));
            }
        }
    }
    if !api {
        return Ok(None);
    }
    let Some((user, password)) = auth::basic_credentials(headers) else {
        return Ok(None);
    };
    match console.check_password(peer, &user, password, now).await {
        Check::Ok => Ok(Some(Who::Basic { user })),
        Check::Wrong => Ok(None),
        Check::Locked(wait) => Err(too_many(
            wait,
            api_error(StatusCode::TOO_MANY_REQUESTS, "too many failed logins"),
        )),
    }
}

/// The outcome of a password check.
pub(super) enum Check {
    Ok,
    Wrong,
    Locked(Duration),
}

async fn login(
    req: Request<Incoming>,
    console: &Console,
    peer: IpAddr,
    lang: Lang,
    now: DateTime<Utc>,
) -> Response<Body> {
    let t = lang.t();
    let (parts, body) = req.into_parts();
    if !auth::same_origin(&parts.headers, authority(&parts)) {
        return refused(lang);
    }
    let Ok(form) = read_form(&parts, body).await else {
        return bad_request("the form could not be read");
    };
    let user = form.get("user").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    match console.check_password(peer, &user, password, now).await {
        Check::Ok => {}
        Check::Wrong => {
            return page(
                StatusCode::UNAUTHORIZED,
                pages::login(lang, Some(t.login_failed), &user),
            );
        }
        Check::Locked(wait) => {
            return too_many(
                wait,
                page(
                    StatusCode::TOO_MANY_REQUESTS,
                    pages::login(lang, Some(t.too_many), &user),
                ),
            );
        }
    }
    let token = match auth::new_token() {
        Ok(token) => token,
        Err(err) => {
            tracing::error!("console login: no randomness for a session token: {err}");
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::problem(lang, None, t.store_error),
            );
        }
    };
    let expires = now + chrono::Duration::from_std(SESSION_TTL).unwrap_or(chrono::Duration::hours(12));
    let session = Session {
        token_hash: auth::session_key(&token),
        user: user.clone(),
        created_at: now,
        expires_at: expires,
    };
    if let Err(err) = console.store.create_session(session).await {
        tracing::error!("console login: {err}");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::problem(lang, None, t.store_error),
        );
    }
    tracing::info!(user = %user, client = %peer, "console login");
    let mut r = redirect("/");
    set_header(&mut r, header::SET_COOKIE, &auth::set_cookie(&token));
    r
}

/// `:authority` (HTTP/2) or `Host` (HTTP/1.1).
fn authority(parts: &http::request::Parts) -> Option<&str> {
    parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()))
}

/// A form POST from a session: same origin, readable, and carrying the session's CSRF token.
async fn checked_form(
    parts: &http::request::Parts,
    body: Incoming,
    who: &Who,
) -> Result<std::collections::HashMap<String, String>, Response<Body>> {
    let lang = Lang::from_accept(parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let Who::Session { csrf, .. } = who else {
        return Err(refused(lang));
    };
    if !auth::same_origin(&parts.headers, authority(parts)) {
        tracing::warn!("console: cross-origin form refused");
        return Err(refused(lang));
    }
    let form = read_form(parts, body)
        .await
        .map_err(|_| bad_request("the form could not be read"))?;
    match form.get("csrf") {
        Some(sent) if auth::same(sent, csrf) => Ok(form),
        _ => {
            tracing::warn!("console: form without a valid CSRF token refused");
            Err(refused(lang))
        }
    }
}

/// A JSON POST to the API: same origin, `application/json` (which a cross-site form cannot
/// send), and from a session only with its CSRF token in `X-CSRF-Token`.
async fn checked_json<T: serde::de::DeserializeOwned>(
    parts: &http::request::Parts,
    body: Incoming,
    who: &Who,
) -> Result<T, Response<Body>> {
    let forbidden = || api_error(StatusCode::FORBIDDEN, "cross-origin or unauthenticated change refused");
    if !auth::same_origin(&parts.headers, authority(parts)) {
        return Err(forbidden());
    }
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(api_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send application/json"));
    }
    if let Who::Session { csrf, .. } = who {
        let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !sent.is_some_and(|s| auth::same(s, csrf)) {
            return Err(forbidden());
        }
    }
    let bytes = read_body(body)
        .await
        .map_err(|_| api_error(StatusCode::BAD_REQUEST, "the body could not be read"))?;
    serde_json::from_slice(&bytes).map_err(|e| api_error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")))
}

async fn read_body(body: Incoming) -> Result<Bytes, ()> {
    match tokio::time::timeout(Duration::from_secs(10), Limited::new(body, MAX_FORM_BYTES).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        _ => Err(()),
    }
}

async fn read_form(
    parts: &http::request::Parts,
    body: Incoming,
) -> Result<std::collections::HashMap<String, String>, ()> {
    let _ = parts;
    let bytes = read_body(body).await?;
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

fn set_header(r: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(name, v);
    }
}

fn with_type(body: Bytes, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn html(markup: Markup) -> Response<Body> {
    page(StatusCode::OK, markup)
}

fn page(status: StatusCode, markup: Markup) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(markup.into_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HTML);
    r
}

fn json<T: serde::Serialize>(value: &T) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(serde_json::to_vec(value).unwrap_or_default())));
    r.headers_mut().insert(header::CONTENT_TYPE, JSON);
    r
}

fn api_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = json(&serde_json::json!({ "error": message }));
    *r.status_mut() = status;
    r
}

fn unauthorized() -> Response<Body> {
    let mut r = api_error(StatusCode::UNAUTHORIZED, "log in or send HTTP Basic credentials");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"v8help console\", charset=\"UTF-8\""),
    );
    r
}

fn too_many(wait: Duration, mut r: Response<Body>) -> Response<Body> {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
    r
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    set_header(&mut r, header::LOCATION, to);
    r
}

fn refused(lang: Lang) -> Response<Body> {
    page(StatusCode::FORBIDDEN, pages::problem(lang, None, lang.t().refused))
}

fn bad_request(message: &str) -> Response<Body> {
    api_error(StatusCode::BAD_REQUEST, message)
}

fn not_found(lang: Lang, viewer: &Viewer<'_>) -> Response<Body> {
    page(
        StatusCode::NOT_FOUND,
        pages::problem(lang, Some(viewer), lang.t().not_found),
    )
}

/// The screenshot as `image/png` or `image/jpeg` when its first bytes say it is one;
/// anything else is refused rather than served under a type a browser might sniff.
fn screenshot(bytes: Bytes) -> Response<Body> {
    let kind = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else {
        return api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the screenshot is not a PNG or JPEG image",
        );
    };
    let mut r = with_type(bytes, kind);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    r
}

/// A file to save, never to show: `attachment` with a name reduced to safe characters
/// (and the original, percent-encoded, in `filename*`).
fn download(bytes: Bytes, name: &str) -> Response<Body> {
    let mut r = with_type(bytes, "application/octet-stream");
    set_header(&mut r, header::CONTENT_DISPOSITION, &content_disposition(name));
    r
}

/// `attachment; filename="…"; filename*=UTF-8''…` for an untrusted name: only its last
/// path segment, ASCII letters, digits, `.`, `-` and `_` in the plain form.
pub(super) fn content_disposition(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if safe.trim_matches(['.', '_']).is_empty() {
        safe = "file".into();
    }
    let encoded: String = base
        .bytes()
        .take(200)
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{safe}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_keep_no_path_quote_or_newline() {
        let d = content_disposition("../../etc/pass\"wd\r\n.txt");
        assert!(
            d.starts_with("attachment; filename=\"pass_wd__.txt\"; filename*=UTF-8''pass%22wd%0D%0A.txt"),
            "{d}"
        );
        let d = content_disposition("журнал.log");
        assert!(d.contains("filename*=UTF-8''%D0%B6"), "{d}");
        assert!(content_disposition("..").contains("filename=\"file\""));
    }
}
