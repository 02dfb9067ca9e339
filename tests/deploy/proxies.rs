//! The reverse-proxy snippets under `deploy/reverse-proxy/`: nginx and Apache run live in
//! front of a real v8help (after `nginx -t` / `apache2 -t` accept the files) and must publish
//! the message and the web client's files unchanged; the IIS rules route the same paths;
//! every snippet agrees on the upstream.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::Binary;
use crate::common::binary::Running;
use crate::common::client::{Resp, blocking_http_get, blocking_https_get, free_port};
use crate::common::pki::Pki;
use crate::common::tools::Suite;
use crate::common::wait::wait_blocking;
use crate::files::*;

/// nginx in front of v8help.
const NGINX: Suite = Suite {
    name: "proxies::nginx",
    test: "deploy",
    packages: "nginx",
};

/// Apache in front of v8help.
const APACHE: Suite = Suite {
    name: "proxies::apache",
    test: "deploy",
    packages: "apache2",
};

/// Where the reverse-proxy snippets send requests: v8help's plain HTTP listener.
const UPSTREAM: &str = "127.0.0.1:8080";

/// Replaces every match of `pattern` in `text`, asserting there is exactly `count` of them
/// (so that a changed example fails loudly instead of testing something else).
fn replace(text: &str, pattern: &str, with: &str, count: usize, file: &str) -> String {
    let re = regex::Regex::new(pattern).expect("regex");
    let found = re.find_iter(text).count();
    assert_eq!(
        found, count,
        "{file}: expected {count} match(es) of {pattern}, found {found}"
    );
    re.replace_all(text, regex::NoExpand(with)).into_owned()
}

/// [`replace`] for each (pattern, replacement) in turn, each pattern found exactly once.
fn rewrite(text: &str, file: &str, edits: &[(&str, String)]) -> String {
    edits.iter().fold(text.to_string(), |text, (pattern, with)| {
        replace(&text, pattern, with, 1, file)
    })
}

/// A scratch directory for a web server (writable and traversable by its worker user), a
/// certificate for `localhost`, and a message v8help serves in two languages.
struct Scratch {
    dir: tempfile::TempDir,
    cert: Pki,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let cert = Pki::new();
        std::fs::write(dir.path().join("cert.pem"), &cert.cert_pem).expect("cert");
        std::fs::write(dir.path().join("key.pem"), &cert.key_pem).expect("key");
        Scratch { dir, cert }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts v8help with a live message in English and Kazakh and plain HTTP on loopback.
    fn start_v8help(&self) -> Binary {
        let message = self.path("message.json");
        let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        std::fs::write(
            &message,
            format!(
                r#"{{"userMessage": "Maintenance until 14:00", "userMessages": {{"kk": "Жұмыстар 14:00-ге дейін"}}, "expires": "{expires}"}}"#
            ),
        )
        .expect("message");
        let server = Binary::serve_env(&[
            ("V8HELP_LISTEN".into(), "127.0.0.1:0".into()),
            ("V8HELP_HTTP_LISTEN".into(), "127.0.0.1:0".into()),
            ("V8HELP_MESSAGE".into(), message.to_string_lossy().into_owned()),
        ]);
        assert!(server.http.is_some(), "v8help reported no plain HTTP address");
        server
    }
}

/// What every proxy must do for the message: the paths of the publication reach v8help's
/// paths, with the language and cache headers intact; metrics stay private.
fn check_published(front: SocketAddr, cert: &Pki, proxy: &str) {
    let get = |path: &str, headers: &[(&str, &str)]| blocking_https_get(front, &cert.ca, "localhost", path, headers);
    for path in ["/v8help/", "/v8help/message.json", "/v8help/message.json?lang=kk"] {
        let r = get(path, &[("Accept-Language", "kk-KZ, ru;q=0.8")]);
        assert_eq!(r.status, 200, "{proxy} {path}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.json()["userMessage"],
            "Жұмыстар 14:00-ге дейін",
            "{proxy} {path}: the Kazakh text (Accept-Language must reach v8help)"
        );
        for header in ["etag", "cache-control", "vary", "access-control-allow-origin"] {
            assert!(
                r.header(header).is_some(),
                "{proxy} {path}: v8help's {header} header was lost"
            );
        }
        assert!(
            r.header("cache-control").is_some_and(|v| v.contains("max-age=")),
            "{proxy} {path}: Cache-Control"
        );
    }
    let english = get("/v8help/message.json", &[("Accept-Language", "en")]);
    assert_eq!(
        english.json()["userMessage"],
        "Maintenance until 14:00",
        "{proxy}: default text for en"
    );

    let health = get("/v8help/healthz", &[]);
    assert_eq!(health.status, 200, "{proxy} /v8help/healthz");
    assert_eq!(health.json()["state"], "active", "{proxy} /v8help/healthz state");

    let metrics = get("/v8help/metrics", &[]);
    assert!(
        matches!(metrics.status, 403 | 404) && serde_json::from_slice::<Value>(&metrics.body).is_err(),
        "{proxy}: /v8help/metrics must be refused by the proxy, got {} {}",
        metrics.status,
        String::from_utf8_lossy(&metrics.body)
    );
    let bare = get("/v8help", &[]);
    assert!(
        bare.status == 301 && bare.header("location").is_some_and(|l| l.ends_with("/v8help/")),
        "{proxy}: /v8help must redirect to /v8help/, got {} {:?}",
        bare.status,
        bare.header("location")
    );
}

/// v8help's response headers a proxy must pass on unchanged (absent stays absent).
const PASSED_THROUGH: &[&str] = &[
    "content-type",
    "x-content-type-options",
    "cache-control",
    "etag",
    "vary",
    "access-control-allow-origin",
    "content-security-policy",
    "referrer-policy",
    "service-worker-allowed",
];

/// `name` resolved the way a browser resolves a relative URL against `script`'s address:
/// in the script's folder. The web files use only plain relative names (so that a proxy may
/// put them under any prefix); anything else would need a URL parser, and fails here.
fn beside(script: &str, name: &str) -> String {
    let name = name.strip_prefix("./").unwrap_or(name);
    assert!(
        !name.is_empty() && !name.starts_with('/') && !name.contains(':') && !name.contains(".."),
        "{script} loads {name:?}, which is not a plain name relative to its folder"
    );
    let folder = &script[..=script.rfind('/').expect("an absolute path")];
    format!("{folder}{name}")
}

/// The worker `register.js` registers: `new URL('<name>', source)`, relative to the script's
/// own address.
fn registered_worker(register_js: &str) -> String {
    let re = regex::Regex::new(r"new URL\('([^']+)', source\)").expect("regex");
    let caps = re
        .captures(register_js)
        .expect("register.js makes the worker's URL with new URL('…', source); update this reader if that changed");
    caps[1].to_string()
}

/// The files `sw.js` loads from its own folder: its precache list (`const ASSETS = [...]`) and
/// what it imports (`importScripts`), read from its text so that a file added to either is
/// checked too.
fn worker_files(sw_js: &str) -> Vec<String> {
    let list = sw_js
        .lines()
        .find_map(|l| l.strip_prefix("const ASSETS = ["))
        .expect("sw.js has its precache list on a line `const ASSETS = [...]`; update this reader if that changed");
    let mut files: Vec<String> = list
        .split(']')
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().trim_matches('\'').to_string())
        .collect();
    assert!(
        files.contains(&"help".to_string()),
        "sw.js precaches no help page: {files:?}"
    );
    // The first quoted name on each line that calls importScripts.
    for name in sw_js
        .lines()
        .filter(|l| l.starts_with("importScripts("))
        .filter_map(|l| l.split('\'').nth(1))
    {
        if !files.iter().any(|f| f == name) {
            files.push(name.to_string());
        }
    }
    files
}

/// `web/<name>` in this repository.
fn web_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// What every proxy must do for the web client: the files reach the browser the way it asks
/// for them — the page's `/v8help/register.js`, the `sw.js` that registers from its own folder
/// (with `Service-Worker-Allowed: /`, so that its scope may be `/`), and every file that
/// `sw.js` precaches or imports from its folder — each answering 200 with v8help's own body
/// and headers. And no `sw.js` or `register.js` at the site root: a worker registered from
/// there looks for its files at the root, its precache fails and it never installs.
fn check_worker_published(p: &Published, proxy: &str) {
    let get = |path: &str| blocking_https_get(p.front, &p.scratch.cert.ca, "localhost", path, &[]);
    let fetch = |path: &str| {
        let r = get(path);
        assert_eq!(
            r.status,
            200,
            "{proxy} {path}: the web client needs it: {}",
            String::from_utf8_lossy(&r.body)
        );
        let back = path.strip_prefix("/v8help").expect("published under /v8help/");
        let own = blocking_http_get(p.direct, back);
        assert_eq!(own.status, 200, "v8help {back}");
        assert!(r.body == own.body, "{proxy} {path}: not the body of v8help's {back}");
        for header in PASSED_THROUGH {
            assert_eq!(
                r.header(header),
                own.header(header),
                "{proxy} {path}: v8help's {header} header must pass through unchanged"
            );
        }
        r
    };
    let text = |r: &Resp| String::from_utf8_lossy(&r.body).into_owned();

    let register = "/v8help/register.js";
    let sw = beside(register, &registered_worker(&text(&fetch(register))));
    let worker = fetch(&sw);
    assert_eq!(
        worker.header("service-worker-allowed"),
        Some("/"),
        "{proxy} {sw}: Service-Worker-Allowed: / lets the worker in /v8help/ take scope /"
    );
    let files = worker_files(&text(&worker));
    for name in &files {
        fetch(&beside(&sw, name));
    }
    eprintln!("{proxy}: {register}, {sw} and what it loads ({files:?}) are published");

    for path in ["/sw.js", "/register.js"] {
        let r = get(path);
        let v8help_error = serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| v.get("path").is_some());
        assert!(
            r.status != 200 && r.header("service-worker-allowed").is_none() && !v8help_error,
            "{proxy}: {path} at the site root must not reach v8help (the worker lives in /v8help/), \
             got {} {:?} {:.200}",
            r.status,
            r.headers,
            String::from_utf8_lossy(&r.body)
        );
    }
}

/// v8help running behind a web server started from the example files.
struct Published {
    /// The web server's HTTPS address.
    front: SocketAddr,
    /// v8help's own plain HTTP address, to compare with what the web server passes on.
    direct: SocketAddr,
    // Dropped in this order: the web server, v8help, then their files.
    _proxy: Running,
    _v8help: Binary,
    scratch: Scratch,
}

impl Published {
    /// Starts the web server `proxy` (`name` in messages) in front of `v8help` and waits
    /// until it listens on `https_port`.
    fn start(
        mut proxy: Command,
        name: &'static str,
        https_port: u16,
        direct: SocketAddr,
        v8help: Binary,
        scratch: Scratch,
    ) -> Published {
        let child = proxy
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let proxy = Running { child, name };
        let front = SocketAddr::from(([127, 0, 0, 1], https_port));
        wait_blocking(Duration::from_secs(10), &format!("{name} to listen"), || {
            std::net::TcpStream::connect(front).ok()
        });
        Published {
            front,
            direct,
            _proxy: proxy,
            _v8help: v8help,
            scratch,
        }
    }
}

/// A complete nginx.conf around `example-site.conf`, the upstream pointed at `v8help`.
fn nginx_conf(s: &Scratch, v8help: SocketAddr, https_port: u16) -> PathBuf {
    let file = "reverse-proxy/nginx/example-site.conf";
    let site = rewrite(
        &read(file),
        file,
        &[
            (r"listen 80;", format!("listen 127.0.0.1:{};", free_port())),
            (r"listen 443 ", format!("listen 127.0.0.1:{https_port} ")),
            (
                r"ssl_certificate /\S+;",
                format!("ssl_certificate {};", s.path("cert.pem").display()),
            ),
            (
                r"ssl_certificate_key /\S+;",
                format!("ssl_certificate_key {};", s.path("key.pem").display()),
            ),
            (
                r"include \S*/v8help-locations\.conf;",
                format!(
                    "include {};",
                    deploy_path("reverse-proxy/nginx/v8help-locations.conf").display()
                ),
            ),
        ],
    );
    let upstream = replace(
        &read("reverse-proxy/nginx/v8help-upstream.conf"),
        &regex::escape(&format!("server {UPSTREAM};")),
        &format!("server {v8help};"),
        1,
        "v8help-upstream.conf",
    );
    let d = s.dir.path().display();
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log stderr warn;\ndaemon off;\nworker_processes 1;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/client_body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         {upstream}\n{site}\n}}\n"
    );
    let path = s.path("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    path
}

/// v8help behind nginx running `example-site.conf` (after `nginx -t` accepts it), or `None`
/// when nginx is absent and the suite is skipped.
fn publish_with_nginx() -> Option<Published> {
    let nginx = NGINX.tool("nginx")?;
    let s = Scratch::new();
    let server = s.start_v8help();
    let direct = server.http.expect("http");
    let https_port = free_port();
    let conf = nginx_conf(&s, direct, https_port);
    let out = Command::new(&nginx)
        .arg("-t")
        .arg("-p")
        .arg(s.dir.path())
        .arg("-c")
        .arg(&conf)
        .args(["-e", "stderr"])
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t rejects deploy/reverse-proxy/nginx:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut nginx = Command::new(&nginx);
    nginx
        .arg("-p")
        .arg(s.dir.path())
        .arg("-c")
        .arg(&conf)
        .args(["-e", "stderr"]);
    Some(Published::start(nginx, "nginx", https_port, direct, server, s))
}

#[test]
fn nginx_accepts_the_example_site_and_publishes_v8help_through_it() {
    let Some(p) = publish_with_nginx() else {
        return;
    };
    check_published(p.front, &p.scratch.cert, "nginx");
}

#[test]
fn nginx_publishes_sw_js_beside_every_file_it_precaches_and_not_at_the_root() {
    let Some(p) = publish_with_nginx() else {
        return;
    };
    check_worker_published(&p, "nginx");
}

/// v8help behind Apache running `example-vhost.conf` with `v8help.conf` (after `apache2 -t`
/// accepts them), or `None` when Apache is absent and the suite is skipped.
fn publish_with_apache() -> Option<Published> {
    let apache = APACHE.tool("apache2")?;
    let modules = [
        "/usr/lib/apache2/modules",
        "/usr/lib64/httpd/modules",
        "/usr/libexec/apache2",
    ]
    .into_iter()
    .map(Path::new)
    .find(|d| d.join("mod_proxy.so").is_file())
    .expect("the Apache modules directory (mod_proxy.so)");
    let s = Scratch::new();
    let server = s.start_v8help();
    let direct = server.http.expect("http");
    let https_port = free_port();
    // Every rule that reaches v8help (ProxyPass and ProxyPassReverse at least) is pointed at
    // this one, so a rule added for another path is served, and judged, like the others.
    let conf = read("reverse-proxy/apache/v8help.conf");
    let upstream = regex::escape(&format!("http://{UPSTREAM}/"));
    let uses = regex::Regex::new(&upstream).expect("regex").find_iter(&conf).count();
    assert!(
        uses >= 2,
        "apache/v8help.conf: ProxyPass and ProxyPassReverse name http://{UPSTREAM}/"
    );
    let snippet = replace(
        &conf,
        &upstream,
        &format!("http://{direct}/"),
        uses,
        "apache/v8help.conf",
    );
    std::fs::write(s.path("v8help.conf"), snippet).expect("snippet");
    let file = "apache/example-vhost.conf";
    let vhost = rewrite(
        &read(&format!("reverse-proxy/{file}")),
        file,
        &[
            (r"<VirtualHost \*:443>", format!("<VirtualHost 127.0.0.1:{https_port}>")),
            (
                r"SSLCertificateFile /\S+",
                format!("SSLCertificateFile {}", s.path("cert.pem").display()),
            ),
            (
                r"SSLCertificateKeyFile /\S+",
                format!("SSLCertificateKeyFile {}", s.path("key.pem").display()),
            ),
            (
                r"Include \S*/v8help\.conf",
                format!("Include {}", s.path("v8help.conf").display()),
            ),
        ],
    );
    let d = s.dir.path().display();
    let m = modules.display();
    let load: String = [
        ("mpm_event", "mod_mpm_event"),
        ("authz_core", "mod_authz_core"),
        ("alias", "mod_alias"),
        ("headers", "mod_headers"),
        ("proxy", "mod_proxy"),
        ("proxy_http", "mod_proxy_http"),
        ("ssl", "mod_ssl"),
        ("expires", "mod_expires"),
    ]
    .iter()
    .map(|(name, so)| format!("LoadModule {name}_module {m}/{so}.so\n"))
    .collect();
    let conf = format!(
        "ServerRoot {d}\nListen 127.0.0.1:{https_port}\n{load}PidFile {d}/httpd.pid\nDefaultRuntimeDir {d}\n\
         ErrorLog /proc/self/fd/2\nLogLevel error authz_core:crit\nServerName localhost\nUser nobody\nGroup nogroup\n{vhost}\n"
    );
    let conf_path = s.path("httpd.conf");
    std::fs::write(&conf_path, conf).expect("httpd.conf");
    let out = Command::new(&apache)
        .arg("-t")
        .arg("-f")
        .arg(&conf_path)
        .output()
        .expect("run apache2 -t");
    assert!(
        out.status.success(),
        "apache2 -t rejects deploy/reverse-proxy/apache:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // -X: one process in the foreground, ended with the test.
    let mut apache = Command::new(&apache);
    apache.arg("-X").arg("-f").arg(&conf_path);
    Some(Published::start(apache, "apache2", https_port, direct, server, s))
}

#[test]
fn apache_accepts_the_example_vhost_and_publishes_v8help_through_it() {
    let Some(p) = publish_with_apache() else {
        return;
    };
    check_published(p.front, &p.scratch.cert, "apache2");
}

#[test]
fn apache_publishes_sw_js_beside_every_file_it_precaches_and_not_at_the_root() {
    let Some(p) = publish_with_apache() else {
        return;
    };
    check_worker_published(&p, "apache2");
}

/// What IIS URL Rewrite does with a request path: the first matching rule decides.
#[derive(Debug, PartialEq)]
enum IisOutcome {
    Rewrite(String),
    Redirect(String),
    Status(u16),
    Untouched,
}

/// Runs the web.config rules over `path` (URL Rewrite matches the path without its leading
/// `/`; `{R:n}` are the match groups; `{HTTPS}` is given).
fn iis_route(doc: &roxmltree::Document, path: &str, https: bool) -> IisOutcome {
    let rules = doc.descendants().filter(|n| n.has_tag_name("rule"));
    for rule in rules {
        let name = rule.attribute("name").unwrap_or("?");
        let pattern = rule
            .children()
            .find(|n| n.has_tag_name("match"))
            .and_then(|m| m.attribute("url"))
            .unwrap_or_else(|| panic!("rule {name} has no <match url>"));
        let re = regex::Regex::new(&format!("(?i){pattern}")).unwrap_or_else(|e| panic!("rule {name}: {e}"));
        let Some(caps) = re.captures(path.trim_start_matches('/')) else {
            continue;
        };
        let conditions_hold = rule.descendants().filter(|n| n.has_tag_name("add")).all(|c| {
            let input = c.attribute("input").expect("condition input");
            assert_eq!(
                input, "{HTTPS}",
                "rule {name}: the simulation knows only {{HTTPS}} conditions"
            );
            let value = if https { "on" } else { "off" };
            regex::Regex::new(&format!("(?i){}", c.attribute("pattern").expect("pattern")))
                .expect("condition regex")
                .is_match(value)
        });
        if !conditions_hold {
            continue;
        }
        assert_eq!(
            rule.attribute("stopProcessing"),
            Some("true"),
            "rule {name} must stop processing"
        );
        let action = rule
            .children()
            .find(|n| n.has_tag_name("action"))
            .unwrap_or_else(|| panic!("rule {name} has no action"));
        let mut url = action.attribute("url").unwrap_or_default().to_string();
        for (i, g) in caps.iter().enumerate() {
            url = url.replace(&format!("{{R:{i}}}"), g.map_or("", |m| m.as_str()));
        }
        return match action.attribute("type") {
            Some("Rewrite") => IisOutcome::Rewrite(url),
            Some("Redirect") => IisOutcome::Redirect(url),
            Some("CustomResponse") => IisOutcome::Status(
                action
                    .attribute("statusCode")
                    .and_then(|s| s.parse().ok())
                    .expect("statusCode"),
            ),
            other => panic!("rule {name}: unexpected action type {other:?}"),
        };
    }
    IisOutcome::Untouched
}

#[test]
fn iis_rules_route_the_same_paths_as_nginx_and_apache() {
    let text = read("reverse-proxy/iis/web.config");
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("web.config is not well-formed XML: {e}"));
    assert!(
        doc.root_element().has_tag_name("configuration"),
        "web.config's root is <configuration>"
    );
    let up = format!("http://{UPSTREAM}");
    use IisOutcome::*;
    let mut cases = vec![
        ("/v8help/".to_string(), true, Rewrite(format!("{up}/"))),
        (
            "/v8help/message.json".into(),
            true,
            Rewrite(format!("{up}/message.json")),
        ),
        ("/v8help/healthz".into(), true, Rewrite(format!("{up}/healthz"))),
        ("/v8help/metrics".into(), true, Status(404)),
        ("/v8help".into(), true, Redirect("/v8help/".into())),
        (
            "/v8help/message.json".into(),
            false,
            Redirect("https://{HTTP_HOST}{REQUEST_URI}".into()),
        ),
        (
            "/v8help/sw.js".into(),
            false,
            Redirect("https://{HTTP_HOST}{REQUEST_URI}".into()),
        ),
        // The worker lives in /v8help/ only (its files are relative to it): nothing at the root.
        ("/sw.js".into(), true, Untouched),
        ("/register.js".into(), true, Untouched),
        ("/sw.js".into(), false, Untouched),
        // The publication itself, and look-alikes, are left alone.
        ("/erp/ru_RU/".into(), true, Untouched),
        ("/erp/sw.js".into(), true, Untouched),
        ("/v8helpdesk/".into(), true, Untouched),
    ];
    // The web client's files as the browser asks for them (the same reading of register.js
    // and sw.js as the live nginx and Apache checks, here from web/).
    let register = "/v8help/register.js";
    let sw = beside(register, &registered_worker(&web_file("register.js")));
    let mut worker_needs = vec![register.to_string(), sw.clone()];
    worker_needs.extend(worker_files(&web_file("sw.js")).iter().map(|name| beside(&sw, name)));
    assert!(worker_needs.len() >= 6, "{worker_needs:?}");
    for path in worker_needs {
        let back = path.strip_prefix("/v8help").expect("under /v8help/").to_string();
        cases.push((path, true, Rewrite(format!("{up}{back}"))));
    }
    for (path, https, want) in cases {
        assert_eq!(
            iis_route(&doc, &path, https),
            want,
            "web.config routes {path} (https: {https})"
        );
    }
}

#[test]
fn every_proxy_snippet_and_the_env_example_agree_on_the_upstream() {
    let env = read("systemd/v8help.env");
    assert!(
        env.contains(&format!("V8HELP_HTTP_LISTEN={UPSTREAM}")),
        "v8help.env shows V8HELP_HTTP_LISTEN={UPSTREAM}, the address the proxy snippets use"
    );
    for file in [
        "reverse-proxy/nginx/v8help-upstream.conf",
        "reverse-proxy/apache/v8help.conf",
        "reverse-proxy/iis/web.config",
    ] {
        assert!(read(file).contains(UPSTREAM), "{file} does not proxy to {UPSTREAM}");
    }
    let readme = read("reverse-proxy/README.md");
    for needle in [
        "Service-Worker-Allowed: /",
        "scope",
        "same origin",
        "/v8help/sw.js",
        "/v8help/register.js",
    ] {
        assert!(
            readme.contains(needle),
            "deploy/reverse-proxy/README.md should explain `{needle}`"
        );
    }
    // The README's curl checks: the worker is asked for where the snippets publish it, and
    // the site root only to show that nothing of v8help is there.
    let url = regex::Regex::new(r#"https://erp\.example\.com(/[^\s"']*)"#).expect("regex");
    let asked: Vec<(&str, &str)> = readme
        .lines()
        .filter(|l| l.trim_start().starts_with("curl "))
        .flat_map(|l| {
            url.captures_iter(l)
                .map(move |c| (c.get(1).map_or("", |m| m.as_str()), l))
        })
        .collect();
    assert!(
        asked.iter().any(|(path, _)| *path == "/v8help/sw.js"),
        "README checks /v8help/sw.js: {asked:?}"
    );
    for (path, line) in asked {
        assert!(
            path.starts_with("/v8help/") || (path == "/sw.js" && line.contains("grep -i service-worker-allowed")),
            "deploy/reverse-proxy/README.md checks {path}, which the snippets do not publish: {line}"
        );
    }
}
