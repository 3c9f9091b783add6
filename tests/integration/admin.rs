//! The admin API over real sockets: uploads (good and bad), listing,
//! activate, rollback, delete, route replace, the store across restarts,
//! authentication and `/metrics`.

use reqwest::Method;
use serde_json::{Value, json};
use waterspout::ServerConfig;
use waterspout_tests::guests;
use waterspout_tests::harness::{
    TestServer, admin_call, admin_config, read_wasm, sha256_hex, start_version_a, version_app,
};

async fn upload(server: &TestServer, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    admin_call(
        server
            .admin(Method::POST, &format!("/handlers/{name}/versions"))
            .body(bytes),
    )
    .await
}

fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_off() {
    let config = ServerConfig {
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(guests::VERSION_A_APP, config).await;
    assert!(server.admin.is_none());
    assert!(waterspout::AdminToken::new("").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn upload_activates_the_new_version_and_lists_it() {
    let server = start_version_a(admin_config()).await;
    let b = read_wasm(guests::VERSION_B_WASM);

    let response = server
        .admin(Method::POST, "/handlers/version/versions")
        .body(b.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/handlers/version/versions/2");
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["version"], 2);
    assert_eq!(info["active"], true);
    assert_eq!(info["world"], "handler");
    assert_eq!(info["source"], "upload");
    assert_eq!(info["sha256"], sha256_hex(&b));
    assert!(info["compile_ms"].as_f64().unwrap() > 0.0);
    // Active before the call returned.
    assert_eq!(server.get_text("/").await, (200, "b".into()));

    let (status, list) = admin_call(server.admin(Method::GET, "/handlers")).await;
    assert_eq!(status, 200);
    let handlers = list["handlers"].as_array().unwrap();
    assert_eq!(handlers.len(), 1);
    let h = &handlers[0];
    assert_eq!(h["name"], "version");
    assert_eq!(h["active_version"], 2);
    assert_eq!(h["sha256"], sha256_hex(&b));
    assert_eq!(h["size"], b.len());
    assert_eq!(h["world"], "handler");
    assert_eq!(h["routes"], json!(["/"]));
    assert_eq!(h["previous_version"], 1);
    assert_eq!(h["in_manifest"], true);
    assert!(h["uploaded_at"].as_str().unwrap().ends_with('Z'));

    let (status, one) = admin_call(server.admin(Method::GET, "/handlers/version")).await;
    assert_eq!((status, &one["active_version"]), (200, &json!(2)));

    let (status, versions) = admin_call(server.admin(Method::GET, "/handlers/version/versions")).await;
    assert_eq!(status, 200);
    assert_eq!(versions["active_version"], 2);
    let versions = versions["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["source"], "manifest");
    assert_eq!(versions[0]["active"], false);
    assert_eq!(versions[1]["active"], true);
    assert_eq!(
        versions[0]["sha256"],
        sha256_hex(&read_wasm(guests::VERSION_A_WASM))
    );

    let (status, v1) = admin_call(server.admin(Method::GET, "/handlers/version/versions/1")).await;
    assert_eq!((status, &v1["version"]), (200, &json!(1)));
    server.shutdown().await;
}

/// A core module built lean (for wasm32-unknown-unknown, carrying its
/// component type) is accepted as an upload: the server makes it a
/// component, and it serves at once.
#[tokio::test]
async fn a_lean_core_module_upload_is_made_a_component_and_serves() {
    let server = start_version_a(admin_config()).await;
    let lean = read_wasm(guests::LEAN_WASM);
    assert_eq!(lean[..8], *b"\0asm\x01\0\0\0", "the lean build is a core module");
    let (status, info) = upload(&server, "version", lean.clone()).await;
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["world"], "handler");
    // The store keeps what was sent: its hash is the module's.
    assert_eq!(info["sha256"], sha256_hex(&lean));
    assert_eq!(
        server.get_text("/?name=upload").await,
        (200, "Hello from a core module, upload".into())
    );
    server.shutdown().await;
}

/// A component exporting an interface none of our worlds has.
const FOREIGN_WORLD_WAT: &str = r#"
(component
  (instance $empty)
  (export "foo:bar/qux" (instance $empty))
)"#;

/// Claims the handler world but imports something no linker provides.
const MISSING_IMPORT_WAT: &str = r#"
(component
  (import "foo:bar/baz" (instance (export "f" (func))))
  (instance $empty)
  (export "waterspout:handler/request-handler@0.1.0" (instance $empty))
)"#;

#[tokio::test]
async fn bad_uploads_are_refused_with_a_reason_and_change_nothing() {
    let config = ServerConfig {
        max_upload_size: 256 * 1024,
        ..admin_config()
    };
    let server = start_version_a(config).await;
    let precompiled = server
        .app
        .precompile(&read_wasm(guests::VERSION_B_WASM))
        .expect("precompiling");
    assert!(precompiled.starts_with(b"\x7fELF"));

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "not wasm",
            b"hello, world".to_vec(),
            422,
            "not a WebAssembly component",
        ),
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            422,
            "core WebAssembly module, not a component",
        ),
        ("precompiled", precompiled, 422, "precompiled native code"),
        (
            "foreign world",
            wat::parse_str(FOREIGN_WORLD_WAT).unwrap(),
            422,
            "exports none of the worlds served here",
        ),
        (
            "missing import",
            wat::parse_str(MISSING_IMPORT_WAT).unwrap(),
            422,
            "foo:bar/baz",
        ),
        (
            "websocket component for an HTTP handler",
            read_wasm(guests::ECHO_WASM),
            422,
            "implements the websocket world",
        ),
        (
            "truncated component",
            read_wasm(guests::VERSION_B_WASM)[..4000].to_vec(),
            422,
            "not a WebAssembly component",
        ),
        ("empty", Vec::new(), 400, "the body is empty"),
        (
            "too big",
            vec![0u8; 300 * 1024],
            413,
            "accepts at most 262144 bytes",
        ),
    ];
    for (what, bytes, status, reason) in cases {
        let (got, body) = upload(&server, "version", bytes).await;
        assert_eq!(got, status, "{what}: {body}");
        assert!(error_of(&body).contains(reason), "{what}: {body}");
        assert_eq!(server.get_text("/").await, (200, "a".into()), "after {what}");
    }

    // Too big without a Content-Length: counted while streaming. The
    // server must read the rest (and drop it) before it answers: closed
    // with unread data, the connection is reset, and the client, still
    // sending, got a broken pipe instead of the 413 now and then (one run
    // in eight). Ten uploads of 1 MiB, each its own connection.
    for _ in 0..10 {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            (0..64).map(|_| Ok(vec![0u8; 16 * 1024])).collect();
        let stream = futures_util::stream::iter(chunks);
        let (got, body) = admin_call(
            server
                .admin(Method::POST, "/handlers/version/versions")
                .body(reqwest::Body::wrap_stream(stream)),
        )
        .await;
        assert_eq!(got, 413, "{body}");
    }

    // A bad name, and a missing handler for activate.
    let (got, body) = upload(&server, ".hidden", read_wasm(guests::VERSION_B_WASM)).await;
    assert_eq!(got, 400, "{body}");
    let (got, body) = upload(&server, "bad%20name", read_wasm(guests::VERSION_B_WASM)).await;
    assert_eq!(got, 400, "{body}");
    assert!(error_of(&body).contains("invalid handler name"), "{body}");

    // Nothing was recorded.
    let (_, versions) = admin_call(server.admin(Method::GET, "/handlers/version/versions")).await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1, "{versions}");
    let (_, list) = admin_call(server.admin(Method::GET, "/handlers")).await;
    assert_eq!(list["handlers"].as_array().unwrap().len(), 1, "{list}");
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_token_is_401() {
    let server = start_version_a(admin_config()).await;
    let b = read_wasm(guests::VERSION_B_WASM);
    let url = server.admin_url("/handlers/version/versions");
    let cases = [
        (None, "missing admin token"),
        (Some("Bearer not-the-token"), "wrong admin token"),
        (Some("bearer test-admin-token-and-more"), "wrong admin token"),
        (Some("Basic dGVzdDp0ZXN0"), "expected `Bearer TOKEN`"),
    ];
    for (header, reason) in cases {
        let mut request = server.client.post(&url).body(b.clone());
        if let Some(value) = header {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"waterspout-admin\""
        );
        let body: Value = response.json().await.unwrap();
        assert!(error_of(&body).contains(reason), "{header:?}: {body}");
    }
    // Every endpoint, including /metrics and unknown paths.
    for path in ["/handlers", "/metrics", "/routes", "/nope"] {
        let status = server
            .client
            .get(server.admin_url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "{path}");
    }
    assert_eq!(server.get_text("/").await, (200, "a".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn rollback_activate_and_store_only_uploads() {
    let server = start_version_a(admin_config()).await;
    let (status, _) = upload(&server, "version", read_wasm(guests::VERSION_B_WASM)).await;
    assert_eq!(status, 201);
    assert_eq!(server.get_text("/").await.1, "b");

    let (status, info) = admin_call(server.admin(Method::POST, "/handlers/version/rollback")).await;
    assert_eq!((status, &info["version"]), (200, &json!(1)), "{info}");
    assert_eq!(server.get_text("/").await.1, "a");
    // Nothing before version 1.
    let (status, body) = admin_call(server.admin(Method::POST, "/handlers/version/rollback")).await;
    assert_eq!(status, 409, "{body}");
    assert!(error_of(&body).contains("no earlier active version"), "{body}");

    let (status, _) = admin_call(server.admin(Method::POST, "/handlers/version/versions/2/activate")).await;
    assert_eq!(status, 200);
    assert_eq!(server.get_text("/").await.1, "b");
    // Rollback returns to what was active before: 1.
    let (_, info) = admin_call(server.admin(Method::POST, "/handlers/version/rollback")).await;
    assert_eq!(info["version"], 1);
    assert_eq!(server.get_text("/").await.1, "a");

    // Stored, not activated.
    let (status, info) = admin_call(
        server
            .admin(Method::POST, "/handlers/version/versions?activate=false")
            .body(read_wasm(guests::VERSION_B_WASM)),
    )
    .await;
    assert_eq!(
        (status, &info["version"], &info["active"]),
        (201, &json!(3), &json!(false))
    );
    assert_eq!(server.get_text("/").await.1, "a");
    let (status, _) = admin_call(server.admin(Method::POST, "/handlers/version/versions/3/activate")).await;
    assert_eq!(status, 200);
    assert_eq!(server.get_text("/").await.1, "b");

    let (status, body) =
        admin_call(server.admin(Method::POST, "/handlers/version/versions/99/activate")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = admin_call(server.admin(Method::POST, "/handlers/nope/rollback")).await;
    assert_eq!(status, 404, "{body}");
    assert!(error_of(&body).contains("no handler named \"nope\""), "{body}");
    let (status, body) =
        admin_call(server.admin(Method::POST, "/handlers/version/versions/x/activate")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = admin_call(server.admin(Method::GET, "/handlers/version/rollback")).await;
    assert_eq!(status, 405, "{body}");
    let (status, body) = admin_call(server.admin(Method::GET, "/nope")).await;
    assert_eq!(status, 404, "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_http_handler_swaps_to_a_wasi_http_component_and_back() {
    let server = start_version_a(admin_config()).await;
    let (status, info) = upload(&server, "version", read_wasm(guests::WASI_HELLO_WASM)).await;
    assert_eq!((status, &info["world"]), (201, &json!("wasi-http")), "{info}");
    assert_eq!(server.get_text("/").await, (200, "Hello, world".into()));
    let (status, info) = admin_call(server.admin(Method::POST, "/handlers/version/rollback")).await;
    assert_eq!((status, &info["world"]), (200, &json!("handler")), "{info}");
    assert_eq!(server.get_text("/").await, (200, "a".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn an_http_handler_swaps_to_wasi_http_0_3_and_0_2_components_and_back() {
    let server = start_version_a(admin_config()).await;
    let (status, info) = upload(&server, "version", read_wasm(guests::WASI_HELLO_P3_WASM)).await;
    assert_eq!((status, &info["world"]), (201, &json!("wasi-http3")), "{info}");
    assert_eq!(server.get_text("/").await, (200, "Hello, world".into()));
    let (status, info) = upload(&server, "version", read_wasm(guests::WASI_HELLO_WASM)).await;
    assert_eq!((status, &info["world"]), (201, &json!("wasi-http")), "{info}");
    assert_eq!(server.get_text("/").await, (200, "Hello, world".into()));
    let (status, info) = admin_call(server.admin(Method::POST, "/handlers/version/rollback")).await;
    assert_eq!((status, &info["world"]), (200, &json!("wasi-http3")), "{info}");
    assert_eq!(server.get_text("/").await, (200, "Hello, world".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn delete_versions_and_api_created_handlers() {
    let server = start_version_a(admin_config()).await;
    upload(&server, "version", read_wasm(guests::VERSION_B_WASM)).await;

    // The active version cannot go; an inactive one can.
    let (status, body) = admin_call(server.admin(Method::DELETE, "/handlers/version/versions/2")).await;
    assert_eq!(status, 409, "{body}");
    assert!(error_of(&body).contains("is active"), "{body}");
    let (status, _) = admin_call(server.admin(Method::DELETE, "/handlers/version/versions/1")).await;
    assert_eq!(status, 200);
    let (_, versions) = admin_call(server.admin(Method::GET, "/handlers/version/versions")).await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    // Version 1 is gone from the rollback history too.
    let (status, _) = admin_call(server.admin(Method::POST, "/handlers/version/rollback")).await;
    assert_eq!(status, 409);
    let (status, _) = admin_call(server.admin(Method::DELETE, "/handlers/version/versions/1")).await;
    assert_eq!(status, 404);

    // A handler the manifest declares cannot be deleted over the API.
    let (status, body) = admin_call(server.admin(Method::DELETE, "/handlers/version")).await;
    assert_eq!(status, 409, "{body}");
    assert!(error_of(&body).contains("waterspout.toml"), "{body}");

    // A new handler over the API: served once routed; deletable once unrouted.
    let (status, info) = upload(&server, "extra", read_wasm(guests::VERSION_A_WASM)).await;
    assert_eq!(
        (status, &info["version"], &info["active"]),
        (201, &json!(1), &json!(true))
    );
    let routes = json!({ "routes": [
        { "pattern": "/", "handler": "version" },
        { "pattern": "/extra", "handler": "extra" },
    ]});
    let (status, _) = admin_call(server.admin(Method::PUT, "/routes").json(&routes)).await;
    assert_eq!(status, 200);
    assert_eq!(server.get_text("/extra").await, (200, "a".into()));
    let (status, body) = admin_call(server.admin(Method::DELETE, "/handlers/extra")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        error_of(&body).contains("still routed from [\"/extra\"]"),
        "{body}"
    );

    let routes = json!({ "routes": [{ "pattern": "/", "handler": "version" }] });
    admin_call(server.admin(Method::PUT, "/routes").json(&routes)).await;
    let (status, _) = admin_call(server.admin(Method::DELETE, "/handlers/extra")).await;
    assert_eq!(status, 200);
    let (status, _) = admin_call(server.admin(Method::GET, "/handlers/extra")).await;
    assert_eq!(status, 404);
    assert_eq!(server.get_text("/extra").await.0, 404);
    assert_eq!(server.get_text("/").await, (200, "b".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn route_table_is_validated_like_the_manifest() {
    let server = start_version_a(admin_config()).await;
    upload(&server, "bee", read_wasm(guests::VERSION_B_WASM)).await;

    let (status, table) = admin_call(server.admin(Method::GET, "/routes")).await;
    assert_eq!(status, 200);
    assert_eq!(
        table,
        json!({ "routes": [{ "pattern": "/", "handler": "version" }] })
    );

    let bad = [
        (
            json!({ "routes": [{ "pattern": "/(unclosed", "handler": "version" }] }),
            422,
            "invalid route pattern \"/(unclosed\"",
        ),
        (
            json!({ "routes": [{ "pattern": "/", "handler": "nope" }] }),
            422,
            "unknown handler \"nope\"",
        ),
        (json!({ "routes": [] }), 422, "empty"),
        (
            json!({ "routes": [{ "pattern": "/", "handler": "version", "extra": 1 }] }),
            400,
            "unknown field `extra`",
        ),
        (
            json!([{ "pattern": "/", "handler": "version" }]),
            400,
            "not a route table",
        ),
    ];
    for (table, status, reason) in bad {
        let (got, body) = admin_call(server.admin(Method::PUT, "/routes").json(&table)).await;
        assert_eq!(got, status, "{table}: {body}");
        assert!(error_of(&body).contains(reason), "{table}: {body}");
        assert_eq!(server.get_text("/").await, (200, "a".into()));
        assert_eq!(server.get_text("/b").await.0, 404);
    }

    let table = json!({ "routes": [
        { "pattern": "/b", "handler": "bee", "name": "bee", "settings": { "greeting": "hi", "n": 3 } },
        { "pattern": "/(.*)", "handler": "version" },
    ]});
    let (status, body) = admin_call(server.admin(Method::PUT, "/routes").json(&table)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["routes"][0]["settings"],
        json!({ "greeting": "hi", "n": "3" })
    );
    assert_eq!(server.get_text("/b").await, (200, "b".into()));
    assert_eq!(server.get_text("/anything").await, (200, "a".into()));
    let (_, list) = admin_call(server.admin(Method::GET, "/handlers")).await;
    let bee = list["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "bee")
        .unwrap();
    assert_eq!(bee["routes"], json!(["/b"]));
    assert_eq!(bee["in_manifest"], false);
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_cover_requests_swaps_and_compiles() {
    let server = start_version_a(admin_config()).await;
    for _ in 0..3 {
        server.get("/").await;
    }
    upload(&server, "version", read_wasm(guests::VERSION_B_WASM)).await;
    server.get("/").await;
    upload(&server, "version", b"not wasm".to_vec()).await;

    let response = server.admin(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    // The recorder is process-wide (other tests add to it), so check for
    // series, not exact counts.
    for needle in [
        "waterspout_requests_total{handler=\"version\",version=\"1\",class=\"2xx\"}",
        "waterspout_requests_total{handler=\"version\",version=\"2\",class=\"2xx\"}",
        "waterspout_request_duration_seconds_bucket{handler=\"version\",version=\"2\",le=",
        "waterspout_active_instances{handler=\"version\",version=\"1\"}",
        "waterspout_traps_total{handler=\"version\",version=\"2\"}",
        "waterspout_timeouts_total{handler=\"version\",version=\"2\"}",
        "waterspout_swaps_total{handler=\"version\"}",
        "waterspout_active_version{handler=\"version\"}",
        "waterspout_compile_seconds_bucket{handler=\"version\",le=",
        "waterspout_uploads_refused_total{handler=\"version\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_store_restores_versions_routes_and_history_after_a_restart() {
    let app = version_app(guests::VERSION_A_WASM);
    let store = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = admin_config();
        config.store_dir = Some(store.path().to_owned());
        config.engine.cache_dir = Some(cache.path().to_owned());
        config
    };
    let dir = app.path().to_str().unwrap();

    let server = TestServer::start_with(dir, config()).await;
    assert_eq!(server.get_text("/").await.1, "a");
    upload(&server, "version", read_wasm(guests::VERSION_B_WASM)).await;
    upload(&server, "bee", read_wasm(guests::VERSION_B_WASM)).await;
    let routes = json!({ "routes": [
        { "pattern": "/", "handler": "version" },
        { "pattern": "/bee", "handler": "bee" },
    ]});
    admin_call(server.admin(Method::PUT, "/routes").json(&routes)).await;
    server.shutdown().await;

    // The store's active version and route table win over the manifest's.
    let server = TestServer::start_with(dir, config()).await;
    assert_eq!(server.get_text("/").await, (200, "b".into()));
    assert_eq!(server.get_text("/bee").await, (200, "b".into()));
    let (_, versions) = admin_call(server.admin(Method::GET, "/handlers/version/versions")).await;
    assert_eq!(versions["active_version"], 2);
    let (status, info) = admin_call(server.admin(Method::POST, "/handlers/version/rollback")).await;
    assert_eq!((status, &info["version"]), (200, &json!(1)));
    assert_eq!(server.get_text("/").await.1, "a");
    server.shutdown().await;

    // A rebuilt manifest file is a new deploy at the next start.
    let server = TestServer::start_with(dir, config()).await;
    assert_eq!(server.get_text("/").await.1, "a");
    server.shutdown().await;
    std::fs::copy(guests::VERSION_B_WASM, app.path().join("version.wasm")).unwrap();
    let server = TestServer::start_with(dir, config()).await;
    assert_eq!(server.get_text("/").await.1, "b");
    let (_, versions) = admin_call(server.admin(Method::GET, "/handlers/version/versions")).await;
    assert_eq!(versions["active_version"], 3, "{versions}");
    assert_eq!(versions["versions"][2]["source"], "manifest");
    server.shutdown().await;

    let state: Value =
        serde_json::from_slice(&std::fs::read(store.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["handlers"]["version"]["active"], 3);
    assert_eq!(state["handlers"]["bee"]["active"], 1);
    assert!(store.path().join("handlers/version/3.wasm").is_file());
    assert!(store.path().join("handlers/version/3.json").is_file());
}
