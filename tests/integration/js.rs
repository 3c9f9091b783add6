//! The JavaScript SDK (`guest-sdk/js`): the shared example cases against the
//! JS apps in `examples/js/`, and what only the JS SDK does — async methods,
//! exceptions, several classes in one component, and components built with
//! componentize-js's default options (which import wasi:http).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use waterspout_tests::guests;
use waterspout_tests::harness::{ServerProcess, TestServer, app_with_manifest, read_wasm};

use crate::examples::{check, echo, hello, requests};

#[tokio::test]
async fn js_hello() {
    check(guests::JS_HELLO_APP, hello).await;
}

#[tokio::test]
async fn js_requests() {
    check(guests::JS_REQUESTS_APP, requests).await;
}

#[tokio::test]
async fn js_echo() {
    check(guests::JS_ECHO_APP, echo).await;
}

/// The built `examples/js/async` component.
fn async_wasm() -> String {
    Path::new(guests::JS_ASYNC_APP)
        .join("../../target/js/async.wasm")
        .display()
        .to_string()
}

#[tokio::test]
async fn an_async_verb_is_awaited_timers_included() {
    let server = TestServer::start(guests::JS_ASYNC_APP).await;
    let r = server.get("/sleep?ms=30").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        json,
        serde_json::json!({"slept": 30, "path": "/sleep", "waited": true})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_http_error_sets_status_and_reason_sync_or_after_an_await() {
    let server = TestServer::start(guests::JS_ASYNC_APP).await;
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let r = server
            .client
            .request(method.clone(), server.url("/conflict"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409, "{method}");
        assert_eq!(
            r.text().await.unwrap(),
            "<html><title>409: Already There</title><body>409: Already There</body></html>",
            "{method}"
        );
    }
    // sendError: the error page replaces what was written, before and after.
    let (status, body) = server.get_text("/maintenance").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "<html><title>503: Down For Maintenance</title><body>503: Down For Maintenance</body></html>"
    );
    // An unimplemented verb is a 405, as in Tornado.
    let r = server.client.delete(server.url("/sleep")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    server.shutdown().await;
}

#[tokio::test]
async fn an_uncaught_exception_is_a_500_with_the_stack_only_in_the_log() {
    let server = ServerProcess::on_own_store(guests::JS_ASYNC_APP, &[]);
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let r = server
            .client
            .request(method.clone(), server.url("/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500, "{method}");
        let body = r.text().await.unwrap();
        assert_eq!(
            body,
            "<html><title>500: Internal Server Error</title><body>500: Internal Server Error</body></html>"
        );
    }
    let log = server.wait_for_log("secret detail from an async method");
    assert!(
        log.contains(
            "uncaught exception in BoomHandler.get: Error: secret detail: the database password is hunter2"
        ),
        "{log}"
    );
    // The stack: the method's frame, in the bundle.
    assert!(log.contains("get@bundle.js:"), "{log}");
    // The instance is fresh for the next request.
    assert_eq!(server.get_text("/sleep?ms=1").await.0, 200);
}

#[tokio::test]
async fn each_route_picks_its_class_and_an_unknown_class_is_a_500() {
    // One component, a class per route: the requests example serves eleven.
    let server = TestServer::start(guests::JS_REQUESTS_APP).await;
    assert_eq!(server.get_text("/items/7").await, (200, "item 7".into()));
    assert_eq!(server.get_text("/users/ann").await, (200, "user ann".into()));
    assert_eq!(
        server.get_text("/new").await,
        (200, "This is the new page".into())
    );
    // A class not defined for GET (JsonHandler serves POST only).
    let (status, body) = server.get_text("/json").await;
    assert_eq!(status, 405);
    assert_eq!(body, r#"{"status":405,"reason":"Method Not Allowed"}"#);
    server.shutdown().await;

    let server = TestServer::start(guests::JS_ASYNC_APP).await;
    let (status, body) = server.get_text("/no-such-class").await;
    assert_eq!(status, 500);
    assert!(!body.contains("NoSuchHandler"), "{body}");
    // The other routes of the same component are unaffected.
    assert_eq!(server.get_text("/sleep?ms=1").await.0, 200);
    server.shutdown().await;
}

/// A loopback upstream answering 204 that counts its connections.
async fn counting_upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn a_default_options_build_loads_and_its_fetch_is_denied_unless_allowed() {
    // Built with componentize-js's defaults, the component imports wasi:http.
    let wasm = read_wasm(&async_wasm());
    let imports_http = wasm.windows(18).any(|w| w == b"wasi:http/types@0.");
    assert!(imports_http, "the default build should import wasi:http");

    let (up, connections) = counting_upstream().await;
    let server = TestServer::start(guests::JS_ASYNC_APP).await;
    let (status, body) = server.get_text(&format!("/fetch?url=http://{up}/")).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("error: "), "{body}");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a denied fetch connected");
    server.shutdown().await;

    // The same component with the upstream's host allowed reaches it.
    let dir = app_with_manifest(&format!(
        "[[route]]\npattern = \"/fetch\"\nhandler = \"async\"\nclass = \"FetchHandler\"\n\n\
         [handler.async]\nwasm = {:?}\nallowed_outbound_hosts = [\"127.0.0.1\"]\n",
        async_wasm()
    ));
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    let (status, body) = server.get_text(&format!("/fetch?url=http://{up}/")).await;
    assert_eq!((status, body.as_str()), (200, "fetched 204"));
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn websocket_open_refuses_selects_a_subprotocol_writes_json_and_pings() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use waterspout_tests::harness::websocket::{STEP, connect, next, raw_request};

    let server = TestServer::start(guests::JS_ROOMS_APP).await;
    // An HTTPError thrown by an async `open` refuses the handshake.
    let (_, refused) = raw_request(&server, "GET", "/rooms/secret", &[]).await;
    assert_eq!(refused.status, 403);
    let (_stream, accepted) = raw_request(
        &server,
        "GET",
        "/rooms/lobby",
        &["Sec-WebSocket-Protocol: rooms.v0, rooms.v1"],
    )
    .await;
    assert_eq!(accepted.status, 101);
    assert_eq!(
        accepted.header("sec-websocket-protocol").as_deref(),
        Some("rooms.v1")
    );

    let mut ws = connect(&server, "/rooms/lobby").await;
    ws.send(Message::text("hello")).await.unwrap();
    let Message::Text(reply) = next(&mut ws).await else {
        panic!("a text reply")
    };
    let json: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"room": "lobby", "kind": "text", "size": 5, "path": "/rooms/lobby", "agent": null})
    );
    ws.send(Message::binary(vec![0u8; 3])).await.unwrap();
    let Message::Text(reply) = next(&mut ws).await else {
        panic!("a text reply")
    };
    let json: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        (json["kind"].as_str(), json["size"].as_u64()),
        (Some("binary"), Some(3))
    );
    ws.send(Message::text("ping")).await.unwrap();
    let ping = tokio::time::timeout(STEP, ws.next())
        .await
        .expect("a ping in time")
        .unwrap()
        .unwrap();
    assert_eq!(ping, Message::Ping(vec![1u8, 2].into()));
    ws.close(None).await.unwrap();
    server.shutdown().await;
}

/// The host services from js (`examples/js/services`): kv, the
/// host's timer, the http client (see `services::check_services_example`).
#[tokio::test]
async fn js_services() {
    crate::services::check_services_example(guests::JS_SERVICES_APP, "s=0.05").await;
}
