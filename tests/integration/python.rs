//! The Python SDK (`guest-sdk/python`): the shared example cases against the
//! Python ports of hello, requests and echo, and what only Python shows —
//! several handler classes in one component, `async def` verbs, `HTTPError`
//! with a reason, uncaught exceptions kept out of the response.

use waterspout_tests::guests;
use waterspout_tests::harness::{ServerProcess, TestServer};

use crate::examples::{check, echo, hello, requests};

#[tokio::test]
async fn python_hello() {
    check(guests::PYTHON_HELLO_APP, hello).await;
}

#[tokio::test]
async fn python_requests() {
    check(guests::PYTHON_REQUESTS_APP, requests).await;
}

#[tokio::test]
async fn python_echo() {
    check(guests::PYTHON_ECHO_APP, echo).await;
}

#[tokio::test]
async fn python_verbs_default_to_405() {
    let server = TestServer::start(guests::PYTHON_HELLO_APP).await;
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = server
            .client
            .request(method.clone(), server.url("/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(
            r.text().await.unwrap(),
            "<html><title>405: Method Not Allowed</title><body>405: Method Not Allowed</body></html>"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn one_python_component_holds_several_handler_classes() {
    let server = TestServer::start(guests::PYTHON_HANDLERS_APP).await;
    assert_eq!(server.get_text("/").await, (200, "main handler".into()));
    // The class's initialize(prefix) gets the route's settings; the
    // positional group is the verb's argument.
    assert_eq!(server.get_text("/items/7").await, (200, "item #7".into()));
    // Named groups arrive as keyword arguments; a dict is written as JSON.
    let r = server.get("/users/ann/posts/3").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json; charset=UTF-8");
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json, serde_json::json!({"user": "ann", "post": "3"}));
    // A route naming no class, in a module with several: a 500, not a guess.
    assert_eq!(server.get_text("/unnamed").await.0, 500);
    server.shutdown().await;
}

#[tokio::test]
async fn python_async_verbs_run_to_completion() {
    let server = TestServer::start(guests::PYTHON_HANDLERS_APP).await;
    assert_eq!(server.get_text("/async").await, (200, "awaited 3 steps".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn python_http_error_and_send_error_carry_their_reason() {
    let server = TestServer::start(guests::PYTHON_HANDLERS_APP).await;
    let r = server.get("/teapot").await;
    assert_eq!(r.status(), 418);
    assert_eq!(r.status().canonical_reason(), Some("I'm a teapot"));
    let body = r.text().await.unwrap();
    assert_eq!(
        body,
        "<html><title>418: I Am A Teapot</title><body>418: I Am A Teapot</body></html>"
    );
    // The log message stays in the log.
    assert!(!body.contains("log detail"), "{body}");
    let r = server.get("/maintenance").await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.text().await.unwrap(),
        "<html><title>503: Down For Maintenance</title><body>503: Down For Maintenance</body></html>"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_python_exception_is_a_500_with_the_traceback_only_in_the_log() {
    let server = ServerProcess::on_own_store(guests::PYTHON_HANDLERS_APP, &[]);
    let (status, body) = server.get_text("/crash").await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "<html><title>500: Internal Server Error</title><body>500: Internal Server Error</body></html>"
    );
    let log = server.wait_for_log("Traceback");
    assert!(log.contains("KeyError: 'missing key'"), "{log}");
    assert!(log.contains("CrashHandler.get"), "{log}");
    // The handler's exceptions never reach the guest's trap path.
    assert!(!log.contains("trapped"), "{log}");
}
