//! A loaded message document rendered once into the exact bytes clients receive.
//!
//! Rendering happens when the document loads, never per request: a request picks one
//! pre-rendered body (by time and language) and its ETag, and clones two reference-counted
//! handles.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::HeaderValue;
use sha2::{Digest, Sha256};

use crate::document::{Document, State, negotiate_index};

/// One response body and its strong ETag.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The JSON body.
    pub body: Bytes,
    /// `"…"`: the first 128 bits of the body's SHA-256, so that every replica of the service
    /// gives the same document the same tag.
    pub etag: HeaderValue,
}

impl Rendered {
    fn new(body: Vec<u8>) -> Rendered {
        let digest = Sha256::digest(&body);
        let mut tag = String::with_capacity(34);
        tag.push('"');
        for b in &digest[..16] {
            tag.push_str(&format!("{b:02x}"));
        }
        tag.push('"');
        let etag = HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Rendered {
            body: Bytes::from(body),
            etag,
        }
    }
}

/// What a request gets: the body to send and for how long a cache may keep it.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    /// The pre-rendered body and ETag to send: the message in the chosen language, or the
    /// "no message" body when none is active.
    pub rendered: &'a Rendered,
    /// Whether the message is scheduled, active or expired at the moment of the request.
    pub state: State,
    /// Whole seconds until the next `starts`/`expires`, when there is one.
    pub seconds_to_change: Option<u64>,
    /// Whether the answer depends on the language (`Vary: Accept-Language`).
    pub localized: bool,
}

/// The served form of one document.
#[derive(Debug)]
pub struct Snapshot {
    /// The document this was rendered from.
    pub document: Arc<Document>,
    inactive: Rendered,
    default: Rendered,
    /// Tag → body, in the same order as `document.translations`.
    languages: Vec<Rendered>,
}

/// The body clients get when no message is active.
pub(crate) const INACTIVE_BODY: &str = r#"{"userMessage":""}"#;

impl Snapshot {
    /// Renders every variant of `document`.
    pub fn new(document: Document) -> Snapshot {
        let inactive = Rendered::new(INACTIVE_BODY.as_bytes().to_vec());
        // The fields after the text are the same for every language: rendered once.
        let tail = render_tail(&document);
        let default = Rendered::new(render(&document.user_message, &tail));
        let languages = document
            .translations
            .iter()
            .map(|(_, text)| Rendered::new(render(text, &tail)))
            .collect();
        Snapshot {
            document: Arc::new(document),
            inactive,
            default,
            languages,
        }
    }

    /// The snapshot of "no message".
    pub fn empty() -> Snapshot {
        Snapshot::new(Document::empty())
    }

    /// Chooses the answer at `now` for a request's `?lang=` and `Accept-Language`.
    pub fn choose(&self, now: DateTime<Utc>, query_lang: Option<&str>, accept_language: Option<&str>) -> Choice<'_> {
        let doc = &*self.document;
        let state = doc.state(now);
        let seconds_to_change = doc.next_transition(now).map(|t| (t - now).num_seconds().max(0) as u64);
        let localized = state.is_active() && !doc.translations.is_empty();
        let rendered = if !state.is_active() {
            &self.inactive
        } else {
            negotiate_index(&doc.translations, query_lang, accept_language)
                .and_then(|i| self.languages.get(i))
                .unwrap_or(&self.default)
        };
        Choice {
            rendered,
            state,
            seconds_to_change,
            localized,
        }
    }

    /// Bytes held by the rendered bodies (the document's memory cost once served).
    pub fn rendered_bytes(&self) -> usize {
        self.default.body.len() + self.languages.iter().map(|r| r.body.len()).sum::<usize>()
    }
}

/// The active body for one text: `userMessage` first, then `tail` (see [`render_tail`]).
fn render(text: &str, tail: &str) -> Vec<u8> {
    let text = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    let mut out = Vec::with_capacity(16 + text.len() + tail.len());
    out.extend_from_slice(b"{\"userMessage\":");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(tail.as_bytes());
    out
}

/// Everything after the text: the document's other fields in file order, each as written
/// (`userMessages` left out: a client needs only its own text), with `starts` and `expires`
/// written as RFC 3339 with an offset, null fields left out; and the closing brace.
fn render_tail(doc: &Document) -> String {
    let mut out = String::new();
    for (key, raw) in &doc.raw_fields {
        let value = match key.as_str() {
            "userMessage" | "userMessages" => continue,
            "starts" => doc.starts.map(rfc3339),
            "expires" => doc.expires.map(rfc3339),
            _ if raw == "null" => None,
            _ => Some(raw.clone()),
        };
        if let (Some(value), Ok(key)) = (value, serde_json::to_string(key)) {
            out.push(',');
            out.push_str(&key);
            out.push(':');
            out.push_str(&value);
        }
    }
    out.push('}');
    out
}

fn rfc3339(t: DateTime<chrono::FixedOffset>) -> String {
    format!("\"{}\"", t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Zone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn snapshot(s: &str) -> Snapshot {
        Snapshot::new(Document::parse(s.as_bytes(), "Europe/Moscow".parse::<Zone>().unwrap()).unwrap())
    }

    const DOC: &str = r#"{"ticket":42,"userMessage":"Работы","expires":"2026-11-22T14:00:00","userMessages":{"kk":"Жұмыс"},"helpUrl":"https://help.example/x?a=1#b"}"#;

    #[test]
    fn active_body_has_text_first_then_passthrough_fields_in_order() {
        let s = snapshot(DOC);
        let c = s.choose(utc("2026-11-22T10:00:00Z"), None, None);
        assert_eq!(
            std::str::from_utf8(&c.rendered.body).unwrap(),
            r#"{"userMessage":"Работы","ticket":42,"expires":"2026-11-22T14:00:00+03:00","helpUrl":"https://help.example/x?a=1#b"}"#
        );
        assert!(c.localized);
        assert_eq!(c.seconds_to_change, Some(3600));
    }

    #[test]
    fn language_variants_have_their_own_etag() {
        let s = snapshot(DOC);
        let now = utc("2026-11-22T10:00:00Z");
        let ru = s.choose(now, None, Some("ru"));
        let kk = s.choose(now, None, Some("kk-KZ"));
        assert!(
            std::str::from_utf8(&kk.rendered.body)
                .unwrap()
                .starts_with(r#"{"userMessage":"Жұмыс""#)
        );
        assert_ne!(ru.rendered.etag, kk.rendered.etag);
        assert_eq!(ru.rendered.etag.len(), 34);
    }

    #[test]
    fn expired_gives_the_empty_message() {
        let s = snapshot(DOC);
        let c = s.choose(utc("2026-11-22T11:00:00Z"), None, Some("kk"));
        assert_eq!(&c.rendered.body[..], INACTIVE_BODY.as_bytes());
        assert_eq!(c.state, State::Expired);
        assert!(!c.localized);
        assert_eq!(c.seconds_to_change, None);
    }

    #[test]
    fn seconds_to_change_rounds_down() {
        let s = snapshot(DOC);
        let c = s.choose(utc("2026-11-22T10:59:59.5Z"), None, None);
        assert_eq!(c.seconds_to_change, Some(0));
    }
}
