//! Clients for the tests: an async hyper client over real TLS (HTTP/1.1 or HTTP/2 by ALPN)
//! trusting only the test CA, and a blocking HTTP/1.0 client (plain or TLS, any SNI name)
//! for the deployment suites, which drive web servers from plain `#[test]`s and need
//! answers that are never chunked. Both give a [`Resp`].

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("visible ASCII header value"))
    }
}

/// A TLS client config trusting only `ca`, offering `h2` or `http/1.1`.
pub fn client_config(ca: &CertificateDer<'static>, h2: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![if h2 { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
    Arc::new(config)
}

/// Connects and completes the TLS handshake.
pub async fn tls_connect(addr: SocketAddr, ca: &CertificateDer<'static>, h2: bool) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    TlsConnector::from(client_config(ca, h2))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// Sends one request on a fresh TLS connection and reads the whole response.
pub async fn request(addr: SocketAddr, ca: &CertificateDer<'static>, req: Request<Full<Bytes>>, h2: bool) -> Resp {
    let io = TokioIo::new(tls_connect(addr, ca, h2).await);
    let response = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    };
    read(response).await
}

/// Plain-HTTP/1.1 GET on a fresh connection.
pub async fn http_get(addr: SocketAddr, path: &str) -> Resp {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    read(sender.send_request(req).await.unwrap()).await
}

async fn read(response: http::Response<hyper::body::Incoming>) -> Resp {
    let (parts, body) = response.into_parts();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// `GET path` over HTTPS to `addr` as HTTP/1.0 (so the answer is never chunked), trusting
/// only `ca`. `host` is both the SNI name and the Host header.
pub fn blocking_https_get(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let name = ServerName::try_from(host.to_string()).expect("server name");
    let conn = rustls::ClientConnection::new(client_config(ca, false), name).expect("TLS client");
    let mut tls = rustls::StreamOwned::new(conn, connect(addr));
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("send to {addr}: {e}"));
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // Some servers close without close_notify after an HTTP/1.0 answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => panic!("read from {addr}{path}: {e}"),
    }
    parse_response(&raw)
}

/// `GET path` over plain HTTP/1.0 to `addr`.
pub fn blocking_http_get(addr: SocketAddr, path: &str) -> Resp {
    let mut tcp = connect(addr);
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap_or_else(|e| panic!("send to {addr}: {e}"));
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read from {addr}{path}: {e}"));
    parse_response(&raw)
}

fn connect(addr: SocketAddr) -> std::net::TcpStream {
    let tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    tcp
}

/// An HTTP/1.x response as read off the wire (the body is whatever follows the headers).
pub fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = HeaderMap::new();
    for (n, v) in lines.filter_map(|l| l.split_once(':')) {
        let name = HeaderName::from_bytes(n.trim().as_bytes()).unwrap_or_else(|e| panic!("header name {n:?}: {e}"));
        let value = HeaderValue::from_str(v.trim()).unwrap_or_else(|e| panic!("header {n}: {v:?}: {e}"));
        headers.append(name, value);
    }
    Resp {
        status,
        headers,
        body: Bytes::copy_from_slice(&raw[split + 4..]),
    }
}
