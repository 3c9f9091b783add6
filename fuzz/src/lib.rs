//! What each fuzz target feeds its input to, and the properties it checks.
//!
//! Shared by the cargo-fuzz targets (`fuzz_targets/*.rs`, nightly) and by
//! the regression test `tests/security/fuzz_regressions.rs` (stable), which
//! includes this file and replays every input kept in `regressions/<target>/`.

use std::path::Path;
use std::sync::OnceLock;

use futures_util::FutureExt as _;

/// `waterspout.toml` text: parsing never panics, and every route of a
/// manifest that parses compiles into the router.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = waterspout::manifest::Manifest::parse(Path::new("/fuzz/waterspout.toml"), text) else {
        return;
    };
    for route in &manifest.routes {
        if let Err(e) = waterspout::router::Route::new(&route.pattern, route.handler.clone(), None, vec![]) {
            panic!(
                "the manifest accepted route {:?}, the router did not: {e}",
                route.pattern
            );
        }
    }
}

/// `PATTERN\nPATH\nARG…`: a pattern the manifest's check accepts compiles;
/// matching and reversing never panic.
pub fn router(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let pattern = lines.next().unwrap_or("");
    let path = lines.next().unwrap_or("/");
    let args: Vec<&str> = lines.collect();
    if waterspout::manifest::check_route(pattern, "h", &["h"]).is_err() {
        return;
    }
    let route = match waterspout::router::Route::new(pattern, "h", Some("r".into()), vec![]) {
        Ok(route) => route,
        Err(e) => panic!("check_route accepted {pattern:?}, Route::new did not: {e}"),
    };
    let router = waterspout::router::Router::new(vec![route]);
    if let Some(found) = router.find(path) {
        assert_eq!(found.route.handler, "h");
    }
    let _ = router.reverse("r", &args);
}

/// `CONTENT-TYPE\nBODY`: body parsing (form-urlencoded, multipart) never
/// panics and never waits (the whole body is already in memory).
pub fn body(data: &[u8]) {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let _ = waterspout::capabilities::request::parse_urlencoded(body);
    let Ok(content_type) = http::HeaderValue::from_bytes(content_type) else {
        return;
    };
    let mut request = waterspout::capabilities::request::RequestData {
        body: bytes::Bytes::copy_from_slice(body),
        ..Default::default()
    };
    request.headers.insert(http::header::CONTENT_TYPE, content_type);
    let parsed = request.parse_body().now_or_never();
    assert!(parsed.is_some(), "parse_body waited on a body already in memory");
}

/// A component upload: validation never panics; what it accepts is linked.
pub fn upload(data: &[u8]) {
    let _ = components().prepare(data);
}

/// One engine and linker for all inputs (as the server has).
fn components() -> &'static waterspout::runtime::Components {
    static COMPONENTS: OnceLock<(waterspout::runtime::WasmEngine, waterspout::runtime::Components)> =
        OnceLock::new();
    let (_, components) = COMPONENTS.get_or_init(|| {
        let config = waterspout::EngineConfig {
            max_instances: 4,
            max_memory_bytes: 64 << 20,
            cache_dir: None,
        };
        let engine = waterspout::runtime::WasmEngine::new(&config).expect("engine");
        let components = waterspout::runtime::Components::new(&engine).expect("linker");
        (engine, components)
    });
    components
}

/// What a fuzz target calls with one input.
pub type Target = fn(&[u8]);

/// The targets by name, for the regression replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("router", router),
    ("body", body),
    ("upload", upload),
];
