//! One export call per request (`dispatch.handle`, wit/handler.wit): every
//! SDK's components export it and the host uses it; a component built
//! before it (only `request-handler`, as those already in users' version
//! stores) is still served, with the four calls and Tornado's semantics.
//! That the lifecycle through `dispatch` keeps Tornado's semantics is what
//! the SDK and example tests (lifecycle, python, js, c, sdk_reuse,
//! examples) check, unchanged.

use std::path::{Path, PathBuf};

use waterspout::runtime::{Components, Prepared, WasmEngine};
use waterspout_tests::guests;
use waterspout_tests::harness::TestServer;

/// The component the app in `dir` serves at its first route.
fn app_wasm(dir: &str) -> PathBuf {
    let manifest = waterspout::Manifest::load(Path::new(dir)).unwrap();
    let route = manifest.routes.first().expect("a route");
    manifest
        .handler(&route.handler)
        .expect("the route's handler")
        .wasm
        .clone()
}

/// Whether the component at `wasm` is a handler-world one exporting `dispatch`.
fn dispatches(components: &Components, wasm: &Path) -> bool {
    let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    match components.prepare(&bytes) {
        Ok((_, Prepared::Handler(pre))) => pre.dispatches(),
        Ok(_) => panic!("{} is not a handler-world component", wasm.display()),
        Err(e) => panic!("{}: {e}", wasm.display()),
    }
}

#[test]
fn every_sdk_exports_dispatch_and_the_old_shape_does_not() {
    let engine = WasmEngine::new(&Default::default()).unwrap();
    let components = Components::new(&engine).unwrap();
    for app in [
        guests::HELLO_APP,
        guests::C_HELLO_APP,
        guests::PYTHON_HELLO_APP,
        guests::JS_HELLO_APP,
    ] {
        assert!(dispatches(&components, &app_wasm(app)), "{app} lacks dispatch");
    }
    assert!(!dispatches(&components, Path::new(guests::FOUR_CALLS_WASM)));
}

#[tokio::test]
async fn a_component_without_dispatch_gets_the_four_calls() {
    let server = TestServer::start(guests::FOUR_CALLS_APP).await;
    assert_eq!(server.get_text("/").await, (200, "initialize prepare get".into()));
    // prepare finished the response: the verb is skipped.
    assert_eq!(
        server.get_text("/in-prepare").await,
        (200, "initialize prepare".into())
    );
    // An http-error from the verb: the host resets the response and calls
    // write-error with its status and reason.
    let r = server.get("/error").await;
    assert_eq!(r.status(), 418);
    assert_eq!(
        r.text().await.unwrap(),
        "418 Teapot after: initialize prepare get write-error"
    );
    // A method Tornado does not support: 405 through write-error.
    let r = server
        .client
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.text().await.unwrap(),
        "405 Method Not Allowed after: initialize write-error"
    );
    // One instance (max_instances = 1, reused): on-finish ran after each of
    // the four requests above.
    assert_eq!(server.get_text("/finished").await, (200, "4".into()));
    server.shutdown().await;
}
