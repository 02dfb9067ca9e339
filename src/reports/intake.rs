//! The HTTP side of the error-registration service on the public listeners: which paths are
//! getInfo and pushReport, reading their bodies within the limits, multipart or raw ZIP,
//! and the answers (200 only after the commit; 413, 400 with a log line, 503).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::archive::ArchiveError;
use super::{Outcome, Reports, TakeError};
use crate::server::routes::{Body, MAX_POST_BYTES, error_json};
use crate::store::LoginFailure;

/// How long a client may take to send a report archive (up to `--reports-max-size`).
pub const REPORT_BODY_TIMEOUT: Duration = Duration::from_secs(120);
/// A body declared up to this many times `--reports-max-size` is read and dropped before
/// the 413, so that the client gets the answer; beyond it the connection is closed.
const DRAIN_FACTOR: u64 = 4;

/// Reads a body to its end without keeping it, within [`REPORT_BODY_TIMEOUT`].
async fn drain(mut body: Incoming) {
    let _ = tokio::time::timeout(REPORT_BODY_TIMEOUT, async {
        while let Some(Ok(_frame)) = body.frame().await {}
    })
    .await;
}

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// The client's address, put into each request's extensions by the listener.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The two methods of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `…/getInfo`: should the client send its report?
    GetInfo,
    /// `…/pushReport`: the report archive.
    PushReport,
}

/// Which method `path` asks for under `base` (normalized, as `/reports`): the base and the
/// method name may be joined by one slash, several, or none.
pub fn call_for(path: &str, base: &str) -> Option<Call> {
    let rest = if path.contains("//") {
        // Rare: only then is the path copied to squeeze the slashes.
        let squeezed = super::config::normalize_path(path);
        return call_for(&squeezed, base);
    } else {
        path.strip_prefix(base)?
    };
    let name = rest.trim_start_matches('/');
    if name.eq_ignore_ascii_case("getInfo") {
        Some(Call::GetInfo)
    } else if name.eq_ignore_ascii_case("pushReport") {
        Some(Call::PushReport)
    } else {
        None
    }
}

/// Answers one getInfo or pushReport request.
pub async fn handle(call: Call, req: Request<Incoming>, reports: &Reports, body_timeout: Duration) -> Response<Body> {
    if req.method() != Method::POST {
        if call == Call::PushReport {
            reports.metrics.outcome(Outcome::BadRequest);
        }
        let mut r = error_json(StatusCode::METHOD_NOT_ALLOWED, "use POST");
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    match call {
        Call::GetInfo => get_info(req, reports, body_timeout).await,
        Call::PushReport => push_report(req, reports).await,
    }
}

async fn get_info(req: Request<Incoming>, reports: &Reports, body_timeout: Duration) -> Response<Body> {
    let body = match read(req.into_body(), MAX_POST_BYTES, body_timeout).await {
        Ok(b) => b,
        Err(status) => return error_json(status, "the getInfo request could not be read"),
    };
    let mut r = Response::new(Full::new(reports.get_info(&body)));
    r.headers_mut().insert(header::CONTENT_TYPE, JSON);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Reads a body up to `limit` bytes within `timeout`: 413 past the limit, 408 too slow,
/// 400 broken.
async fn read(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, StatusCode> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => Err(StatusCode::PAYLOAD_TOO_LARGE),
        Ok(Err(_)) => Err(StatusCode::BAD_REQUEST),
        Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
    }
}

async fn push_report(req: Request<Incoming>, reports: &Reports) -> Response<Body> {
    let max = reports.config.max_size;
    let client = req.extensions().get::<ClientAddr>().map(|a| a.0);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > max) {
        // Read (and drop) a moderately larger body so that the client sees the 413 rather
        // than a connection reset in the middle of its upload; a huge one is cut short.
        if n <= max.saturating_mul(DRAIN_FACTOR) {
            drain(req.into_body()).await;
        }
        return too_large(reports, client, max);
    }
    // Wait for memory before reading: under a flood of large archives the rest wait in TCP.
    let Some(_budget) = reports.reserve(declared.unwrap_or(max)).await else {
        reports.metrics.outcome(Outcome::StoreFailed);
        return error_json(StatusCode::SERVICE_UNAVAILABLE, "the service is shutting down");
    };
    let (parts, body) = req.into_parts();
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let body = match read(body, limit, REPORT_BODY_TIMEOUT).await {
        Ok(b) => b,
        Err(StatusCode::PAYLOAD_TOO_LARGE) => return too_large(reports, client, max),
        Err(status) => {
            reports.metrics.outcome(Outcome::BadRequest);
            return error_json(status, "the report could not be read");
        }
    };
    let archive = match multipart_boundary(&parts.headers) {
        Some(boundary) => match file_part(body, boundary).await {
            Ok(a) => a,
            Err(problem) => {
                reports.metrics.outcome(Outcome::BadRequest);
                tracing::warn!(client = ?client, "pushReport refused: {problem}");
                return error_json(StatusCode::BAD_REQUEST, &problem);
            }
        },
        None => body,
    };
    let size = archive.len();
    match reports.take(archive, client.map(|a| a.to_string()), Utc::now()).await {
        Ok(id) => {
            reports.metrics.outcome(Outcome::Stored);
            tracing::debug!(id, size, "error report stored");
            let mut r = Response::new(Full::new(Bytes::new()));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(TakeError::Archive(err)) => {
            reports.metrics.outcome(match err {
                ArchiveError::TooLarge { .. } | ArchiveError::TooManyEntries { .. } => Outcome::ZipBomb,
                ArchiveError::Traversal { .. } => Outcome::Traversal,
                ArchiveError::Unreadable(_) | ArchiveError::Encrypted { .. } => Outcome::BadArchive,
            });
            tracing::warn!(client = ?client, size, "pushReport refused: {err}");
            error_json(StatusCode::BAD_REQUEST, &format!("report archive refused: {err}"))
        }
        Err(TakeError::Store(err)) => {
            reports.metrics.outcome(Outcome::StoreFailed);
            tracing::error!(client = ?client, size, "error report not stored: {err}");
            error_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "the report could not be stored; try again later",
            )
        }
    }
}

fn too_large(reports: &Reports, client: Option<SocketAddr>, max: u64) -> Response<Body> {
    reports.metrics.outcome(Outcome::TooLarge);
    tracing::warn!(client = ?client, "pushReport refused: larger than {max} bytes");
    let mut r = error_json(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the report is larger than {max} bytes"),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    if !ct.trim_start().to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    multer::parse_boundary(ct).ok()
}

/// The archive in a multipart body: the first part with a file name, else the first part.
async fn file_part(body: Bytes, boundary: String) -> Result<Bytes, String> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut first = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| format!("bad multipart body: {e}"))?
    {
        let has_name = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(|e| format!("bad multipart body: {e}"))?;
        if has_name {
            return Ok(bytes);
        }
        first.get_or_insert(bytes);
    }
    first.ok_or_else(|| "the multipart body has no parts".to_string())
}

/// A login-failure event for a startup-error POST to the message address.
pub fn login_event(
    headers: &HeaderMap,
    client: Option<&ClientAddr>,
    body: &[u8],
    base: Option<String>,
) -> LoginFailure {
    LoginFailure {
        at: Utc::now(),
        client_addr: client.map(|c| c.0.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        body: body.to_vec(),
        base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_methods_are_found_with_one_two_or_no_slashes() {
        for path in [
            "/reports/getInfo",
            "/reports//getInfo",
            "/reportsgetInfo",
            "//reports/getinfo",
        ] {
            assert_eq!(call_for(path, "/reports"), Some(Call::GetInfo), "{path}");
        }
        assert_eq!(call_for("/reports/pushReport", "/reports"), Some(Call::PushReport));
        assert_eq!(call_for("/pushReport", ""), Some(Call::PushReport));
        assert_eq!(call_for("/reports/other", "/reports"), None);
        assert_eq!(call_for("/message.json", "/reports"), None);
    }
}
