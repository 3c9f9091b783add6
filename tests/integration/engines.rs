//! The two engines (host/src/runtime/engine.rs): a component without the
//! component model's async ABI is compiled for the main engine, whose
//! stores have wasmtime's concurrency support off; a WASI 0.3 component
//! for the concurrent one. Both serve beside each other in one server.

use std::path::Path;

use waterspout::runtime::{Components, WasmEngine};
use waterspout_tests::guests;
use waterspout_tests::harness::{TestServer, hello_and_wasi_http3_app};

/// The component the app in `dir` serves at its first route.
fn app_wasm(dir: &str) -> String {
    let manifest = waterspout::Manifest::load(Path::new(dir)).unwrap();
    let route = manifest.routes.first().expect("a route");
    let wasm = &manifest
        .handler(&route.handler)
        .expect("the route's handler")
        .wasm;
    wasm.to_str().unwrap().to_owned()
}

/// Compiles the component at `wasm` and tells which engine took it.
fn compiled_for_main(components: &Components, engine: &WasmEngine, wasm: &str) -> bool {
    let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("{wasm}: {e}"));
    let (_, prepared) = components
        .prepare(&bytes)
        .unwrap_or_else(|e| panic!("{wasm}: {e}"));
    let main = wasmtime::Engine::same(prepared.engine(), &engine.engine);
    let concurrent = engine
        .concurrent()
        .is_ok_and(|concurrent| wasmtime::Engine::same(prepared.engine(), concurrent));
    assert!(main != concurrent, "{wasm}: compiled for neither engine");
    main
}

#[test]
fn only_components_with_the_async_abi_are_compiled_for_the_concurrent_engine() {
    let engine = WasmEngine::new(&Default::default()).unwrap();
    let components = Components::new(&engine).unwrap();
    let sdk_builds = [
        guests::C_HELLO_APP,
        guests::PYTHON_HELLO_APP,
        guests::JS_HELLO_APP,
    ]
    .map(app_wasm);
    let wasms = [
        guests::HELLO_WASM,
        guests::LEAN_WASM,
        guests::WASI_HELLO_WASM,
        guests::ECHO_WASM,
    ];
    for wasm in wasms.iter().copied().chain(sdk_builds.iter().map(String::as_str)) {
        assert!(
            compiled_for_main(&components, &engine, wasm),
            "{wasm} went to the concurrent engine"
        );
    }
    assert!(!compiled_for_main(
        &components,
        &engine,
        guests::WASI_HELLO_P3_WASM
    ));
}

/// The handler world and wasi:http 0.3 in one app: a store of each is made
/// on its own engine, and each answers.
#[tokio::test]
async fn a_handler_and_a_wasi_http3_component_serve_side_by_side() {
    let app = hello_and_wasi_http3_app();
    let server = TestServer::start(app.path().to_str().unwrap()).await;
    for _ in 0..3 {
        assert_eq!(server.get_text("/").await, (200, "Hello, world".into()));
        let r = server.get("/p3/x").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "Hello, world");
    }
}
