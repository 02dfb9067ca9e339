//! The web client with many bases, in a real headless Chromium: one publication origin
//! with two bases, each page registering v8help's worker for its own base (`data-base`, or
//! `register.js` from the base's folder); when the pages fail, each shows its own base's
//! message, live or kept. And the help page's own texts in Kazakh, Latvian and Armenian,
//! with dates written in that language.
//!
//! Needs `chromium` and `chromium-driver` (Debian): without them the suite is skipped with a
//! note, and fails under `CI=true`. Run: `cargo test --test browser_bases`.

mod common;

use std::time::Duration;

use anyhow::ensure;
use chrono::{SecondsFormat, Utc};
use common::browser::{Browser, DESKTOP, Env, Origin, PHONE, Publication, browser_lock, help_state, wait_for};
use serde_json::{Value, json};

fn in_hours(hours: i64) -> String {
    (Utc::now() + chrono::Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The `{message, fetchedAt}` kept for the help page at `folder` (`/v8help/erp/`).
async fn kept(browser: &Browser, key: &str) -> anyhow::Result<Value> {
    browser
        .eval(&format!(
            "const cache = await caches.open('v8help-last-message');
             const r = await cache.match(new URL({key:?}, location.href));
             return r ? await r.json() : null;"
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bases_on_one_publication_each_show_their_own_message() {
    const ERP: &str = "ERP: the cluster is being updated until 14:00";
    const HR: &str = "HR: all fine, the web server restarts";
    let _lock = browser_lock().await;
    let dir = tempfile::tempdir().unwrap();
    let messages = dir.path().join("messages");
    std::fs::create_dir(&messages).unwrap();
    let write = |base: &str, text: &str| {
        let doc = json!({"userMessage": text, "expires": in_hours(2)});
        std::fs::write(messages.join(format!("{base}.json")), doc.to_string()).unwrap();
    };
    write("erp", ERP);
    write("hr", HR);
    let dir_for_config = messages.clone();
    let v8help = Origin::start_with(dir.path(), "root", None, |c| c.messages = Some(dir_for_config))
        .await
        .unwrap();
    let publication = Publication::start(
        v8help.addr,
        &[
            // By data-base, and by loading register.js from the base's own folder.
            (
                "erp",
                r#"<script src="/v8help/register.js" data-base="erp" data-scope="/erp/" defer></script>"#,
            ),
            (
                "hr",
                r#"<script src="/v8help/hr/register.js" data-scope="/hr/" defer></script>"#,
            ),
        ],
    )
    .await
    .unwrap();
    let Some(browser) = Browser::start(common::browser::BROWSER_LANG).await.unwrap() else {
        return;
    };
    let result = async {
        for (base, text) in [("erp", ERP), ("hr", HR)] {
            browser.goto(&publication.url(&format!("/{base}/"))).await?;
            wait_for(Duration::from_secs(20), "the worker to control the page", || async {
                let c = browser
                    .eval("return navigator.serviceWorker.controller ? navigator.serviceWorker.controller.scriptURL : '';")
                    .await?;
                Ok(c.as_str().filter(|s| !s.is_empty()).map(str::to_string))
            })
            .await
            .and_then(|script| {
                ensure!(script.ends_with(&format!("/v8help/{base}/sw.js")), "{base} is controlled by {script}");
                Ok(())
            })?;
            let key = format!("/v8help/{base}/last-message");
            wait_for(Duration::from_secs(20), "the worker to keep its base's message", || async {
                let record = kept(&browser, &key).await?;
                Ok((record["message"]["userMessage"] == json!(text)).then_some(()))
            })
            .await?;
        }

        // The pages fail, v8help still answers: each base's help page with its live message.
        publication.set_down(true);
        for (base, text) in [("erp", ERP), ("hr", HR)] {
            browser.goto(&publication.url(&format!("/{base}/"))).await?;
            let state = help_state(&browser).await?;
            ensure!(state == "live", "/{base}/ shows {state:?}");
            let shown = browser.visible_text("#message-text").await?;
            ensure!(shown == text, "/{base}/ shows {shown:?}");
            let lead = browser.visible_text("#lead").await?;
            ensure!(lead.contains("error 503"), "{lead}");
        }
        browser.screenshot("bases-1-erp-live", DESKTOP).await?;

        // v8help down too: each shows the message it kept for its own base.
        v8help.stop().await?;
        for (base, text) in [("hr", HR), ("erp", ERP)] {
            browser.goto(&publication.url(&format!("/{base}/?offline"))).await?;
            let state = help_state(&browser).await?;
            ensure!(state == "cached", "/{base}/ shows {state:?}");
            let shown = browser.visible_text("#message-text").await?;
            ensure!(shown == text, "/{base}/ shows {shown:?}");
        }
        browser.screenshot("bases-2-erp-cached", PHONE).await?;
        Ok(())
    }
    .await;
    browser.close().await;
    publication.stop().await;
    let _ = v8help.stop().await;
    if let Err(err) = result {
        panic!("{err:#}");
    }
}

/// The help page in a browser whose languages are `lang`, asserting its texts are those of
/// `ui` and that its dates are written as `ui` writes them.
async fn help_page_in(lang: &str, ui: &str, title: &str, heading: &str, help: &str, refresh: &str, valid: &str) {
    let expires = Utc::now() + chrono::Duration::days(3);
    let message = json!({
        "userMessage": "Maintenance",
        "expires": expires.to_rfc3339_opts(SecondsFormat::Secs, true),
        "helpUrl": "https://help.example/",
    });
    let Some(env) = Env::start_in(&message, lang).await.expect("start origins and browser") else {
        return;
    };
    let result = async {
        let browser = &env.browser;
        browser.goto(&env.b.url("/help")).await?;
        let state = env.help_state().await?;
        ensure!(state == "live", "the help page shows {state:?}");
        ensure!(browser.eval("return document.documentElement.lang;").await? == json!(ui));
        ensure!(browser.visible_text("#title").await? == title);
        ensure!(browser.eval("return document.title;").await? == json!(title));
        // As written (the stylesheet shows the heading in capitals).
        let heading_text = browser
            .eval("return document.getElementById('message-heading').textContent;")
            .await?;
        ensure!(heading_text == json!(heading), "heading {heading_text}");
        ensure!(browser.visible_text("#help-link").await? == help);
        ensure!(browser.visible_text("#retry").await? == refresh);
        let line = browser.visible_text("#message-expires").await?;
        // The date as this language writes it, not as English does.
        let ms = expires.timestamp_millis();
        let options = "{ dateStyle: 'medium', timeStyle: 'short' }";
        let local = browser
            .eval(&format!(
                "return new Intl.DateTimeFormat({ui:?}, {options}).format({ms});"
            ))
            .await?;
        let english = browser
            .eval(&format!(
                "return new Intl.DateTimeFormat('en-US', {options}).format({ms});"
            ))
            .await?;
        let supported = browser
            .eval(&format!(
                "return Intl.DateTimeFormat.supportedLocalesOf([{ui:?}]).length > 0;"
            ))
            .await?;
        // Where Chromium has no date names for the language, the page writes them itself.
        let local = match supported {
            Value::Bool(true) => local.as_str().unwrap_or_default().to_string(),
            _ => own_date(ui, expires),
        };
        ensure!(
            local != english.as_str().unwrap_or_default(),
            "{ui} dates written as English: {local:?}"
        );
        ensure!(
            line == valid.replace("{time}", &local),
            "expiry line {line:?}, date {local:?}"
        );
        browser.screenshot(&format!("help-{lang}-phone"), PHONE).await?;
        Ok(())
    }
    .await;
    env.finish(result).await;
}

/// The date as help.js writes it for a language the browser has no date names for (CLDR's
/// medium date and short time), in the browser's time zone.
fn own_date(ui: &str, t: chrono::DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let zone: chrono_tz::Tz = common::browser::BROWSER_TZ.parse().expect("zone");
    let t = t.with_timezone(&zone);
    let (y, d, m, hh, mm) = (t.year(), t.day(), t.month0() as usize, t.hour(), t.minute());
    match ui {
        "hy" => {
            let months = [
                "հնվ", "փտվ", "մրտ", "ապր", "մյս", "հնս", "հլս", "օգս", "սեպ", "հոկ", "նոյ", "դեկ",
            ];
            format!("{d} {}, {y} թ., {hh:02}:{mm:02}", months[m])
        }
        "kk" => {
            let months = [
                "қаң.", "ақп.", "нау.", "сәу.", "мам.", "мау.", "шіл.", "там.", "қыр.", "қаз.", "қар.", "жел.",
            ];
            format!("{y} ж. {d} {}, {hh:02}:{mm:02}", months[m])
        }
        "lv" => {
            let months = [
                "janv.", "febr.", "marts", "apr.", "maijs", "jūn.", "jūl.", "aug.", "sept.", "okt.", "nov.", "dec.",
            ];
            format!("{y}. gada {d}. {} {hh:02}:{mm:02}", months[m])
        }
        other => panic!("no own date format for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kazakh_browser_gets_the_help_page_in_kazakh() {
    help_page_in(
        "kk-KZ",
        "kk",
        "Әкімшілердің хабарламалары",
        "Әкімшілердің хабарламасы",
        "Көмек керек",
        "Қайта тексеру",
        "{time} дейін жарамды",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latvian_browser_gets_the_help_page_in_latvian() {
    help_page_in(
        "lv-LV",
        "lv",
        "Administratoru ziņojumi",
        "Administratoru ziņojums",
        "Nepieciešama palīdzība",
        "Pārbaudīt vēlreiz",
        "Spēkā līdz {time}",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_armenian_browser_gets_the_help_page_in_armenian() {
    help_page_in(
        "hy-AM",
        "hy",
        "Ադմինիստրատորների հաղորդագրություններ",
        "Հաղորդագրություն ադմինիստրատորներից",
        "Օգնություն",
        "Կրկին ստուգել",
        "Գործում է մինչև {time}",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_preferring_an_unknown_language_gets_the_first_one_it_knows() {
    // German first (no texts), then Latvian: the page and its dates are Latvian.
    help_page_in(
        "de-DE,lv",
        "lv",
        "Administratoru ziņojumi",
        "Administratoru ziņojums",
        "Nepieciešama palīdzība",
        "Pārbaudīt vēlreiz",
        "Spēkā līdz {time}",
    )
    .await;
}
