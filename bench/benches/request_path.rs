//! Scenario b: the host's request path without sockets, in µs per request.
//!
//! `cargo bench -p waterspout-bench --bench request_path`
//!
//! - `instantiate`: new Store (WASI context, limits, epoch callback) + instantiate.
//! - `hello` / `wasi-hello`: a whole request through the server's edge —
//!   routing, Store, instantiate, Tornado's lifecycle (initialize, prepare,
//!   get, on-finish) or wasi:http's `handle`, and the response body collected.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use waterspout::capabilities::log::Tag;
use waterspout::runtime::{Components, HostState, Prepared, WasmEngine, configure_store};
use waterspout::{App, EngineConfig, Manifest, ServerConfig};

fn load(example: &str) -> Arc<App> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example);
    App::load(&dir, ServerConfig::default()).unwrap_or_else(|e| {
        panic!(
            "{e} (build the examples first: `cargo run -p waterspout -- build {}`)",
            dir.display()
        )
    })
}

fn request_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let remote = "127.0.0.1:40000".parse().unwrap();
    let mut group = c.benchmark_group("request_path");

    // The runtime alone, as the server builds it: engine, linker, component.
    let wasm = WasmEngine::new(&EngineConfig::default()).unwrap();
    let components = Components::new(&wasm).unwrap();
    let manifest = Manifest::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello")).unwrap();
    let bytes = std::fs::read(&manifest.handler("hello").expect("hello is declared").wasm).unwrap();
    let Ok((_, Prepared::Handler(pre))) = components.prepare(&bytes) else {
        panic!("hello is a handler")
    };
    group.bench_function("store", |b| {
        b.iter(|| {
            let tag = Tag {
                handler: "hello".into(),
                version: 1,
                request_id: 1,
            };
            let state = HostState::new(tag, 64 << 20, Instant::now());
            let mut store = wasmtime::Store::new(&wasm.engine, state);
            configure_store(&mut store);
            black_box(store);
        })
    });
    group.bench_function("instantiate", |b| {
        b.to_async(&rt).iter(|| async {
            let tag = Tag {
                handler: "hello".into(),
                version: 1,
                request_id: 1,
            };
            let state = HostState::new(tag, 64 << 20, Instant::now() + std::time::Duration::from_secs(30));
            let mut store = wasmtime::Store::new(&wasm.engine, state);
            configure_store(&mut store);
            black_box(pre.instantiate_async(&mut store).await.unwrap());
        })
    });

    for (example, path) in [("hello", "/"), ("wasi-hello", "/")] {
        let app = load(example);
        group.bench_function(example, |b| {
            b.to_async(&rt).iter(|| async {
                let req = http::Request::get(path)
                    .header("host", "bench")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let response = waterspout::server::handle(app.clone(), req, remote).await;
                assert_eq!(response.status(), 200);
                black_box(response.into_body().collect().await.unwrap().to_bytes());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);
