//! The console on the admin listener, over real sockets: signing in, the
//! session cookie, CSRF on every change, the event stream, signing out.
//! (The page itself is driven in headless Chromium: `console_browser`.)

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use waterspout_tests::guests;
use waterspout_tests::harness::{ADMIN_TOKEN, TestServer, admin_config, read_wasm, start_version_a};

/// Signs in; returns the `Cookie` header value and the CSRF token.
async fn sign_in(server: &TestServer) -> (String, String) {
    let response = server
        .client
        .post(server.admin_url("/console/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(part), "{set_cookie} lacks {part}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("ws_console=") && cookie.len() > 40, "{cookie}");
    let session: Value = server
        .client
        .get(server.admin_url("/console/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = session["csrf_token"].as_str().expect("a CSRF token").to_owned();
    (cookie, csrf)
}

fn with_session(server: &TestServer, method: Method, path: &str, cookie: &str) -> reqwest::RequestBuilder {
    server
        .client
        .request(method, server.admin_url(path))
        .header("cookie", cookie)
}

#[tokio::test]
async fn the_pages_need_a_session_and_carry_a_strict_policy() {
    let server = start_version_a(admin_config()).await;
    let get = |path: &str| server.client.get(server.admin_url(path)).send();

    let response = get("/").await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "no cookie: to the sign-in page"
    );
    assert_eq!(response.headers()["location"], "/console/login");

    let response = get("/console/login").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(
        html.contains("action=\"/console/login\"") && !html.contains("<script>"),
        "{html}"
    );

    let response = get("/console/console.js").await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let response = get("/console/console.css").await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/css; charset=utf-8");

    // A wrong token: 401, the form again with the reason, no cookie.
    let response = server
        .client
        .post(server.admin_url("/console/login"))
        .form(&[("token", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.text().await.unwrap().contains("Wrong admin token"));

    for path in ["/console/session", "/console/events", "/handlers"] {
        assert_eq!(
            get(path).await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    // A made-up session id is no session.
    let response = with_session(&server, Method::GET, "/", "ws_console=00ff")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let (cookie, _) = sign_in(&server).await;
    let response = with_session(&server, Method::GET, "/", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("<script src=\"/console/console.js\""), "{html}");
    server.shutdown().await;
}

#[tokio::test]
async fn every_change_needs_the_session_and_its_csrf_token() {
    let server = start_version_a(admin_config()).await;
    let (cookie, csrf) = sign_in(&server).await;
    let b = read_wasm(guests::VERSION_B_WASM);

    // Reading needs only the session.
    let response = with_session(&server, Method::GET, "/handlers", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // An upload with the cookie but no CSRF token, or a wrong one: 403, nothing changes.
    let upload =
        || with_session(&server, Method::POST, "/handlers/version/versions", &cookie).body(b.clone());
    let response = upload().send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("missing CSRF token"));
    let response = upload()
        .header("x-csrf-token", "0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("wrong CSRF token"));
    // Without the cookie, the CSRF token alone is nothing.
    let response = server
        .client
        .post(server.admin_url("/handlers/version/versions"))
        .header("x-csrf-token", &csrf)
        .body(b.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.get_text("/").await,
        (200, "a".into()),
        "nothing was deployed"
    );

    // Cookie + CSRF: the same upload goes through the admin API's path.
    let response = upload().header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(server.get_text("/").await, (200, "b".into()));

    // Rollback and routes: refused without the token, done with it.
    let rollback = || with_session(&server, Method::POST, "/handlers/version/rollback", &cookie);
    assert_eq!(rollback().send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(server.get_text("/").await, (200, "b".into()));
    assert_eq!(
        rollback()
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(server.get_text("/").await, (200, "a".into()));

    let routes = serde_json::json!({ "routes": [{ "pattern": "/moved", "handler": "version" }] });
    let put = || with_session(&server, Method::PUT, "/routes", &cookie).json(&routes);
    assert_eq!(put().send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(server.get_text("/").await.0, 200);
    // The manifest's validation answers the console too.
    let bad = serde_json::json!({ "routes": [{ "pattern": "/x", "handler": "nope" }] });
    let response = with_session(&server, Method::PUT, "/routes", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("nope"));
    assert_eq!(
        put().header("x-csrf-token", &csrf).send().await.unwrap().status(),
        200
    );
    assert_eq!(server.get_text("/moved").await, (200, "a".into()));

    // The bearer token keeps working for the CLI.
    let response = server.admin(Method::GET, "/handlers").send().await.unwrap();
    assert_eq!(response.status(), 200);
    server.shutdown().await;
}

/// Reads the event stream until `want` appears in it (10 s at most).
async fn read_until(
    response: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    seen: &mut String,
    want: &str,
) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(want) {
            let chunk = response
                .next()
                .await
                .expect("the stream goes on")
                .expect("a chunk");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {want:?} in the event stream within 10 s; got: {seen}"));
}

#[tokio::test]
async fn the_event_stream_counts_requests_and_ends_at_sign_out() {
    let server = start_version_a(admin_config()).await;
    let (cookie, csrf) = sign_in(&server).await;
    let response = with_session(&server, Method::GET, "/console/events", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "event: stats\ndata: ").await;
    read_until(&mut stream, &mut seen, "\n\n").await;
    assert!(seen.contains("\"name\":\"version\""), "{seen}");
    assert!(seen.contains("\"limits\":{"), "{seen}");

    // Requests while watching: a later `stats` event counts them, with a rate.
    for _ in 0..5 {
        assert_eq!(server.get_text("/").await.0, 200);
    }
    seen.clear();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            read_until(&mut stream, &mut seen, "event: stats\ndata: ").await;
            let start = seen.rfind("event: stats\ndata: ").unwrap() + "event: stats\ndata: ".len();
            read_until(&mut stream, &mut seen, "\n\n").await;
            let end = start + seen[start..].find("\n\n").unwrap();
            let stats: Value = serde_json::from_str(&seen[start..end]).unwrap();
            let version = stats["handlers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["name"] == "version")
                .unwrap()
                .clone();
            if version["requests"].as_u64().unwrap() >= 5
                && version["window"]["requests_per_s"].as_f64().is_some()
            {
                assert!(version["by_class"][1].as_u64().unwrap() >= 5, "{version}");
                break;
            }
            seen.clear();
        }
    })
    .await
    .expect("the stats counted the requests within 10 s");

    // Signing out: refused without CSRF; with it the session ends, and so does the stream.
    let logout = || with_session(&server, Method::POST, "/console/logout", &cookie);
    assert_eq!(logout().send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let response = logout().header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    read_until(&mut stream, &mut seen, "event: signed-out").await;

    let response = with_session(&server, Method::GET, "/handlers", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the old cookie is no session"
    );
    let response = with_session(&server, Method::POST, "/handlers/version/rollback", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    server.shutdown().await;
}
