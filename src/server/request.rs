//! What every request goes through around routing: the shape check that comes first
//! (HTTP/1.1 needs exactly one `Host`, RFC 9112 §3.2) and, for answers that do not read the
//! request body, discarding that body before the answer is sent.
//!
//! Why discard: a client still sending a body when the server answers and closes gets a TCP
//! reset (HTTP/1.1) or a reset stream (HTTP/2), and most clients then lose the answer — a
//! 405 or 413 becomes "connection reset". Reading and dropping the rest, up to
//! [`DRAIN_BYTES`] or [`DRAIN_TIME`], lets the client finish and read its answer (what
//! nginx's lingering close does). A body past those bounds is not read; the answer then
//! says `Connection: close`.

use bytes::Buf;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, Version};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};

use super::routes::Body;
use crate::limits::{DRAIN_BYTES, DRAIN_TIME};

/// Whether an HTTP/1.1 request lacks `Host` or has more than one (answered 400). HTTP/1.0
/// may omit it; HTTP/2 carries `:authority` instead.
pub(super) fn bad_host(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11 && headers.get_all(header::HOST).iter().count() != 1
}

/// What became of a request body the answer did not need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Drained {
    /// The whole body was read (or there was none): the connection can be reused.
    Complete,
    /// The body was larger than [`DRAIN_BYTES`], took longer than [`DRAIN_TIME`], broke off,
    /// or was never sent (`Expect: 100-continue`): the connection is closed after the answer.
    Abandoned,
}

/// Reads and discards `body` within the bounds.
pub(super) async fn drain(headers: &HeaderMap, body: Incoming) -> Drained {
    let mut body = body;
    if body.is_end_stream() {
        return Drained::Complete;
    }
    // A client waiting for 100 Continue has not sent its body: asking for it only to throw
    // it away would make it send everything.
    let expects = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if expects || declared.is_some_and(|n| n > DRAIN_BYTES) {
        return Drained::Abandoned;
    }
    let discard = async {
        let mut read = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Drained::Abandoned;
            };
            if let Some(data) = frame.data_ref() {
                read += data.remaining() as u64;
                if read > DRAIN_BYTES {
                    return Drained::Abandoned;
                }
            }
        }
        Drained::Complete
    };
    tokio::time::timeout(DRAIN_TIME, discard)
        .await
        .unwrap_or(Drained::Abandoned)
}

/// Why [`read_up_to`] gave no body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadError {
    /// More than the limit was sent; the rest of the body is still unread.
    TooLarge,
    /// The body broke off (the client went away or sent a malformed chunk).
    Broken,
}

/// The whole body if it is at most `limit` bytes. On [`ReadError::TooLarge`] the body is left
/// where reading stopped, so that the rest can be [`drain`]ed.
pub(super) async fn read_up_to(body: &mut Incoming, limit: usize) -> Result<bytes::Bytes, ReadError> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ReadError::Broken)?;
        if let Ok(mut data) = frame.into_data() {
            if out.len() + data.remaining() > limit {
                return Err(ReadError::TooLarge);
            }
            while data.has_remaining() {
                let chunk = data.chunk();
                out.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
    Ok(out.freeze())
}

/// `response`, sent once the unread `body` is discarded (see [`drain`]).
pub(super) async fn answer_after_drain(
    mut response: Response<Body>,
    headers: &HeaderMap,
    body: Incoming,
) -> Response<Body> {
    if drain(headers, body).await == Drained::Abandoned {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http11_needs_exactly_one_host() {
        let mut h = HeaderMap::new();
        assert!(bad_host(Version::HTTP_11, &h));
        assert!(!bad_host(Version::HTTP_10, &h));
        assert!(!bad_host(Version::HTTP_2, &h));
        h.append(header::HOST, HeaderValue::from_static("a"));
        assert!(!bad_host(Version::HTTP_11, &h));
        h.append(header::HOST, HeaderValue::from_static("b"));
        assert!(bad_host(Version::HTTP_11, &h));
    }
}
