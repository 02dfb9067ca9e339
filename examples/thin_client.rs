//! Emulates a thin client's launch of one base from a base list, and what its error dialog
//! shows when the launch fails.
//!
//! Run: `cargo run --example thin_client -- --v8i FILE --base NAME|ID --service URL [--ca PEM]`
//!
//! It reads the base from the `*.v8i` list with v8help's own reader, tries its connection
//! (`Srvr` host:port over TCP, `ws` URL over HTTP(S), `File` folder on disk) with a short
//! timeout, and on failure asks the startup error service (`--service`, as an infobase names
//! it) for the message, as the platform does after a failed login: a POST with the error
//! details and the user's language. It then prints what the dialog would show — the system
//! error, the base's `StartupErrorHelpText`, the administrators' `userMessage`, and
//! `StartupErrorHelpURL` as the "Need help" link — and exits 1. A successful connection
//! prints so and exits 0; a base that is not in the list exits 2.

use std::fmt::Write as _;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use v8help::v8i::{self, ConnectKind};

/// The emulator's command line.
#[derive(Debug, Clone, Parser)]
#[command(about = "Emulate a thin client's failed launch and its error dialog")]
pub struct Args {
    /// The base list (*.v8i).
    #[arg(long, value_name = "FILE")]
    pub v8i: PathBuf,
    /// The base: its name (compared without case, as the platform does) or its ID.
    #[arg(long, value_name = "NAME|ID")]
    pub base: String,
    /// The startup error service address, e.g. https://help.example.ru/message.json.
    #[arg(long, value_name = "URL")]
    pub service: String,
    /// CA certificate (PEM) to trust for HTTPS, instead of the system's.
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// The user's language [default: from LANG].
    #[arg(long, value_name = "TAG")]
    pub lang: Option<String>,
    /// How long each connection attempt may take, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
}

/// What the launch came to: the exit code and the text printed.
#[derive(Debug)]
pub struct Outcome {
    pub code: u8,
    pub output: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("thin_client: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(launch(&args));
    print!("{}", outcome.output);
    ExitCode::from(outcome.code)
}

/// Tries the base's connection and, when it fails, builds the error dialog.
pub async fn launch(args: &Args) -> Outcome {
    let bytes = match std::fs::read(&args.v8i) {
        Ok(b) => b,
        Err(e) => return usage(format!("cannot read {}: {e}", args.v8i.display())),
    };
    let list = v8i::parse(&bytes);
    let wanted = args.base.to_lowercase();
    let Some(base) = list
        .entries()
        .find(|e| e.connect.is_some() && (e.name.to_lowercase() == wanted || e.id == Some(args.base.as_str())))
    else {
        return usage(format!(
            "no base named {:?} (or with that ID) in {}",
            args.base,
            args.v8i.display()
        ));
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let tls = match client_tls(args.ca.as_deref()) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let connect = base.connect_parsed().unwrap_or_else(|| v8i::Connect::parse(""));
    let attempt = match connect.kind() {
        ConnectKind::Server => try_server(connect.get("Srvr").unwrap_or_default(), timeout).await,
        ConnectKind::Web => try_web(connect.get("ws").unwrap_or_default(), &tls, timeout).await,
        ConnectKind::File => try_file(connect.get("File").unwrap_or_default()),
        ConnectKind::Unknown => Err(format!("unknown connection string {:?}", connect.raw())),
    };
    let system_error = match attempt {
        Ok(done) => {
            return Outcome {
                code: 0,
                output: format!("Connected to \"{}\": {done}\n", base.name),
            };
        }
        Err(e) => e,
    };

    let lang = args.lang.clone().unwrap_or_else(lang_from_env);
    let details = serde_json::json!({"infobase": base.name, "error": system_error}).to_string();
    let answer = ask_service(&args.service, &tls, &lang, details, timeout).await;

    let mut out = String::new();
    let _ = writeln!(out, "Cannot start the infobase \"{}\"", base.name);
    let _ = writeln!(out, "  System error:       {system_error}");
    if let Some(text) = base.help_text.filter(|t| !t.is_empty()) {
        let _ = writeln!(out, "  Help:               {text}");
    }
    match answer {
        Ok(message) if message.text.is_empty() => {
            let _ = writeln!(out, "  Administrators:     (no current message)");
        }
        Ok(message) => {
            let _ = writeln!(out, "  Administrators:     {}", message.text);
            if let Some(expires) = message.expires {
                let _ = writeln!(out, "                      (until {expires})");
            }
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "  Administrators:     (the startup error service did not answer: {e})"
            );
        }
    }
    if let Some(url) = base.help_url.filter(|u| !u.is_empty()) {
        let _ = writeln!(out, "  Need help:          {url}");
    }
    Outcome { code: 1, output: out }
}

fn usage(problem: String) -> Outcome {
    Outcome {
        code: 2,
        output: format!("thin_client: {problem}\n"),
    }
}

/// `Srvr="host:port"`, `Srvr="tcp://host"`, or a cluster list `"srv1:1541,srv2"`: the first
/// address that accepts a TCP connection wins (1541 when no port is given).
async fn try_server(srvr: &str, timeout: Duration) -> Result<String, String> {
    if srvr.trim().is_empty() {
        return Err("Srvr is empty".into());
    }
    let mut errors = Vec::new();
    for host in srvr.split(',').map(|h| h.trim().trim_start_matches("tcp://")) {
        let address = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            host.to_string()
        } else {
            format!("{host}:1541")
        };
        let resolved: Vec<_> = match address.to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                errors.push(format!("{address}: {e}"));
                continue;
            }
        };
        for addr in resolved {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => return Ok(format!("TCP connection to {address} succeeded")),
                Ok(Err(e)) => errors.push(format!("cannot connect to {address}: {e}")),
                Err(_) => errors.push(format!("cannot connect to {address}: no answer within {timeout:?}")),
            }
        }
    }
    Err(errors.join("; "))
}

/// A `ws` publication is reachable when its web server answers below 500.
async fn try_web(url: &str, tls: &Arc<rustls::ClientConfig>, timeout: Duration) -> Result<String, String> {
    let request = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("{url}: {e}"))?;
    let response = tokio::time::timeout(timeout, send(request, tls))
        .await
        .map_err(|_| format!("{url}: no answer within {timeout:?}"))?
        .map_err(|e| format!("{url}: {e}"))?;
    if response.0.is_server_error() {
        return Err(format!("{url}: the web server answered {}", response.0));
    }
    Ok(format!("{url} answered {}", response.0))
}

fn try_file(folder: &str) -> Result<String, String> {
    let path = std::path::Path::new(folder).join("1Cv8.1CD");
    match std::fs::metadata(&path) {
        Ok(_) => Ok(format!("{} is there", path.display())),
        Err(e) => Err(format!("cannot open {}: {e}", path.display())),
    }
}

/// The administrators' message as the service gave it.
struct Message {
    text: String,
    expires: Option<String>,
}

async fn ask_service(
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    lang: &str,
    details: String,
    timeout: Duration,
) -> Result<Message, String> {
    let request = http::Request::post(url)
        .header(http::header::ACCEPT_LANGUAGE, lang)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(details)))
        .map_err(|e| format!("{url}: {e}"))?;
    let (status, body) = tokio::time::timeout(timeout, send(request, tls))
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))??;
    if !status.is_success() {
        return Err(format!("status {status}"));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
    Ok(Message {
        text: value["userMessage"].as_str().unwrap_or_default().to_string(),
        expires: value["expires"].as_str().map(str::to_string),
    })
}

/// One request on a fresh connection, HTTP/1.1, TLS for https.
async fn send(
    mut request: http::Request<Full<Bytes>>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(http::StatusCode, Bytes), String> {
    let uri = request.uri().clone();
    let host = uri.host().ok_or_else(|| format!("{uri}: no host"))?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = path.parse().map_err(|e| format!("{uri}: {e}"))?;
    request.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_str(&host).map_err(|e| format!("{uri}: {e}"))?,
    );
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let response = if https {
        let name =
            ServerName::try_from(host.trim_matches(['[', ']']).to_string()).map_err(|e| format!("{host}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
        exchange(TokioIo::new(stream), request).await?
    } else {
        exchange(TokioIo::new(tcp), request).await?
    };
    Ok(response)
}

async fn exchange<I>(io: I, request: http::Request<Full<Bytes>>) -> Result<(http::StatusCode, Bytes), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// Trust `ca` only, or the system's certificate store.
fn client_tls(ca: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e:?}", path.display()))? {
                let cert = cert.map_err(|e| format!("{}: {e:?}", path.display()))?;
                roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// `ru_RU.UTF-8` → `ru-RU`; `en` when LANG says nothing useful.
fn lang_from_env() -> String {
    std::env::var("LANG")
        .ok()
        .map(|l| l.split(['.', '@']).next().unwrap_or("").replace('_', "-"))
        .filter(|l| !l.is_empty() && l != "C" && l != "POSIX")
        .unwrap_or_else(|| "en".into())
}
