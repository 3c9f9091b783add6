//! The Python and JavaScript SDKs on a reused instance (`reuse = N`): the SDKs
//! cache per instance what does not change between requests (which class a
//! route's `class` names), never what does (the request, the handler object).
//! One instance serves routes of several classes in turn here.

use std::path::Path;

use waterspout_tests::guests;
use waterspout_tests::harness::{TestServer, app_with_manifest};

/// The example app's manifest with `reuse = 100` on its handler, its wasm
/// path made absolute and its build line dropped.
fn reused(app_dir: &str) -> tempfile::TempDir {
    let dir = Path::new(app_dir);
    let manifest = std::fs::read_to_string(dir.join("waterspout.toml")).unwrap();
    let mut out = String::new();
    for line in manifest.lines() {
        if line.starts_with("build =") {
            continue;
        }
        if let Some(path) = line.strip_prefix("wasm = \"") {
            let path = dir.join(path.trim_end_matches('"'));
            out.push_str(&format!("reuse = 100\nwasm = {:?}\n", path.display().to_string()));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(out.contains("reuse = 100"), "{out}");
    app_with_manifest(&out)
}

#[tokio::test]
async fn a_reused_python_instance_picks_each_routes_class_and_reads_each_request() {
    let dir = reused(guests::PYTHON_HANDLERS_APP);
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    for round in 0..2 {
        assert_eq!(server.get_text("/").await, (200, "main handler".into()));
        // The settings and the path argument are this request's.
        assert_eq!(
            server.get_text(&format!("/items/{round}")).await,
            (200, format!("item #{round}"))
        );
        let r = server.get(&format!("/users/ann/posts/{round}")).await;
        assert_eq!(r.status(), 200);
        let json: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            json,
            serde_json::json!({"user": "ann", "post": round.to_string()})
        );
        // A route naming no class in a module with several stays a 500
        // every time, and the next request on the instance is served.
        assert_eq!(server.get_text("/unnamed").await.0, 500);
        assert_eq!(server.get_text("/teapot").await.0, 418);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_reused_js_instance_picks_each_routes_class_and_reads_each_request() {
    let dir = reused(guests::JS_REQUESTS_APP);
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    for round in 0..2 {
        assert_eq!(
            server.get_text(&format!("/items/{round}")).await,
            (200, format!("item {round}"))
        );
        assert_eq!(
            server.get_text(&format!("/users/u{round}")).await,
            (200, format!("user u{round}"))
        );
        let (status, _) = server.get_text("/json").await;
        assert_eq!(status, 405);
    }
    server.shutdown().await;

    let dir = reused(guests::JS_ASYNC_APP);
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    for _ in 0..2 {
        let (status, body) = server.get_text("/no-such-class").await;
        assert_eq!(status, 500);
        assert!(!body.contains("NoSuchHandler"), "{body}");
        assert_eq!(server.get_text("/sleep?ms=1").await.0, 200);
    }
    server.shutdown().await;
}
