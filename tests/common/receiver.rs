//! A local HTTP receiver standing in for Sentry and webhook endpoints: a small hyper server
//! on `127.0.0.1:0` that records every request (with when it came) and answers from a script
//! of responses (then 200), and a reader of Sentry envelopes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// Its path.
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// One scripted answer: status, headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, String);

/// The receiver; stops when dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// Answer given once the script is used up.
    always: Arc<Mutex<Answer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts one answering 200 to everything.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Mutex<VecDeque<Answer>>> = Arc::new(Mutex::new(VecDeque::new()));
        let always = Arc::new(Mutex::new((200, Vec::new(), "{}".to_string())));
        let (r, s, a) = (received.clone(), script.clone(), always.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (r, s, a) = (r.clone(), s.clone(), a.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (r, s, a) = (r.clone(), s.clone(), a.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            r.lock().unwrap().push(Received {
                                at: Instant::now(),
                                path: parts.uri.path().to_string(),
                                headers: parts.headers,
                                body,
                            });
                            let (status, headers, text) = s
                                .lock()
                                .unwrap()
                                .pop_front()
                                .unwrap_or_else(|| a.lock().unwrap().clone());
                            let mut resp = Response::builder().status(status);
                            for (k, v) in headers {
                                resp = resp.header(k, v);
                            }
                            Ok::<_, std::convert::Infallible>(resp.body(Full::new(Bytes::from(text))).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            received,
            script,
            always,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A Sentry DSN whose envelope endpoint is this receiver (project 42, key `public`).
    pub fn dsn(&self) -> String {
        format!("http://public@{}/42", self.addr)
    }

    /// Answers the next requests with these, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    /// Answers every request past the script with this.
    pub fn always(&self, answer: Answer) {
        *self.always.lock().unwrap() = answer;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The requests so far to `path`.
    pub fn to(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == path).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Sentry envelope taken apart: its header and its items (item header, payload).
#[derive(Debug)]
pub struct Envelope {
    /// The first line.
    pub header: Value,
    /// Each item's header and payload, in order.
    pub items: Vec<(Value, Bytes)>,
}

impl Envelope {
    /// Parses an envelope, checking each item's declared length.
    pub fn parse(body: &Bytes) -> Envelope {
        let line_end = |from: usize| {
            body[from..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(body.len(), |p| from + p)
        };
        let end = line_end(0);
        let header = serde_json::from_slice(&body[..end]).expect("a JSON envelope header");
        let mut at = end + 1;
        let mut items = Vec::new();
        while at < body.len() {
            let end = line_end(at);
            let item: Value = serde_json::from_slice(&body[at..end]).expect("a JSON item header");
            let len = item["length"].as_u64().expect("items say their length") as usize;
            let payload = body.slice(end + 1..end + 1 + len);
            at = end + 1 + len;
            if body.get(at) == Some(&b'\n') {
                at += 1;
            }
            items.push((item, payload));
        }
        Envelope { header, items }
    }

    /// The event item as JSON.
    pub fn event(&self) -> Value {
        let (_, payload) = self
            .items
            .iter()
            .find(|(h, _)| h["type"] == "event")
            .expect("an event item");
        serde_json::from_slice(payload).expect("event JSON")
    }

    /// The attachment named `filename`.
    pub fn attachment(&self, filename: &str) -> Option<&Bytes> {
        self.items
            .iter()
            .find(|(h, _)| h["type"] == "attachment" && h["filename"] == filename)
            .map(|(_, p)| p)
    }
}
