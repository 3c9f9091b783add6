//! The example apps every guest language implements — `hello`, `requests`,
//! `echo` — and one table of cases they must all pass: a language's examples
//! are tested by calling these with its app directories, so every SDK is held
//! to the assertions the Rust examples pass.

use futures_util::SinkExt as _;
use tokio_tungstenite::tungstenite::Message;
use waterspout_tests::guests;
use waterspout_tests::harness::TestServer;
use waterspout_tests::harness::websocket::*;

/// The seed's hello: `GET /` → 200 `Hello, world` as Tornado's default HTML type.
pub(crate) async fn hello(server: &TestServer) {
    let response = server.get("/").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=UTF-8");
    assert!(headers["server"].to_str().unwrap().starts_with("Waterspout/"));
    assert_eq!(response.text().await.unwrap(), "Hello, world");
}

/// The standard wasi:http hellos (no SDK, so no Tornado defaults): any path
/// → 200 `Hello, world` as plain text, again and again.
pub(crate) async fn wasi_hello(server: &TestServer) {
    for path in ["/", "/any/path?x=1", "/"] {
        let r = server.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8", "{path}");
        assert_eq!(r.text().await.unwrap(), "Hello, world", "{path}");
    }
}

/// The request/response tour (`examples/requests/waterspout.toml` lists
/// the routes): arguments, JSON in and out, path arguments, redirect,
/// cookies, a custom JSON error page, forms and uploads, flushed chunks.
pub(crate) async fn requests(server: &TestServer) {
    let r = server.get("/greet?name=Ann").await;
    assert_eq!(r.headers()["x-prepared"], "1");
    assert_eq!(r.text().await.unwrap(), "Hello, Ann");
    // get_argument with no default: MissingArgumentError → 400, through the
    // example's own write_error (JSON).
    let (status, body) = server.get_text("/greet").await;
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], 400);
    assert_eq!(json["reason"], "Missing argument name");

    let r = server
        .client
        .post(server.url("/json"))
        .header("content-type", "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json, serde_json::json!({"a": 1, "echoed": true}));
    let r = server
        .client
        .post(server.url("/json"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    assert_eq!(server.get_text("/items/42").await, (200, "item 42".into()));
    assert_eq!(
        server.get_text("/users/j%C3%BCrgen").await,
        (200, "user jürgen".into())
    );
    // Anchored at both ends: no partial matches.
    assert_eq!(server.get_text("/items/42/more").await.0, 404);
    assert_eq!(server.get_text("/items/x").await.0, 404);
    let r = server.get("/old").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/new");
    assert_eq!(
        server.get_text("/new").await,
        (200, "This is the new page".into())
    );

    let r = server.get("/cookie/set?value=mint").await;
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("flavor=mint"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    let r = server
        .client
        .get(server.url("/cookie/get"))
        .header("cookie", "flavor=mint")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "flavor: mint");
    assert_eq!(server.get_text("/cookie/get").await.1, "no flavor");

    let r = server.get("/fail").await;
    assert_eq!(r.status(), 418);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        json,
        serde_json::json!({"status": 418, "reason": "Teapot Refuses Coffee"})
    );
    let r = server
        .client
        .post(server.url("/form?q=1"))
        .form(&[("title", "hi there"), ("tag", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["fields"]["title"], "hi there", "{json}");

    let form = reqwest::multipart::Form::new().text("title", "upload").part(
        "doc",
        reqwest::multipart::Part::bytes(b"0123456789".to_vec())
            .file_name("notes.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let r = server
        .client
        .post(server.url("/form"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["fields"]["title"], "upload", "{json}");
    assert_eq!(json["files"][0]["filename"], "notes.txt", "{json}");
    assert_eq!(json["files"][0]["size"], 10, "{json}");

    // A malformed multipart body is a 400 before prepare (the example's JSON error page).
    let r = server
        .client
        .post(server.url("/form"))
        .header("content-type", "multipart/form-data; boundary=XX")
        .body("--XX\r\nno end of headers")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["status"], 400);
    let r = server.get("/stream?n=3").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(r.text().await.unwrap(), "chunk 0\nchunk 1\nchunk 2\n");
}

/// The WebSocket echo: text and binary come back unchanged, `count` counts
/// this connection's messages, `close` closes with 1000 `bye`.
pub(crate) async fn echo(server: &TestServer) {
    let mut ws = connect(server, "/echo").await;
    send_text(&mut ws, "hello, waterspout").await;
    assert_eq!(text(&mut ws).await, "hello, waterspout");
    let unicode = "héllo wörld ✓ 🌊";
    send_text(&mut ws, unicode).await;
    assert_eq!(text(&mut ws).await, unicode);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    ws.send(Message::binary(bytes.clone())).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(bytes));
    ws.send(Message::binary(Vec::new())).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(Vec::new()));
    // The instance lives as long as the connection: its counter too.
    send_text(&mut ws, "count").await;
    assert_eq!(text(&mut ws).await, "5");
    send_text(&mut ws, "count").await;
    assert_eq!(text(&mut ws).await, "6");
    // Another connection has its own instance.
    let mut other = connect(server, "/echo").await;
    send_text(&mut other, "count").await;
    assert_eq!(text(&mut other).await, "1");
    send_text(&mut ws, "count").await;
    assert_eq!(text(&mut ws).await, "7");
    // The example's own close: 1000 "bye".
    send_text(&mut ws, "close").await;
    assert_eq!(close_of(&mut ws).await, (1000, "bye".into()));
    ends(&mut ws).await;
    other.close(None).await.unwrap();
}

/// Serves `app` and runs `cases` against it.
pub(crate) async fn check(app: &str, cases: impl AsyncFnOnce(&TestServer)) {
    let server = TestServer::start(app).await;
    cases(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn rust_hello() {
    check(guests::HELLO_APP, hello).await;
}

#[tokio::test]
async fn rust_requests() {
    check(guests::REQUESTS_APP, requests).await;
}

#[tokio::test]
async fn rust_echo() {
    check(guests::ECHO_APP, echo).await;
}
