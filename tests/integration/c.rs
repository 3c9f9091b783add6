//! The C SDK (`guest-sdk/c`): its examples, built from source by
//! `tests/build.rs` with the manifest's `build` line (clang for wasm32-wasi,
//! then `wasm-tools component new` with the reactor adapter), run through the
//! shared cases of `examples.rs`, plus a test of the second handler class.

use waterspout_tests::guests;
use waterspout_tests::harness::TestServer;

use crate::examples::{check, echo, hello, requests};

#[tokio::test]
async fn c_hello() {
    check(guests::C_HELLO_APP, hello).await;
}

#[tokio::test]
async fn c_requests() {
    check(guests::C_REQUESTS_APP, requests).await;
}

#[tokio::test]
async fn c_echo() {
    check(guests::C_ECHO_APP, echo).await;
}

/// The second handler class of the same component (`class = "GreetHandler"`):
/// `ws_get_argument` as Tornado's `get_argument`, `ws_missing_argument` as its
/// `MissingArgumentError` on the default error page, and the verbs a class
/// leaves out answering 405.
#[tokio::test]
async fn c_greet_argument() {
    check(guests::C_HELLO_APP, async |server: &TestServer| {
        assert_eq!(
            server.get_text("/greet?name=Ann").await,
            (200, "Hello, Ann".into())
        );
        // The last value wins; control characters become spaces, then stripped.
        assert_eq!(
            server.get_text("/greet?name=x&name=%20B%C3%B6b%01").await,
            (200, "Hello, Böb".into())
        );
        let r = server.get("/greet").await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "text/html; charset=UTF-8");
        assert_eq!(
            r.text().await.unwrap(),
            "<html><title>400: Missing argument name</title>\
             <body>400: Missing argument name</body></html>"
        );
        // MainHandler serves only GET.
        let r = server.client.post(server.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 405);
        assert_eq!(
            r.text().await.unwrap(),
            "<html><title>405: Method Not Allowed</title>\
             <body>405: Method Not Allowed</body></html>"
        );
    })
    .await;
}

/// The host services from c (`examples/c/services`): kv, the
/// host's timer, the http client (see `services::check_services_example`).
#[tokio::test]
async fn c_services() {
    crate::services::check_services_example(guests::C_SERVICES_APP, "ms=50").await;
}
