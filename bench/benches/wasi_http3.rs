//! The wasi:http 0.3 request path without sockets, µs a request, for
//! profiling what scenario e's "wasi:http 0.3" rows cost on the host:
//!
//! - `serial/fresh`, `serial/reuse`, `serial/shared`: one `GET` at a time
//!   through the server's edge (`server::handle`) and its body read, on the
//!   0.3 hello with a fresh instance, `reuse = 1000`, and `reuse = 1000,
//!   concurrency = 16`;
//! - `batch16/…`: 16 requests at once (joined), per batch;
//! - `serial/rust-handler-reuse`: the handler world's Rust hello with reuse,
//!   the reference.
//!
//! `cargo bench -p waterspout-bench --bench wasi_http3` (after the examples
//! are built: `make bench` does). `perf record` on it shows the host's share
//! without the kernel's socket work.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use waterspout::{App, ServerConfig};

#[path = "../src/variants.rs"]
#[allow(dead_code)]
mod variants;

fn get(app: &std::sync::Arc<App>, path: &str) -> impl Future<Output = Bytes> + use<> {
    let app = app.clone();
    let req = http::Request::get(path)
        .header("host", "bench")
        .body(Full::new(Bytes::new()))
        .unwrap();
    async move {
        let response = waterspout::server::handle(app, req, "127.0.0.1:40000".parse().unwrap()).await;
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap().to_bytes()
    }
}

fn wasi_http3(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap_or(&root).to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let all = variants::variants(&root, 1000).unwrap_or_else(|e| panic!("{e:#}"));
    let all: Vec<_> = all
        .into_iter()
        .filter(|v| v.language.contains("0.3") || (v.language == "Rust" && v.reuse() > 1))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("waterspout.toml"), variants::manifest(&all)).unwrap();
    let mut config = ServerConfig::default();
    config.engine.cache_dir = Some(target.join("bench-tools/compile-cache"));
    let app = App::load(dir.path(), config).unwrap_or_else(|e| panic!("{e:#}"));

    let mut group = c.benchmark_group("wasi_http3");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for v in &all {
        let kind = if v.language == "Rust" {
            "rust-handler-reuse"
        } else if v.concurrency() > 1 {
            "shared"
        } else if v.reuse() > 1 {
            "reuse"
        } else {
            "fresh"
        };
        let path = format!("/{}", v.handler);
        group.bench_function(format!("serial/{kind}"), |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(get(&app, &path).await) })
        });
        if kind != "rust-handler-reuse" {
            group.bench_function(format!("batch16/{kind}"), |b| {
                b.to_async(&rt).iter(|| async {
                    let batch: Vec<_> = (0..16).map(|_| get(&app, &path)).collect();
                    black_box(futures_util::future::join_all(batch).await)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, wasi_http3);
criterion_main!(benches);
