//! Helpers for the browser tests: v8help origins that can be stopped, a headless Chromium
//! driven through ChromeDriver (fantoccini), polling with deadlines and screenshots.
//!
//! Chromium and ChromeDriver come from Debian's `chromium` and `chromium-driver` packages
//! (`V8HELP_CHROMIUM` / `V8HELP_CHROMEDRIVER` name other binaries). When they are missing
//! the suite is skipped with a note, or fails under `CI=true` (see [`super::tools`]).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::MutexGuard;
use v8help::config::ServeConfig;

use super::binary::Log;
use super::client::blocking_http_get;
use super::server::InProcess;
use super::tools::Suite;
use super::wait::try_wait_for;

/// The browser suite, for skipping when Chromium is absent.
pub const SUITE: Suite = Suite {
    name: "browser",
    test: "browser",
    packages: "chromium chromium-driver",
};

/// The time zone Chromium runs in, so that "local time" differs from UTC and the tests can
/// tell that the page converted it (Tokyo: UTC+9, no daylight saving).
pub const BROWSER_TZ: &str = "Asia/Tokyo";
/// The language Chromium reports (`navigator.languages[0]`, Accept-Language) unless a
/// test asks for another.
pub const BROWSER_LANG: &str = "en-US";
/// Desktop and phone window sizes for screenshots.
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (390, 844);

/// One Chromium at a time: the machine has two cores, and a test that waits for a message
/// to expire must not be starved by four others.
static BROWSER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes the one-browser-at-a-time lock (for tests that start their own servers).
pub async fn browser_lock() -> MutexGuard<'static, ()> {
    BROWSER_LOCK.lock().await
}

/// A v8help instance serving plain HTTP on 127.0.0.1, which a test can stop to make its
/// origin unreachable.
pub struct Origin {
    pub addr: SocketAddr,
    message_path: PathBuf,
    server: InProcess,
}

impl Origin {
    /// Starts an instance whose message file is `dir/<name>.json` (absent: no message) and
    /// whose help page asks `message_service`.
    pub async fn start(dir: &Path, name: &str, message_service: Option<String>) -> anyhow::Result<Origin> {
        Origin::start_with(dir, name, message_service, |_| {}).await
    }

    /// As [`Origin::start`], with `tweak` adjusting the configuration (`--messages`).
    pub async fn start_with(
        dir: &Path,
        name: &str,
        message_service: Option<String>,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> anyhow::Result<Origin> {
        let message_path = dir.join(format!("{name}.json"));
        let mut config = ServeConfig {
            listen: "127.0.0.1:0".parse()?,
            http_listen: Some("127.0.0.1:0".parse()?),
            message: message_path.clone(),
            message_service: message_service
                .map(|url| url.parse())
                .transpose()
                .map_err(anyhow::Error::msg)?,
            shutdown_timeout: Duration::from_secs(1),
            ..ServeConfig::default()
        };
        tweak(&mut config);
        let server = InProcess::start(config)?;
        let addr = server.http.context("no plain-HTTP listener")?;
        Ok(Origin {
            addr,
            message_path,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An absolute URL on this origin.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Replaces the message document and makes the instance serve it now.
    pub fn set_message(&self, document: &Value) -> anyhow::Result<()> {
        let tmp = self.message_path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(document)?)?;
        std::fs::rename(&tmp, &self.message_path)?;
        match self.server.live.reload(true, v8help::watch::Now::read()) {
            v8help::watch::Reload::Loaded | v8help::watch::Reload::Unchanged => Ok(()),
            other => bail!("message not loaded: {other:?}"),
        }
    }

    /// The body of `GET path`.
    pub fn get(&self, path: &str) -> anyhow::Result<String> {
        Ok(blocking_http_get(self.addr, path).text().to_string())
    }

    /// Shuts the instance down and checks that its port now refuses connections.
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.server
            .stop(Duration::from_secs(10))
            .await
            .map_err(anyhow::Error::msg)?;
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
            bail!("{} still accepts connections after shutdown", self.addr);
        }
        Ok(())
    }
}

/// Headless Chromium under a ChromeDriver this test started, with a fresh profile.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: tempfile::TempDir,
}

/// Chromium and ChromeDriver binaries, or `None` with the suite skipped.
fn find_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = SUITE.tool_from_env("V8HELP_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"])?;
    let driver = SUITE.tool_from_env("V8HELP_CHROMEDRIVER", &["chromedriver"])?;
    Some((chromium, driver))
}

impl Browser {
    /// Starts ChromeDriver and a Chromium session. `None` when the binaries are missing
    /// and the suite is skipped.
    pub async fn start(lang: &str) -> anyhow::Result<Option<Browser>> {
        Browser::start_with(lang, false).await
    }

    /// As [`Browser::start`]; `test_certificates` makes Chromium accept certificates from
    /// the tests' own CA (the console is HTTPS only).
    pub async fn start_with(lang: &str, test_certificates: bool) -> anyhow::Result<Option<Browser>> {
        let Some((chromium, chromedriver)) = find_binaries() else {
            return Ok(None);
        };
        let profile = tempfile::tempdir()?;
        let mut driver = Command::new(&chromedriver)
            .arg("--port=0")
            .env("TZ", BROWSER_TZ)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", chromedriver.display()))?;
        let port = match read_driver_port(&mut driver) {
            Ok(port) => port,
            Err(err) => {
                let _ = driver.kill();
                let _ = driver.wait();
                return Err(err);
            }
        };
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--lang={lang}"),
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", profile.path().join("chromium").display()),
                ],
                "prefs": { "intl.accept_languages": lang },
            }),
        );
        if test_certificates {
            caps.insert("acceptInsecureCerts".into(), json!(true));
        }
        caps.insert(
            "timeouts".into(),
            json!({ "pageLoad": 30_000, "script": 30_000, "implicit": 0 }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match client {
            Ok(client) => client,
            Err(err) => {
                let _ = driver.kill();
                let _ = driver.wait();
                bail!("cannot start a Chromium session: {err}");
            }
        };
        Ok(Some(Browser {
            client,
            driver,
            profile,
        }))
    }

    /// Ends the session (ChromeDriver then stops Chromium) and ChromeDriver.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("navigating to {url}"))
    }

    /// Runs `body` as an async function in the page and returns its result.
    pub async fn eval(&self, body: &str) -> anyhow::Result<Value> {
        let script = format!("return (async () => {{ {body} }})();");
        self.client
            .execute(&script, vec![])
            .await
            .with_context(|| format!("running in the page: {body}"))
    }

    /// Text of the element a user sees (empty when it is hidden).
    pub async fn visible_text(&self, css: &str) -> anyhow::Result<String> {
        let element = self.client.find(Locator::Css(css)).await?;
        Ok(element.text().await?)
    }

    /// Whether the element is displayed.
    pub async fn is_displayed(&self, css: &str) -> anyhow::Result<bool> {
        let element = self.client.find(Locator::Css(css)).await?;
        Ok(element.is_displayed().await?)
    }

    /// Saves a screenshot at a window size as `<target>/browser-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str, (width, height): (u32, u32)) -> anyhow::Result<PathBuf> {
        self.client.set_window_size(width, height).await?;
        let png = self.client.screenshot().await?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        self.client.set_window_size(DESKTOP.0, DESKTOP.1).await?;
        Ok(path)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: `browser-screenshots/` in the Cargo target directory.
pub fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("browser-screenshots")
}

/// Reads "ChromeDriver was started successfully on port N." from the driver's output.
fn read_driver_port(driver: &mut Child) -> anyhow::Result<u16> {
    let stdout = driver.stdout.take().context("no ChromeDriver stdout")?;
    let log = Log::read(stdout, "chromedriver");
    let port = log.find(Duration::from_secs(20), |line| {
        let rest = line.split("started successfully on port ").nth(1)?;
        Some(rest.trim_end_matches('.').trim().parse::<u16>())
    });
    match port {
        Some(Ok(port)) => Ok(port),
        Some(Err(err)) => bail!("ChromeDriver printed a port that is not a number: {err}"),
        None => bail!("ChromeDriver did not report its port within 20 s"),
    }
}

/// Polls `check` every 100 ms (each check is a WebDriver round trip) until it gives
/// `Some`, or fails after `timeout` saying what was awaited and what the last check saw.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    try_wait_for(timeout, Duration::from_millis(100), check)
        .await
        .map_err(|last| {
            let last = last.map_or_else(|| "not yet".to_string(), |e| format!("{e:#}"));
            anyhow::anyhow!("timed out after {timeout:?} waiting for {what} (last check: {last})")
        })
}

/// Everything one browser test needs: origin A (the web publication, whose help page asks
/// B), origin B (the message service), and a browser. Holds the one-browser-at-a-time lock.
pub struct Env {
    pub a: Origin,
    pub b: Origin,
    pub browser: Browser,
    pub dir: tempfile::TempDir,
    _lock: MutexGuard<'static, ()>,
}

impl Env {
    /// Starts both origins with B serving `message`, and the browser. `None`: skipped.
    pub async fn start(message: &Value) -> anyhow::Result<Option<Env>> {
        Env::start_in(message, BROWSER_LANG).await
    }

    /// As [`Env::start`], with the browser in language `lang` (`ru-RU`).
    pub async fn start_in(message: &Value, lang: &str) -> anyhow::Result<Option<Env>> {
        let lock = BROWSER_LOCK.lock().await;
        let dir = tempfile::tempdir()?;
        let b = Origin::start(dir.path(), "service", None).await?;
        b.set_message(message)?;
        let a = Origin::start(dir.path(), "publication", Some(b.url("/message.json"))).await?;
        let Some(browser) = Browser::start(lang).await? else {
            return Ok(None);
        };
        Ok(Some(Env {
            a,
            b,
            browser,
            dir,
            _lock: lock,
        }))
    }

    /// First visit of a publication page: waits until the worker controls it, has cached
    /// the help page, and has kept B's current message (`text`).
    pub async fn install_worker(&self, text: &str) -> anyhow::Result<()> {
        self.install_worker_from(&self.a.url("/demo"), text).await
    }

    /// As [`Env::install_worker`], from the check page at `demo` (A's, or A's behind a proxy).
    pub async fn install_worker_from(&self, demo: &str, text: &str) -> anyhow::Result<()> {
        let browser = &self.browser;
        browser.goto(demo).await?;
        let controlled = wait_for(
            Duration::from_secs(20),
            "the service worker to control the page",
            || async {
                let controlled = browser
                    .eval("return navigator.serviceWorker.controller !== null;")
                    .await?;
                Ok((controlled == json!(true)).then_some(()))
            },
        )
        .await;
        if let Err(err) = controlled {
            let report = browser.visible_text("main").await.unwrap_or_default();
            bail!("{err:#}\nthe check page says: {report}");
        }
        wait_for(
            Duration::from_secs(20),
            "the help page in the worker's cache",
            || async {
                let urls = cached_asset_urls(browser).await?;
                Ok(urls.iter().any(|u| u.ends_with("/help")).then_some(()))
            },
        )
        .await?;
        wait_for(
            Duration::from_secs(20),
            "the worker to keep the current message",
            || async {
                let record = last_message(browser).await?;
                Ok((record["message"]["userMessage"] == json!(text)).then_some(()))
            },
        )
        .await
    }

    /// [`help_state`] of this environment's browser.
    pub async fn help_state(&self) -> anyhow::Result<String> {
        help_state(&self.browser).await
    }

    /// Closes the browser and stops both origins, then fails the test with `result`'s error.
    pub async fn finish(self, result: anyhow::Result<()>) {
        self.browser.close().await;
        let _ = self.a.stop().await;
        let _ = self.b.stop().await;
        if let Err(err) = result {
            panic!("{err:#}");
        }
    }
}

/// URLs in the worker's versioned asset caches, with the cache names.
pub async fn cached_asset_urls(browser: &Browser) -> anyhow::Result<Vec<String>> {
    let value = browser
        .eval(
            "const out = [];
             for (const name of await caches.keys()) {
               if (!name.startsWith('v8help-assets-')) continue;
               for (const request of await (await caches.open(name)).keys()) out.push(name + ' ' + request.url);
             }
             return out;",
        )
        .await?;
    Ok(serde_json::from_value(value)?)
}

/// The record `{message, fetchedAt}` the worker or page kept (`null` when none).
pub async fn last_message(browser: &Browser) -> anyhow::Result<Value> {
    browser
        .eval(
            "const cache = await caches.open('v8help-last-message');
             const keys = await cache.keys();
             return keys.length ? await (await cache.match(keys[0])).json() : null;",
        )
        .await
}

/// A web server publishing several bases on one origin, as a publication's nginx does:
/// `/NAME/…` are the bases' pages (each includes v8help's `register.js` with its own tag,
/// given to [`Publication::start`]), and `/v8help/…` is proxied to a v8help origin with the
/// prefix taken off. [`Publication::set_down`] makes the pages answer 503 while `/v8help/`
/// still works; a v8help that is down makes `/v8help/` answer 502.
pub struct Publication {
    pub addr: SocketAddr,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Publication {
    /// Serves `pages` (`(NAME, <script> tag)`) and proxies `/v8help/` to `upstream`.
    pub async fn start(upstream: SocketAddr, pages: &[(&str, &str)]) -> anyhow::Result<Publication> {
        use http_body_util::{BodyExt, Full};
        use hyper::body::Incoming;
        use hyper_util::client::legacy::Client;
        use hyper_util::rt::{TokioExecutor, TokioIo};

        let pages: std::sync::Arc<Vec<(String, String)>> = std::sync::Arc::new(
            pages
                .iter()
                .map(|(name, tag)| {
                    let html = format!(
                        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{name}</title>{tag}</head>\
                         <body><main><h1>Publication {name}</h1></main></body></html>"
                    );
                    (format!("/{name}/"), html)
                })
                .collect(),
        );
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let client = Client::builder(TokioExecutor::new()).build_http::<Incoming>();
        let flag = down.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (client, pages, down) = (client.clone(), pages.clone(), flag.clone());
                let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                    let (client, pages, down) = (client.clone(), pages.clone(), down.clone());
                    async move {
                        let answer = |status: u16, body: String, kind: &str| {
                            http::Response::builder()
                                .status(status)
                                .header("content-type", kind)
                                .body(
                                    Full::new(bytes::Bytes::from(body))
                                        .map_err(|never| match never {})
                                        .boxed(),
                                )
                        };
                        let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
                        if let Some(rest) = path.strip_prefix("/v8help/") {
                            *request.uri_mut() = format!("http://{upstream}/{rest}").parse()?;
                            return Ok::<_, anyhow::Error>(match client.request(request).await {
                                Ok(response) => {
                                    response.map(|b| b.map_err(|e| std::io::Error::other(e.to_string())).boxed())
                                }
                                Err(_) => answer(502, "v8help is down".into(), "text/plain")?,
                            });
                        }
                        let page = pages.iter().find(|(prefix, _)| path.starts_with(prefix.as_str()));
                        Ok(match page {
                            _ if down.load(std::sync::atomic::Ordering::SeqCst) => {
                                answer(503, "down".into(), "text/plain")?
                            }
                            Some((_, html)) => answer(200, html.clone(), "text/html; charset=utf-8")?,
                            None => answer(404, "not found".into(), "text/plain")?,
                        })
                    }
                });
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Publication { addr, down, task })
    }

    /// An absolute URL on the publication's origin.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Makes the bases' pages answer 503 (`true`) or serve again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// Closes the listener and every connection.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Waits until the help page in `browser` has decided what to show and returns that
/// decision (the `data-state` of its body: live, cached, none, unreachable or expired).
pub async fn help_state(browser: &Browser) -> anyhow::Result<String> {
    wait_for(
        Duration::from_secs(30),
        "the help page to decide what to show",
        || async {
            let state = browser
                .eval("return document.body ? (document.body.dataset.state || '') : '';")
                .await?;
            let state = state.as_str().unwrap_or_default().to_string();
            Ok((!state.is_empty() && state != "checking").then_some(state))
        },
    )
    .await
}
