//! The web client's offline help: the help page, the service worker that shows it when the
//! web publication cannot be reached, and the script a publication includes to register
//! that worker.
//!
//! The files live in `web/` and are embedded in the binary. Three of them depend on the
//! configuration and are filled in when served: the help page carries the message service
//! URL (`--message-service`) in a `<meta>` tag and that service's origin in its
//! Content-Security-Policy, and `sw.js` carries the same URL and the build's [`version`].
//! Everything else is served as embedded. See `docs/web-client.md` for how a publication
//! puts these paths under its own origin.

use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};

use super::routes::Body;
use crate::config::{MessageService, ServeConfig};

/// The placeholder in `web/sw.js` that is replaced by the worker's configuration.
const SW_CONFIG_PLACEHOLDER: &str = "/*{{CONFIG}}*/ { version: 'unrendered', messageService: '' }";
/// The placeholder in `web/help.html` that is replaced by the message service URL.
const HELP_SERVICE_PLACEHOLDER: &str = "{{MESSAGE_SERVICE}}";

const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const CSS: HeaderValue = HeaderValue::from_static("text/css; charset=utf-8");
const JS: HeaderValue = HeaderValue::from_static("text/javascript; charset=utf-8");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const NO_REFERRER: HeaderValue = HeaderValue::from_static("no-referrer");
const ALLOW: HeaderValue = HeaderValue::from_static("GET, HEAD, OPTIONS");
const SERVICE_WORKER_ALLOWED: HeaderName = HeaderName::from_static("service-worker-allowed");

/// One embedded file and the path it is served at.
#[derive(Debug)]
struct Asset {
    path: &'static str,
    body: &'static str,
    kind: Kind,
}

/// What a file is, which decides its headers and whether it is filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The help page: filled in, strict CSP.
    Help,
    /// The check page: strict CSP.
    Page,
    Style,
    Script,
    /// `sw.js`: filled in, `Service-Worker-Allowed: /`.
    Worker,
}

/// One entry of [`ASSETS`]: the path it is served at, its file in `web/`, its kind.
macro_rules! asset {
    ($path:literal, $file:literal, $kind:ident) => {
        Asset {
            path: $path,
            body: include_str!(concat!("../../web/", $file)),
            kind: Kind::$kind,
        }
    };
}

/// Every file of `web/`, by the path it is served at.
const ASSETS: &[Asset] = &[
    asset!("/help", "help.html", Help),
    asset!("/help.css", "help.css", Style),
    asset!("/message.js", "message.js", Script),
    asset!("/help.js", "help.js", Script),
    asset!("/sw.js", "sw.js", Worker),
    asset!("/register.js", "register.js", Script),
    asset!("/demo", "demo.html", Page),
    asset!("/demo.js", "demo.js", Script),
];

/// The build's web version: the crate version and the first 48 bits of a SHA-256 over every
/// embedded web file. The service worker names its cache after it, so a build whose files
/// differ in any byte installs a new worker and replaces the old cache.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        for asset in ASSETS {
            hash.update(asset.path.as_bytes());
            hash.update((asset.body.len() as u64).to_le_bytes());
            hash.update(asset.body.as_bytes());
        }
        let digest = hash.finalize();
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", env!("CARGO_PKG_VERSION"))
    })
}

/// The web files (`/help`, `/sw.js`, `/register.js`, their assets and the `/demo` check
/// page) rendered for the service's own root: the message service filled in and the
/// policies made header values once, when the settings load, so that answering one only
/// clones `Bytes` and header values.
#[derive(Debug)]
pub(crate) struct WebAssets {
    files: Vec<Rendered>,
}

/// One web file as it is answered.
#[derive(Debug)]
struct Rendered {
    asset: &'static Asset,
    body: Bytes,
    /// The page's Content-Security-Policy (HTML pages only).
    csp: Option<HeaderValue>,
}

impl WebAssets {
    /// Renders every web file for `config`'s message service.
    pub(crate) fn new(config: &ServeConfig) -> WebAssets {
        WebAssets {
            files: ASSETS.iter().map(|asset| render(asset, config, None)).collect(),
        }
    }

    /// Answers a web path; `None` for any other path.
    pub(crate) fn route(&self, method: &Method, path: &str) -> Option<Response<Body>> {
        let file = self.files.iter().find(|f| f.asset.path == path)?;
        Some(answer(method, file))
    }
}

/// The same files under `/NAME/` (`path` without that prefix): the help page and the
/// service worker there ask base NAME's message. Rendered when asked (bases come and go
/// with the messages directory).
pub(crate) fn route_for_base(method: &Method, path: &str, config: &ServeConfig, base: &str) -> Option<Response<Body>> {
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    Some(answer(method, &render(asset, config, Some(base))))
}

/// The message service of base `base`'s help page and worker: with `--message-service URL`,
/// `NAME/message.json` beside it (`https://help.example/message.json` →
/// `https://help.example/erp/message.json`); without it, empty (the page and worker then
/// ask the `message.json` of their own folder, which is `/NAME/message.json`).
pub(crate) fn base_message_service(service: Option<&str>, base: &str) -> String {
    let Some(url) = service else {
        return String::new();
    };
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let folder = match url[..end].rfind('/') {
        // `https://host` has no path: the folder is the root.
        Some(i) if url[..i].ends_with('/') || url[..i].ends_with(':') => format!("{}/", &url[..end]),
        Some(i) => url[..=i].to_string(),
        None => String::from("/"),
    };
    format!("{folder}{base}/message.json")
}

fn answer(method: &Method, file: &Rendered) -> Response<Body> {
    match *method {
        Method::GET | Method::HEAD => serve(file),
        Method::OPTIONS => {
            let mut r = response(StatusCode::NO_CONTENT, Bytes::new());
            r.headers_mut().insert(header::ALLOW, ALLOW);
            r
        }
        _ => {
            let body = br#"{"error":"method not allowed"}"#;
            let mut r = response(StatusCode::METHOD_NOT_ALLOWED, Bytes::from_static(body));
            let h = r.headers_mut();
            h.insert(header::ALLOW, ALLOW);
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        }
    }
}

/// The help page's Content-Security-Policy: only v8help's own files run, nothing inline,
/// Trusted Types enforced with no policy at all (so no string can reach an HTML sink), and
/// the only other origin reachable is the message service's.
pub(crate) fn help_csp(config: &ServeConfig) -> String {
    csp(config, "'none'")
}

/// The check page's policy: the help page's, except that `register.js` may create its
/// Trusted Types policy `v8help` (registering a worker is a script-URL sink) — what a
/// publication with a strict CSP needs too.
fn check_page_csp(config: &ServeConfig) -> String {
    csp(config, "v8help")
}

fn csp(config: &ServeConfig, trusted_types: &str) -> String {
    let service = config
        .message_service
        .as_ref()
        .and_then(|s| s.origin())
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{service}; base-uri 'self'; form-action 'none'; frame-ancestors 'none'; \
         require-trusted-types-for 'script'; trusted-types {trusted_types}"
    )
}

fn render(asset: &'static Asset, config: &ServeConfig, base: Option<&str>) -> Rendered {
    let for_base;
    let service = match base {
        None => config.message_service.as_ref().map_or("", MessageService::url),
        Some(base) => {
            for_base = base_message_service(config.message_service.as_ref().map(MessageService::url), base);
            &for_base
        }
    };
    let body = match asset.kind {
        Kind::Help => Bytes::from(
            asset
                .body
                .replacen(HELP_SERVICE_PLACEHOLDER, &escape_attribute(service), 1),
        ),
        Kind::Worker => {
            let config = serde_json::json!({ "version": version(), "messageService": service });
            Bytes::from(asset.body.replacen(SW_CONFIG_PLACEHOLDER, &config.to_string(), 1))
        }
        Kind::Page | Kind::Style | Kind::Script => Bytes::from_static(asset.body.as_bytes()),
    };
    let policy = match asset.kind {
        Kind::Help => Some(help_csp(config)),
        Kind::Page => Some(check_page_csp(config)),
        _ => None,
    };
    // The policy is made of fixed text and an origin that was checked to be a header value
    // when the settings were read; if it still is not one, the page is answered with the
    // strictest policy rather than none.
    let csp = policy.map(|p| HeaderValue::from_str(&p).unwrap_or(HeaderValue::from_static("default-src 'none'")));
    Rendered { asset, body, csp }
}

fn serve(file: &Rendered) -> Response<Body> {
    let mut r = response(StatusCode::OK, file.body.clone());
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, NO_CACHE);
    if let Some(csp) = &file.csp {
        h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    }
    match file.asset.kind {
        Kind::Help | Kind::Page => {
            h.insert(header::CONTENT_TYPE, HTML);
            h.insert(header::REFERRER_POLICY, NO_REFERRER);
        }
        Kind::Style => {
            h.insert(header::CONTENT_TYPE, CSS);
        }
        Kind::Script => {
            h.insert(header::CONTENT_TYPE, JS);
        }
        Kind::Worker => {
            h.insert(header::CONTENT_TYPE, JS);
            h.insert(SERVICE_WORKER_ALLOWED, HeaderValue::from_static("/"));
        }
    }
    r
}

fn response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

/// Escapes text for a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn config(service: Option<&str>) -> ServeConfig {
        ServeConfig {
            message_service: service.map(|s| s.parse().unwrap()),
            ..ServeConfig::default()
        }
    }

    fn route(method: &Method, path: &str, config: &ServeConfig) -> Option<Response<Body>> {
        WebAssets::new(config).route(method, path)
    }

    async fn text(r: Response<Body>) -> String {
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn placeholders_are_in_the_embedded_files_once() {
        let find = |p: &str| ASSETS.iter().find(|a| a.path == p).unwrap().body;
        assert_eq!(find("/sw.js").matches(SW_CONFIG_PLACEHOLDER).count(), 1);
        assert_eq!(find("/help").matches(HELP_SERVICE_PLACEHOLDER).count(), 1);
        // sw.js adds <base> after exactly this tag.
        assert_eq!(find("/help").matches("<head>").count(), 1);
    }

    /// The values of `attribute="…"` in `html`.
    fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
        let start = format!(" {attribute}=\"");
        html.match_indices(&start)
            .filter_map(|(i, _)| html[i + start.len()..].split('"').next())
            .collect()
    }

    #[test]
    fn every_file_the_help_page_or_worker_loads_is_served_and_the_page_is_precached() {
        let find = |p: &str| ASSETS.iter().find(|a| a.path == p).map(|a| a.body);
        let sw = find("/sw.js").unwrap();
        let precache_line = sw
            .lines()
            .find(|l| l.starts_with("const ASSETS = ["))
            .expect("sw.js has its precache list");
        let precached: Vec<&str> = precache_line["const ASSETS = [".len()..]
            .split(']')
            .next()
            .unwrap()
            .split(',')
            .map(|name| name.trim().trim_matches('\''))
            .collect();
        assert!(precached.contains(&"help"), "{precached:?}");

        let help = find("/help").unwrap();
        let mut loaded = attribute_values(help, "src");
        loaded.extend(
            attribute_values(help, "href")
                .into_iter()
                .filter(|v| !v.starts_with("data:")),
        );
        assert!(
            loaded.contains(&"message.js") && loaded.contains(&"help.js"),
            "{loaded:?}"
        );
        for name in loaded {
            assert!(
                find(&format!("/{name}")).is_some(),
                "help.html loads {name}, not served"
            );
            assert!(
                precached.contains(&name),
                "help.html loads {name}, not precached by sw.js"
            );
        }
        // message.js defines what help.js uses, so it must run first.
        assert!(help.find("src=\"message.js\"") < help.find("src=\"help.js\""));

        // The first quoted name on each line that calls importScripts.
        let imported: Vec<&str> = sw
            .lines()
            .filter(|l| l.starts_with("importScripts("))
            .filter_map(|l| l.split('\'').nth(1))
            .collect();
        assert_eq!(imported, ["message.js"]);
        for name in imported {
            assert!(find(&format!("/{name}")).is_some(), "sw.js imports {name}, not served");
        }
    }

    #[test]
    fn html_pages_load_no_inline_script_or_style() {
        for asset in ASSETS.iter().filter(|a| matches!(a.kind, Kind::Help | Kind::Page)) {
            let b = asset.body;
            assert!(!b.contains("<script>") && !b.contains("<style"), "{}", asset.path);
            assert!(!b.contains(" style="), "{}", asset.path);
            // No event-handler attribute (onclick=, onload=, …).
            let handler = b.match_indices(" on").any(|(i, _)| {
                let rest = &b[i + 3..];
                let name_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
                name_len > 0 && rest[name_len..].starts_with('=')
            });
            assert!(!handler, "{}", asset.path);
        }
    }

    #[tokio::test]
    async fn sw_js_carries_version_and_service_and_may_control_the_whole_origin() {
        let r = route(
            &Method::GET,
            "/sw.js",
            &config(Some("https://help.example:8443/message.json")),
        )
        .unwrap();
        assert_eq!(r.headers()["service-worker-allowed"], "/");
        assert_eq!(r.headers()[header::CONTENT_TYPE], JS);
        let body = text(r).await;
        assert!(!body.contains("unrendered"));
        assert!(body.contains(&format!(r#""version":"{}""#, version())), "{body}");
        assert!(body.contains(r#""messageService":"https://help.example:8443/message.json""#));
    }

    #[tokio::test]
    async fn help_page_has_a_strict_csp_allowing_only_the_message_service_origin() {
        let r = route(
            &Method::GET,
            "/help",
            &config(Some("https://Help.example:8443/m.json?a=1&b=2")),
        )
        .unwrap();
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("connect-src 'self' https://help.example:8443;"), "{csp}");
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe"), "{csp}");
        assert!(csp.contains("require-trusted-types-for 'script'"), "{csp}");
        let body = text(r).await;
        assert!(body.contains(r#"content="https://Help.example:8443/m.json?a=1&amp;b=2""#));
        assert_eq!(escape_attribute(r#"a"b'<c>&"#), "a&quot;b&#39;&lt;c&gt;&amp;");

        let r = route(&Method::GET, "/help", &config(None)).unwrap();
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert!(
            text(r)
                .await
                .contains(r#"<meta name="v8help-message-service" content="">"#)
        );
    }

    #[test]
    fn other_paths_and_methods() {
        assert!(route(&Method::GET, "/nothing", &config(None)).is_none());
        let r = route(&Method::POST, "/help", &config(None)).unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], ALLOW);
    }

    #[test]
    fn a_bad_message_service_setting_is_refused_naming_the_flag() {
        use crate::config::{Flags, ServeArgs};
        let args = ServeArgs {
            serve: Flags {
                message_service: Some("help.example/message.json".into()),
                ..Flags::default()
            },
            ..ServeArgs::default()
        };
        let err = ServeConfig::resolve(&args).unwrap_err().to_string();
        assert!(
            err.starts_with("--message-service:") && err.contains("https://"),
            "{err}"
        );
        let args = ServeArgs {
            serve: Flags {
                message_service: Some("https://help.example/message.json".into()),
                ..Flags::default()
            },
            ..ServeArgs::default()
        };
        let config = ServeConfig::resolve(&args).unwrap();
        assert!(help_csp(&config).contains("connect-src 'self' https://help.example;"));
    }

    #[test]
    fn a_base_asks_the_message_json_in_its_own_folder_of_the_service() {
        assert_eq!(base_message_service(None, "erp"), "");
        for (service, expected) in [
            (
                "https://help.example/message.json",
                "https://help.example/erp/message.json",
            ),
            (
                "https://help.example:8443/v8help/message.json?x=1",
                "https://help.example:8443/v8help/erp/message.json",
            ),
            ("https://help.example", "https://help.example/erp/message.json"),
            ("https://help.example/", "https://help.example/erp/message.json"),
            ("/v8help/message.json", "/v8help/erp/message.json"),
        ] {
            assert_eq!(base_message_service(Some(service), "erp"), expected, "{service}");
        }
    }

    #[test]
    fn version_starts_with_the_crate_version() {
        assert!(version().starts_with(concat!(env!("CARGO_PKG_VERSION"), "-")));
        assert_eq!(version().len(), env!("CARGO_PKG_VERSION").len() + 13);
    }
}
