//! The web client's offline help in a real headless Chromium: the service worker installs
//! from a publication page, and when the publication's origin (A) is down a navigation
//! shows the help page with the live message from the message service (B), or the last
//! message the browser kept, never an expired one, and never a message's markup as HTML.
//!
//! Needs `chromium` and `chromium-driver` (Debian): without them the suite is skipped with a
//! note, and fails under `CI=true`. Screenshots go to `<target>/browser-screenshots/`.
//! Run: `cargo test --test browser`.

mod common;

use std::time::Duration;

use anyhow::ensure;
use chrono::{DateTime, SecondsFormat, Utc};
use common::browser::{BROWSER_TZ, DESKTOP, Env, PHONE, cached_asset_urls, last_message, wait_for};
use serde_json::{Value, json};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn in_hours(hours: i64) -> String {
    rfc3339(Utc::now() + chrono::Duration::hours(hours))
}

/// `h:mm` of an instant in the browser's time zone, as en-US writes a short time.
fn browser_clock(t: DateTime<Utc>) -> String {
    let zone: chrono_tz::Tz = BROWSER_TZ.parse().expect("known zone");
    t.with_timezone(&zone).format("%-I:%M").to_string()
}

/// Runs one scenario with its own origins and browser; skipped without a browser (see
/// `common::tools`).
async fn run(message: Value, scenario: impl AsyncFnOnce(&Env) -> anyhow::Result<()>) {
    run_in(common::browser::BROWSER_LANG, message, scenario).await;
}

/// As [`run`], with the browser in language `lang`.
async fn run_in(lang: &str, message: Value, scenario: impl AsyncFnOnce(&Env) -> anyhow::Result<()>) {
    let Some(env) = Env::start_in(&message, lang).await.expect("start origins and browser") else {
        return;
    };
    let result = match tokio::time::timeout(Duration::from_secs(120), scenario(&env)).await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!("the scenario did not finish within 120 s")),
    };
    env.finish(result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_visit_registers_the_worker_and_caches_the_help_page() {
    const TEXT: &str = "Maintenance until 14:00. Duty admin: +7 (495) 123-45-67";
    const OLD_CACHE: &str = "v8help-assets-0.0.1-0123456789ab";
    run(
        json!({"userMessage": TEXT, "expires": in_hours(24)}),
        async |env: &Env| {
            let browser = &env.browser;
            // What an older v8help build would have left behind: its asset cache.
            browser.goto(&env.a.url("/help")).await?;
            browser
                .eval(&format!(
                    "await (await caches.open('{OLD_CACHE}')).put('/help', new Response('old build'));"
                ))
                .await?;
            env.install_worker(TEXT).await?;

            let cache = format!("v8help-assets-{}", v8help::server::web::version());
            let names = browser.eval("return await caches.keys();").await?;
            ensure!(
                names.as_array().is_some_and(|n| !n.contains(&json!(OLD_CACHE))),
                "the older build's cache was not deleted: {names}"
            );
            let urls = cached_asset_urls(browser).await?;
            for path in ["/help", "/help.css", "/message.js", "/help.js"] {
                let entry = format!("{cache} {}", env.a.url(path));
                ensure!(urls.contains(&entry), "{entry} is not cached; the caches hold {urls:?}");
            }
            let scope = browser
                .eval("return (await navigator.serviceWorker.getRegistration()).scope;")
                .await?;
            ensure!(
                scope == json!(env.a.url("/")),
                "the worker's scope is {scope}, not the whole origin"
            );

            // The cached page is the one A renders for its configuration: it asks B.
            let cached_help = browser
                .eval(&format!(
                    "return await (await (await caches.open('{cache}')).match('{}')).text();",
                    env.a.url("/help")
                ))
                .await?;
            let service = env.b.url("/message.json");
            ensure!(
                cached_help.as_str().is_some_and(|html| html.contains(&service)),
                "the cached help page does not name the message service {service}"
            );

            // What an admin checking the deployment sees on the check page.
            wait_for(
                Duration::from_secs(10),
                "the check page to report the installation",
                || async {
                    let cached = browser.visible_text("#cache").await?.contains(&cache);
                    let controlled = browser.visible_text("#controller").await? == "yes";
                    let kept = browser.visible_text("#last").await?.contains(TEXT);
                    Ok((cached && controlled && kept).then_some(()))
                },
            )
            .await?;
            browser.screenshot("1-first-visit-check-page-desktop", DESKTOP).await?;
            browser.screenshot("1-first-visit-check-page-phone", PHONE).await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_server_down_shows_the_cached_page_with_the_live_message_from_the_other_origin() {
    const FIRST: &str = "Everything works";
    run(json!({"userMessage": FIRST}), async |env: &Env| {
        let browser = &env.browser;
        env.install_worker(FIRST).await?;

        // The outage: the admin writes a new message, then the publication goes down.
        // Expiry at 03:00 UTC is 12:00 PM in the browser's zone (Tokyo, UTC+9).
        let expires = (Utc::now() + chrono::Duration::days(2))
            .date_naive()
            .and_hms_opt(3, 0, 0)
            .expect("valid time")
            .and_utc();
        env.b.set_message(&json!({
            "userMessage": "Технические работы до 12:00",
            "userMessages": {"ru": "Технические работы до 12:00", "en": "Maintenance until noon. Call +7 (495) 123-45-67"},
            "expires": rfc3339(expires),
            "helpUrl": "https://help.example/outage?id=7&lang=en",
        }))?;
        ensure!(env.b.get("/message.json?lang=en")?.contains("Maintenance until noon"));
        env.a.stop().await?;

        let page = env.a.url("/base/ru_RU/");
        browser.goto(&page).await?;
        let state = env.help_state().await?;
        ensure!(state == "live", "the help page shows {state:?}, not the live message");
        ensure!(
            browser.client.current_url().await?.as_str() == page,
            "the address bar left the publication page"
        );
        ensure!(browser.visible_text("#title").await? == "Cannot connect to the application");
        let lead = browser.visible_text("#lead").await?;
        ensure!(lead.contains("The server cannot be reached."), "lead: {lead:?}");
        // In the browser's language, not the default Russian text.
        let text = browser.visible_text("#message-text").await?;
        ensure!(text == "Maintenance until noon. Call +7 (495) 123-45-67", "message: {text:?}");
        // The expiry in the browser's local time (12:00 PM in Tokyo), not UTC's 3:00 AM.
        let valid = browser.visible_text("#message-expires").await?;
        ensure!(
            valid.starts_with("Valid until") && valid.contains("12:00") && valid.contains("PM"),
            "expiry line: {valid:?}"
        );
        ensure!(browser.visible_text("#help-link").await? == "Need help");
        let href = browser.eval("return document.getElementById('help-link').href;").await?;
        ensure!(href == json!("https://help.example/outage?id=7&lang=en"), "link: {href}");
        ensure!(!browser.is_displayed("#message-fetched").await?, "a live message is marked as old");

        browser.screenshot("2-web-server-down-live-desktop", DESKTOP).await?;
        browser.screenshot("2-web-server-down-live-phone", PHONE).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_down_shows_the_last_kept_message_with_when_it_was_fetched() {
    const TEXT: &str = "1C is being updated until 18:00. Please do not restart the client.";
    let message = json!({"userMessage": TEXT, "expires": in_hours(6), "helpUrl": "https://help.example/"});
    run(message, async |env: &Env| {
        let browser = &env.browser;
        env.install_worker(TEXT).await?;
        let record = last_message(browser).await?;
        let fetched: DateTime<Utc> = record["fetchedAt"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|e| anyhow::anyhow!("fetchedAt {record}: {e}"))?;

        env.a.stop().await?;
        env.b.stop().await?;

        browser.goto(&env.a.url("/base/ru_RU/")).await?;
        let state = env.help_state().await?;
        ensure!(state == "cached", "the help page shows {state:?}, not the kept message");
        ensure!(browser.visible_text("#message-text").await? == TEXT);
        let lead = browser.visible_text("#lead").await?;
        ensure!(lead.contains("The server cannot be reached."), "lead: {lead:?}");
        // Marked with when it was fetched, in the browser's local time.
        let received = browser.visible_text("#message-fetched").await?;
        let clock = browser_clock(fetched);
        ensure!(
            received.starts_with("Received") && received.contains(&clock) && received.contains("out of date"),
            "fetched line {received:?} does not give the fetch time {clock}"
        );
        ensure!(
            browser.is_displayed("#help-link").await?,
            "the Need help link is missing"
        );

        browser.screenshot("3-both-down-cached-desktop", DESKTOP).await?;
        browser.screenshot("3-both-down-cached-phone", PHONE).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_expiry_the_kept_message_is_not_shown() {
    const TEXT: &str = "Short maintenance: back in a moment";
    // Far enough ahead to install the worker and see the message once before it expires.
    // Whole seconds, as written in the document.
    let expires = DateTime::from_timestamp(Utc::now().timestamp() + 15, 0).expect("valid time");
    let expires_ms = expires.timestamp_millis();
    run(
        json!({"userMessage": TEXT, "expires": rfc3339(expires)}),
        async |env: &Env| {
            let browser = &env.browser;
            env.install_worker(TEXT).await?;
            env.a.stop().await?;
            env.b.stop().await?;

            // Before expiry the kept message shows: the later check is not vacuous.
            browser.goto(&env.a.url("/base/ru_RU/")).await?;
            let state = env.help_state().await?;
            let now = browser.eval("return Date.now();").await?.as_i64().unwrap_or(i64::MAX);
            ensure!(
                now < expires_ms,
                "set-up took past the message's expiry; cannot check it"
            );
            ensure!(state == "cached", "before expiry the help page shows {state:?}");
            ensure!(browser.visible_text("#message-text").await? == TEXT);

            // The page that stays open takes the message down at expiry by itself.
            wait_for(
                Duration::from_secs(40),
                "the open page to take the expired message down",
                || async {
                    let state = browser.eval("return document.body.dataset.state;").await?;
                    Ok((state == json!("expired")).then_some(()))
                },
            )
            .await?;
            ensure!(
                !browser.is_displayed("#message").await?,
                "the expired message is still displayed"
            );
            let now = browser.eval("return Date.now();").await?.as_i64().unwrap_or(0);
            ensure!(now >= expires_ms, "the message was taken down before its expiry");

            // A new navigation after expiry shows no stale text.
            browser.goto(&env.a.url("/base/ru_RU/?after-expiry")).await?;
            let state = env.help_state().await?;
            ensure!(state == "unreachable", "after expiry the help page shows {state:?}");
            let body = browser.visible_text("body").await?;
            ensure!(!body.contains(TEXT), "the expired message is shown: {body:?}");
            ensure!(body.contains("there is no recent message to show"), "page: {body:?}");

            browser.screenshot("4-after-expiry-desktop", DESKTOP).await?;
            browser.screenshot("4-after-expiry-phone", PHONE).await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_script_and_html_is_shown_as_text() {
    const MARKUP: &str = r#"<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2"><b>bold</b> & "quoted" </p><h1>big</h1>"#;
    run(
        json!({"userMessage": MARKUP, "expires": in_hours(1)}),
        async |env: &Env| {
            let browser = &env.browser;
            env.install_worker(MARKUP).await?;

            // Live, on the help page itself.
            browser.goto(&env.a.url("/help")).await?;
            let state = env.help_state().await?;
            ensure!(state == "live", "the help page shows {state:?}");
            shown_as_text(env, MARKUP).await?;
            browser.screenshot("5-markup-as-text-live-desktop", DESKTOP).await?;

            // Kept, with both origins down.
            env.a.stop().await?;
            env.b.stop().await?;
            browser.goto(&env.a.url("/base/ru_RU/")).await?;
            let state = env.help_state().await?;
            ensure!(state == "cached", "the help page shows {state:?}");
            shown_as_text(env, MARKUP).await?;
            browser.screenshot("5-markup-as-text-cached-desktop", DESKTOP).await?;
            browser.screenshot("5-markup-as-text-cached-phone", PHONE).await?;
            Ok(())
        },
    )
    .await;
}

/// The message's characters are on screen as written, and none of its markup became an
/// element or ran.
async fn shown_as_text(env: &Env, text: &str) -> anyhow::Result<()> {
    let browser = &env.browser;
    let shown = browser.visible_text("#message-text").await?;
    ensure!(shown == text.trim(), "shown {shown:?}, written {text:?}");
    let exact = browser
        .eval("return document.getElementById('message-text').textContent;")
        .await?;
    ensure!(exact == json!(text), "textContent {exact}");
    let elements = browser
        .eval("return document.querySelectorAll('#message-text *, main img, main h1 ~ h1, main b').length;")
        .await?;
    ensure!(
        elements == json!(0),
        "{elements} elements came from the message's markup"
    );
    let pwned = browser.eval("return typeof window.pwned;").await?;
    ensure!(pwned == json!("undefined"), "the message's script ran");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_or_a_silent_web_server_also_gets_the_help_page() {
    const TEXT: &str = "The 1C server is restarting";
    let message = json!({"userMessage": TEXT, "expires": in_hours(1)});
    run(message, async |env: &Env| {
        let browser = &env.browser;
        env.install_worker(TEXT).await?;
        env.a.stop().await?;

        // A web server that answers every request with 503, on A's address.
        let reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown";
        let stub = Stub::start(env.a.addr, Some(reply)).await?;
        browser.goto(&env.a.url("/base/ru_RU/")).await?;
        let state = env.help_state().await?;
        ensure!(state == "live", "after a 503 the help page shows {state:?}");
        let lead = browser.visible_text("#lead").await?;
        ensure!(lead.contains("The server answered with error 503."), "lead: {lead:?}");
        ensure!(browser.visible_text("#message-text").await? == TEXT);
        stub.stop().await;

        // One that accepts connections and never answers: the worker gives up after 10 s.
        let stub = Stub::start(env.a.addr, None).await?;
        let started = std::time::Instant::now();
        browser.goto(&env.a.url("/base/ru_RU/?silent")).await?;
        let state = env.help_state().await?;
        let waited = started.elapsed();
        ensure!(state == "live", "after a timeout the help page shows {state:?}");
        let lead = browser.visible_text("#lead").await?;
        ensure!(lead.contains("did not answer within 10 seconds"), "lead: {lead:?}");
        ensure!(
            waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
            "the help page came after {waited:?}, not after the 10 s timeout"
        );
        browser.screenshot("6-silent-web-server-desktop", DESKTOP).await?;
        stub.stop().await;
        Ok(())
    })
    .await;
}

/// A misbehaving web server on a given address: answers every request with `reply`, or
/// (`None`) reads requests and never answers.
struct Stub {
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    async fn start(addr: std::net::SocketAddr, reply: Option<&'static str>) -> anyhow::Result<Stub> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(Stub::serve(stream, reply));
            }
        });
        Ok(Stub { task })
    }

    /// Reads requests and answers each with `reply`; bounded to 60 s.
    async fn serve(mut stream: tokio::net::TcpStream, reply: Option<&'static str>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut buf = vec![0u8; 16 * 1024];
        let mut seen = Vec::new();
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                continue;
            }
            seen.clear();
            if let Some(reply) = reply {
                if stream.write_all(reply.as_bytes()).await.is_err() {
                    break;
                }
            }
        }
    }

    /// Closes the listener and every connection.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_russian_browser_gets_the_page_and_the_message_in_russian() {
    let message = json!({
        "userMessage": "Maintenance until 14:00",
        "userMessages": {"ru": "Технические работы до 14:00", "kk": "Техникалық жұмыстар 14:00-ге дейін"},
        "expires": in_hours(3),
        "helpUrl": "https://help.example/",
    });
    run_in("ru-RU", message, async |env: &Env| {
        let browser = &env.browser;
        env.install_worker("Технические работы до 14:00").await?;
        env.a.stop().await?;
        browser.goto(&env.a.url("/base/ru_RU/")).await?;
        let state = env.help_state().await?;
        ensure!(state == "live", "the help page shows {state:?}");
        ensure!(browser.visible_text("#title").await? == "Не удаётся подключиться к приложению");
        ensure!(browser.visible_text("#message-text").await? == "Технические работы до 14:00");
        ensure!(browser.visible_text("#help-link").await? == "Нужна помощь");
        let valid = browser.visible_text("#message-expires").await?;
        ensure!(valid.starts_with("Действует до"), "expiry line: {valid:?}");
        let lang = browser.eval("return document.documentElement.lang;").await?;
        ensure!(lang == json!("ru"), "html lang is {lang}");
        browser.screenshot("7-russian-live-phone", PHONE).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_imports_message_js_under_a_trusted_types_csp_a_proxy_adds_to_sw_js() {
    const TEXT: &str = "Maintenance tonight from 22:00";
    run(
        json!({"userMessage": TEXT, "expires": in_hours(2)}),
        async |env: &Env| {
            let browser = &env.browser;
            // The publication's own policy, which a proxy adding it to every response sends
            // with sw.js too: Trusted Types required, only the policy name `v8help` allowed.
            let csp = format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' {}; \
                 require-trusted-types-for 'script'; trusted-types v8help",
                env.b.origin()
            );
            let proxy = CspProxy::start(env.a.addr, &csp).await?;
            let result = async {
                // The check page writes no message: the worker kept it, so message.js loaded.
                env.install_worker_from(&proxy.url("/demo"), TEXT).await?;
                let sent = browser
                    .eval("return (await fetch('sw.js', {cache: 'no-store'})).headers.get('content-security-policy');")
                    .await?;
                ensure!(
                    sent.as_str()
                        .is_some_and(|p| p.contains("require-trusted-types-for 'script'")),
                    "sw.js came without the proxy's policy: {sent}"
                );

                env.a.stop().await?;
                browser.goto(&proxy.url("/base/ru_RU/")).await?;
                let state = env.help_state().await?;
                ensure!(state == "live", "the help page shows {state:?}");
                ensure!(browser.visible_text("#message-text").await? == TEXT);
                Ok(())
            }
            .await;
            proxy.stop().await;
            result
        },
    )
    .await;
}

/// A reverse proxy to a v8help origin that adds a Content-Security-Policy to every answer,
/// as `add_header` in a publication's nginx `server` block does for its locations too.
/// When the origin is down it closes the connection.
struct CspProxy {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl CspProxy {
    async fn start(upstream: std::net::SocketAddr, csp: &str) -> anyhow::Result<CspProxy> {
        use hyper::body::Incoming;
        use hyper_util::client::legacy::Client;
        use hyper_util::rt::{TokioExecutor, TokioIo};

        let csp = http::HeaderValue::from_str(csp)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let client = Client::builder(TokioExecutor::new()).build_http::<Incoming>();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (client, csp) = (client.clone(), csp.clone());
                let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                    let (client, csp) = (client.clone(), csp.clone());
                    async move {
                        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                        *request.uri_mut() = format!("http://{upstream}{path}").parse()?;
                        let mut response = client.request(request).await?;
                        response
                            .headers_mut()
                            .append(http::header::CONTENT_SECURITY_POLICY, csp);
                        anyhow::Ok(response)
                    }
                });
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(CspProxy { addr, task })
    }

    /// An absolute URL on the proxy's origin.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Closes the listener and every connection.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
