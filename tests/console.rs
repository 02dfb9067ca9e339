//! The support console over real HTTPS and a real SQLite store: nothing without a login,
//! wrong passwords and the rate limit, CSRF and cross-origin refusals, HTTP Basic on the
//! JSON API, hostile report text arriving as text, safe downloads and screenshots, sessions
//! that survive a switch to another replica, and nothing of the console on the public
//! listener. Run: `cargo test --test console`.

mod common;
use common::console as common_console;

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use common::TestServer;
use common_console::{ConsoleEnv, PASSWORD, PNG_1X1, USER, hostile_fields};
use v8help::console::{MarkGroup, StoreMarks};
use v8help::store::MarkState;

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn no_page_file_or_api_answer_without_a_login() {
    let env = ConsoleEnv::start().await;
    let id = env
        .put_report("text:x", hostile_fields(), &[("screenshot.png", PNG_1X1)])
        .await;
    for path in [
        "/".to_string(),
        "/group?key=text%3Ax".into(),
        format!("/reports/{id}"),
        format!("/reports/{id}/screenshot"),
        format!("/reports/{id}/files/0"),
        format!("/reports/{id}/archive"),
        "/failures".into(),
    ] {
        let r = env.get(&path, &[]).await;
        assert_eq!(r.status, 303, "{path} answered without a login");
        assert_eq!(r.header("location"), Some("/login"), "{path}");
        assert!(r.body.is_empty(), "{path} leaked a body");
    }
    for path in ["/api/groups", "/api/group?key=text%3Ax", &format!("/api/reports/{id}")] {
        let r = env.get(path, &[]).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic "), "{path}");
        assert!(!r.text().contains("script"), "{path}: {}", r.text());
    }
    // A made-up cookie opens nothing either.
    let r = env.get("/", &[("cookie", "__Host-v8help-console=forged")]).await;
    assert_eq!(r.status, 303);
    // The login page itself carries the strict policy.
    let r = env.get("/login", &[]).await;
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").unwrap();
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn wrong_password_is_refused_and_the_right_one_opens_a_strict_session() {
    let env = ConsoleEnv::start().await;
    let r = env
        .post_form(
            "/login",
            &[("user", USER), ("password", "wrong")],
            &[("accept-language", "en")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Wrong user name or password"), "{}", r.text());
    assert!(r.header("set-cookie").is_none());
    let r = env
        .post_form("/login", &[("user", "nobody"), ("password", PASSWORD)], &[])
        .await;
    assert_eq!(r.status, 401);

    let r = env
        .post_form("/login", &[("user", USER), ("password", PASSWORD)], &[])
        .await;
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").unwrap();
    for attr in [
        "__Host-v8help-console=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap();
    let r = env.get("/", &[("cookie", session), ("accept-language", "ru-RU")]).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Группы ошибок"), "{}", r.text());

    // Logging out ends the session for good.
    let csrf = ConsoleEnv::csrf_of(r.text());
    let r = env
        .post_form("/logout", &[("csrf", &csrf)], &[("cookie", session)])
        .await;
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(env.get("/", &[("cookie", session)]).await.status, 303);
}

#[tokio::test]
async fn repeated_failures_lock_the_name_with_429_and_retry_after() {
    let env = ConsoleEnv::start().await;
    for _ in 0..v8help::console::auth::MAX_FAILURES_PER_NAME {
        let r = env
            .post_form("/login", &[("user", USER), ("password", "guess")], &[])
            .await;
        assert_eq!(r.status, 401);
    }
    // Now even the right password is not checked.
    let r = env
        .post_form(
            "/login",
            &[("user", USER), ("password", PASSWORD)],
            &[("accept-language", "en")],
        )
        .await;
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= v8help::console::auth::WINDOW.as_secs(), "{wait}");
    assert!(r.text().contains("Too many failed logins"));
    assert!(r.header("set-cookie").is_none());
    // Basic on the API counts against the same name.
    let r = env
        .get("/api/groups", &[("authorization", &basic(USER, PASSWORD))])
        .await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn changes_without_the_csrf_token_or_from_another_origin_are_refused() {
    let env = ConsoleEnv::start().await;
    env.put_report("text:csrf", hostile_fields(), &[]).await;
    let session = env.login().await;
    let page = env.get("/group?key=text%3Acsrf", &[("cookie", &session)]).await;
    assert_eq!(page.status, 200);
    let csrf = ConsoleEnv::csrf_of(page.text());
    let form = |token: &'static str| {
        vec![
            ("key", "text:csrf"),
            ("state", "known"),
            ("note", "Известная ошибка"),
            ("csrf", token),
        ]
    };
    let r = env.post_form("/group/mark", &form(""), &[("cookie", &session)]).await;
    assert_eq!(r.status, 403, "no token");
    let r = env
        .post_form("/group/mark", &form("forged-token"), &[("cookie", &session)])
        .await;
    assert_eq!(r.status, 403, "forged token");
    let token: &'static str = Box::leak(csrf.into_boxed_str());
    let r = env
        .post_form(
            "/group/mark",
            &form(token),
            &[("cookie", &session), ("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(r.status, 403, "other origin");
    let r = env
        .post_form(
            "/group/mark",
            &form(token),
            &[("cookie", &session), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(r.status, 403, "cross-site fetch");
    let group = env.store.group("text:csrf").await.unwrap().unwrap();
    assert_eq!(group.mark, None, "a refused change changed something");

    let origin = env.origin();
    let r = env
        .post_form(
            "/group/mark",
            &form(token),
            &[("cookie", &session), ("origin", &origin)],
        )
        .await;
    assert_eq!(r.status, 303);
    let mark = env.store.group("text:csrf").await.unwrap().unwrap().mark.unwrap();
    assert_eq!(
        (mark.state, mark.note.as_str(), mark.by.as_str()),
        (MarkState::Known, "Известная ошибка", USER)
    );
    // A login form posted from another site is refused too (login CSRF).
    let r = env
        .post_form(
            "/login",
            &[("user", USER), ("password", PASSWORD)],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn the_json_api_takes_http_basic_for_scripts() {
    let env = ConsoleEnv::start().await;
    let id = env.put_report("app:abc", hostile_fields(), &[]).await;
    let auth = basic(USER, PASSWORD);
    let r = env.get("/api/groups", &[("authorization", &auth)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
    let groups = r.json();
    assert_eq!(groups[0]["group"]["key"], "app:abc");
    assert_eq!(groups[0]["group"]["count"], 1);
    assert_eq!(groups[0]["per_hour"].as_array().unwrap().len(), 24);
    assert_eq!(groups[0]["per_hour"][23], 1);

    let r = env
        .get("/api/group/reports?key=app%3Aabc", &[("authorization", &auth)])
        .await;
    assert_eq!(r.json()[0]["id"], id);
    let r = env
        .get(&format!("/api/reports/{id}"), &[("authorization", &auth)])
        .await;
    assert_eq!(r.json()["fields"]["user_name"], "<script>alert('user')</script>");

    let bad = basic(USER, "nope");
    assert_eq!(env.get("/api/groups", &[("authorization", &bad)]).await.status, 401);
    // Basic opens the API only, not the pages.
    assert_eq!(env.get("/", &[("authorization", &auth)]).await.status, 303);

    let mark = |body: &'static str, ct: &'static str| {
        let auth = auth.clone();
        let env = &env;
        async move {
            env.send(
                "POST",
                "/api/mark",
                &[("authorization", &auth), ("content-type", ct)],
                Bytes::from_static(body.as_bytes()),
            )
            .await
        }
    };
    let r = mark(
        r#"{"key":"app:abc","state":"fixed","note":"8.3.18.1200"}"#,
        "text/plain",
    )
    .await;
    assert_eq!(r.status, 415, "a body a cross-site form could send");
    let r = mark(r#"{"key":"app:abc","state":"sideways"}"#, "application/json").await;
    assert_eq!(r.status, 400);
    let r = mark(r#"{"key":"app:none","state":"known"}"#, "application/json").await;
    assert_eq!(r.status, 404);
    let r = mark(
        r#"{"key":"app:abc","state":"fixed","note":"8.3.18.1200"}"#,
        "application/json",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = env.store.group("app:abc").await.unwrap().unwrap().mark.unwrap();
    assert_eq!((m.state, m.note.as_str()), (MarkState::Fixed, "8.3.18.1200"));
    let r = mark(r#"{"key":"app:abc","state":"none"}"#, "application/json").await;
    assert_eq!(r.status, 200);
    assert_eq!(env.store.group("app:abc").await.unwrap().unwrap().mark, None);
}

#[tokio::test]
async fn hostile_report_text_arrives_as_text_and_files_are_downloads() {
    let env = ConsoleEnv::start().await;
    let id = env
        .put_report(
            "text:hostile",
            hostile_fields(),
            &[
                ("screenshot.png", PNG_1X1),
                ("files/evil\"name<b>.html", b"<script>alert(1)</script>"),
            ],
        )
        .await;
    let session = env.login().await;
    let cookie = [("cookie", session.as_str()), ("accept-language", "en")];
    for path in [
        "/".to_string(),
        "/group?key=text%3Ahostile".into(),
        format!("/reports/{id}"),
    ] {
        let r = env.get(&path, &cookie).await;
        assert_eq!(r.status, 200, "{path}");
        let html = r.text();
        assert!(!html.contains("<script"), "{path}: {html}");
        assert!(!html.contains("<img src=x"), "{path}: {html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert('error')&gt;") || html.contains("&lt;script&gt;"),
            "{path}: {html}"
        );
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .starts_with("default-src 'none'")
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let report = env.get(&format!("/reports/{id}"), &cookie).await;
    assert!(report.text().contains(&format!("src=\"/reports/{id}/screenshot\"")));

    let shot = env.get(&format!("/reports/{id}/screenshot"), &cookie).await;
    assert_eq!(shot.status, 200);
    assert_eq!(shot.header("content-type"), Some("image/png"));
    assert_eq!(&shot.body[..], PNG_1X1);

    let file = env.get(&format!("/reports/{id}/files/2"), &cookie).await;
    assert_eq!(file.status, 200);
    assert_eq!(file.header("content-type"), Some("application/octet-stream"));
    let disposition = file.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"evil_name_b_.html\""),
        "{disposition}"
    );
    assert_eq!(&file.body[..], b"<script>alert(1)</script>");

    let archive = env.get(&format!("/reports/{id}/archive"), &cookie).await;
    assert_eq!(archive.status, 200);
    assert_eq!(
        archive.body,
        env.store.archive(id).await.unwrap().unwrap(),
        "the archive is the stored one, byte for byte"
    );
    assert!(
        archive
            .header("content-disposition")
            .unwrap()
            .contains(&format!("report-{id}.zip"))
    );

    // A "screenshot" that is really HTML is not served as anything a browser would render.
    let mut fields = hostile_fields();
    fields.screenshot = Some("screenshot.png".into());
    let fake = env
        .put_report(
            "text:fake",
            fields,
            &[("screenshot.png", b"<html><script>alert(1)</script>")],
        )
        .await;
    let r = env.get(&format!("/reports/{fake}/screenshot"), &cookie).await;
    assert_eq!(r.status, 415);
    assert_ne!(r.header("content-type"), Some("text/html; charset=utf-8"));
}

#[tokio::test]
async fn a_session_survives_a_switch_to_another_replica_and_a_removed_user_is_out() {
    let first = ConsoleEnv::start().await;
    first.put_report("text:shared", hostile_fields(), &[]).await;
    let session = first.login().await;
    // The other replica opens the database on its own, as another process would.
    let store = v8help::store::open(&format!("sqlite:{}", first.dir.path().join("reports.db").display())).unwrap();
    let marks: Arc<dyn MarkGroup> = Arc::new(StoreMarks(store.clone()));
    let second = ConsoleEnv::start_with(first.dir.clone(), first.pki.clone(), store, marks).await;
    assert_ne!(first.addr, second.addr);
    let r = second.get("/", &[("cookie", &session)]).await;
    assert_eq!(r.status, 200, "the other replica did not know the session");

    let mut users = v8help::users::Users::read(&first.users).unwrap();
    users.remove(USER);
    users.write(&first.users).unwrap();
    assert_eq!(second.get("/", &[("cookie", &session)]).await.status, 303);
}

#[tokio::test]
async fn nothing_of_the_console_is_served_on_the_public_listener() {
    let public = TestServer::start(None, |c| c.http_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    for path in [
        "/login",
        "/console.css",
        "/group?key=x",
        "/reports/1",
        "/reports/1/archive",
        "/failures",
        "/api/groups",
        "/api/reports/1",
    ] {
        let r = public.get(path, &[]).await;
        assert_eq!(r.status, 404, "https {path}");
        let r = common::http_get(public.http.unwrap(), path).await;
        assert_eq!(r.status, 404, "http {path}");
    }
}

#[tokio::test]
async fn the_login_failures_page_shows_the_base_address_each_client_used() {
    let env = ConsoleEnv::start().await;
    let event = |base: Option<&str>| v8help::store::LoginFailure {
        at: chrono::Utc::now(),
        client_addr: Some("10.0.0.7:51000".into()),
        user_agent: Some("1CV8C/8.3.24".into()),
        body: b"{}".to_vec(),
        base: base.map(str::to_string),
    };
    env.store
        .put_login_failures(vec![
            event(Some("erp")),
            event(Some("erp")),
            event(Some("<hr>")),
            event(None),
        ])
        .await
        .unwrap();
    let session = env.login().await;
    let r = env
        .get("/failures", &[("cookie", &session), ("accept-language", "en")])
        .await;
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(
        page.contains("<td class=\"base\">erp</td><td class=\"num\">2</td>"),
        "{page}"
    );
    assert!(
        page.contains("<td class=\"base\">(root address)</td><td class=\"num\">1</td>"),
        "{page}"
    );
    // A base name is text, never markup.
    assert!(page.contains("&lt;hr&gt;") && !page.contains("<hr>"), "{page}");
    assert_eq!(page.matches("10.0.0.7:51000").count(), 4, "{page}");
}
