//! Where a request's time goes for each guest language (no sockets), µs:
//!
//! - `instantiate/LANG`: new Store + instantiate the hello component through
//!   the pooling allocator, then drop the Store (what a fresh instance costs
//!   beside the calls).
//! - `fresh/LANG`: a whole `GET` through the server's edge with a fresh
//!   instance (`reuse = 0`).
//! - `reuse/LANG`: the same with `reuse = 1000` (the calls and the host path).
//!
//! `cargo bench -p waterspout-bench --bench languages` (after `make bench`
//! built the examples). `fresh − reuse` is what instantiating costs on the
//! request path; `reuse` is the guest's calls plus the host.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use waterspout::capabilities::log::Tag;
use waterspout::runtime::{Components, HostState, Prepared, WasmEngine, configure_store};
use waterspout::{App, EngineConfig, ServerConfig};

#[path = "../src/variants.rs"]
#[allow(dead_code)]
mod variants;

fn languages(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    // target/release/deps/languages-HASH → target/bench-tools (as the tool's).
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap_or(&root).to_owned();
    let cache = target.join("bench-tools/compile-cache");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let remote = "127.0.0.1:40000".parse().unwrap();
    let all = variants::variants(&root, 1000).unwrap_or_else(|e| panic!("{e:#}"));
    // The handler world's examples (the 0.3 one is measured by scenario e).
    let all: Vec<_> = all.into_iter().filter(|v| !v.language.contains("0.3")).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("waterspout.toml"), variants::manifest(&all)).unwrap();
    let mut config = ServerConfig::default();
    config.engine.cache_dir = Some(cache.clone());
    let app = App::load(dir.path(), config).unwrap_or_else(|e| panic!("{e:#}"));

    let wasm = WasmEngine::new(&EngineConfig {
        cache_dir: Some(cache),
        ..EngineConfig::default()
    })
    .unwrap();
    let components = Components::new(&wasm).unwrap();

    let mut group = c.benchmark_group("languages");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for v in all.iter().filter(|v| v.reuse() == 0) {
        let bytes = std::fs::read(&v.wasm).unwrap();
        let Ok((_, Prepared::Handler(pre))) = components.prepare(&bytes) else {
            panic!("{} is not a handler-world component", v.wasm.display())
        };
        let memory = usize::try_from(
            v.options["memory_limit_mb"]
                .as_integer()
                .expect("set by variants()"),
        )
        .unwrap()
            << 20;
        group.bench_function(format!("instantiate/{}", v.language), |b| {
            b.to_async(&rt).iter(|| async {
                let tag = Tag {
                    handler: "bench".into(),
                    version: 1,
                    request_id: 1,
                };
                let state = HostState::new(tag, memory, Instant::now() + Duration::from_secs(30));
                let mut store = wasmtime::Store::new(&wasm.engine, state);
                configure_store(&mut store);
                black_box(pre.instantiate_async(&mut store).await.unwrap());
            })
        });
    }
    for v in &all {
        let name = format!("{}/{}", if v.reuse() > 1 { "reuse" } else { "fresh" }, v.language);
        let path = format!("/{}", v.handler);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let req = http::Request::get(&path)
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

criterion_group!(benches, languages);
criterion_main!(benches);
