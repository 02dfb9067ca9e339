//! Helpers for `tests/deploy.rs`: reading the files under `deploy/`, turning `V8HELP_*`
//! variables into a resolved configuration, running v8help and web servers as child
//! processes, and a small HTTPS client that trusts a certificate made at test time.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use serde::Deserialize;
use serde_json::Value;

/// `deploy/<rel>` in this repository.
pub fn deploy_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(rel)
}

/// The text of `deploy/<rel>`.
pub fn read(rel: &str) -> String {
    let path = deploy_path(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every YAML document of `deploy/<rel>`, as JSON values (so that JSON pointers work).
pub fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("deploy/{rel}: invalid YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// `value[pointer]`, or a panic naming what is missing.
pub fn at<'a>(value: &'a Value, pointer: &str, what: &str) -> &'a Value {
    value
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{what}: {pointer} is missing"))
}

/// `value[pointer]` as a string, or a panic.
pub fn str_at<'a>(value: &'a Value, pointer: &str, what: &str) -> &'a str {
    at(value, pointer, what)
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {pointer} is not a string"))
}

/// A command-line tool a test needs, or `None` (with a note) when `skip_var=1` says the
/// machine is known not to have it. Without the variable a missing tool fails the test.
pub fn tool(name: &str, package: &str, skip_var: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&dirs)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_some() {
        return found;
    }
    if std::env::var(skip_var).as_deref() == Ok("1") {
        eprintln!("SKIPPED: `{name}` is not installed and {skip_var}=1");
        return None;
    }
    panic!(
        "`{name}` is not installed, so this deployment file cannot be checked. \
         Install it (apt-get install -y {package}) or set {skip_var}=1 to skip the check."
    );
}

/// What `v8help serve` knows about one environment variable.
#[derive(Debug, Clone)]
pub struct Setting {
    pub flag: String,
    pub takes_value: bool,
}

/// Every environment variable `v8help serve` reads, from its clap definition.
pub fn serve_env_vars() -> BTreeMap<String, Setting> {
    let cli = v8help::cli::Cli::command();
    let serve = cli
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .expect("v8help has a serve sub-command");
    serve
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_string();
            let flag = format!("--{}", arg.get_long()?);
            Some((
                env,
                Setting {
                    flag,
                    takes_value: arg.get_action().takes_values(),
                },
            ))
        })
        .collect()
}

/// Variables read by the binary itself rather than by `serve`'s flags.
pub const OTHER_ENV_VARS: &[&str] = &["V8HELP_LOG"];

/// Resolves `V8HELP_*` settings the way `v8help serve` would (through its real flag parser
/// and [`v8help::config::ServeConfig::resolve`]), without starting anything.
pub fn resolve_env(vars: &[(String, String)]) -> Result<v8help::config::ServeConfig, String> {
    let known = serve_env_vars();
    let mut argv = vec!["v8help".to_string(), "serve".to_string()];
    for (name, value) in vars {
        if OTHER_ENV_VARS.contains(&name.as_str()) {
            continue;
        }
        let setting = known
            .get(name)
            .ok_or_else(|| format!("{name} is not a setting of v8help serve (known: {known:?})"))?;
        if setting.takes_value {
            argv.push(setting.flag.clone());
            argv.push(value.clone());
        } else if !matches!(
            value.to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off" | "n" | "f"
        ) {
            argv.push(setting.flag.clone());
        }
    }
    let cli = v8help::cli::Cli::try_parse_from(&argv).map_err(|e| format!("{argv:?}: {e}"))?;
    match cli.command {
        v8help::cli::Command::Serve(args) => {
            v8help::config::ServeConfig::resolve(&args).map_err(|e| format!("{argv:?}: {e}"))
        }
        _ => unreachable!("parsed as serve"),
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for a test).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls `check` until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A child process stopped when dropped: SIGTERM first, so that a server's master process
/// takes its workers down with it (SIGKILL would leave them running), SIGKILL after 5 s.
pub struct Running {
    pub child: std::process::Child,
    pub name: &'static str,
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let exited = wait_for(Duration::from_secs(5), || self.child.try_wait().ok().flatten());
        if exited.is_none() {
            eprintln!("{} did not stop on SIGTERM within 5 s; killing it", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running `v8help serve` and the addresses it reported.
pub struct V8help {
    pub process: Running,
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
}

/// Starts the built binary with `vars` as its only `V8HELP_*` environment and waits for its
/// "listening" log line (stderr is echoed into the test output).
pub fn start_v8help(vars: &[(String, String)]) -> V8help {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_v8help"));
    cmd.arg("serve");
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("V8HELP_")) {
        cmd.env_remove(name);
    }
    // No error-report database in the working tree unless a test asks for one.
    cmd.env("V8HELP_REPORTS_DB", "off");
    cmd.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start v8help");
    let stderr = child.stderr.take().expect("piped stderr");
    let process = Running { child, name: "v8help" };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[v8help] {line}");
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let addr = regex::Regex::new(r"(https?)://([0-9.]+:[0-9]+)").expect("regex");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("v8help did not report listening within 15 s (vars {vars:?})"));
        if !line.contains("v8help listening on") {
            continue;
        }
        let mut https = None;
        let mut http = None;
        for c in addr.captures_iter(&line) {
            let a: SocketAddr = c[2].parse().expect("address in the log line");
            match &c[1] {
                "https" => https = Some(a),
                _ => http = Some(a),
            }
        }
        return V8help {
            process,
            https: https.expect("https address in the log line"),
            http,
        };
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1, made for this test run.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: rustls_pki_types::CertificateDer<'static>,
}

pub fn test_cert() -> TestCert {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("generate a test certificate");
    TestCert {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
        der: certified.cert.der().clone(),
    }
}

/// One HTTP response, header names in lower case.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// `GET path` over HTTPS to `addr`, trusting only `trust`, as HTTP/1.0 (so the answer is
/// never chunked). `host` is both the SNI name and the Host header.
pub fn https_get(addr: SocketAddr, trust: &TestCert, host: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.der.clone()).expect("trust the test certificate");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(host.to_string()).expect("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client");
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
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

/// `GET path` over plain HTTP/1.0 to `addr`: v8help's loopback listener asked directly, to
/// compare with what a proxy in front of it passes on.
pub fn http_get(addr: SocketAddr, path: &str) -> Response {
    let mut tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap_or_else(|e| panic!("send to {addr}: {e}"));
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read from {addr}{path}: {e}"));
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
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
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}
