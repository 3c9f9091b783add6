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

/// The repository root (`tests/` is one level down).
fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Runs `guest-sdk/python/build` from `root` on a module with `source`;
/// returns (exit code, stderr).
fn python_build(root: &std::path::Path, source: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.py");
    std::fs::write(&app, source).unwrap();
    let output = std::process::Command::new(root.join("guest-sdk/python/build"))
        .arg(&app)
        .arg(dir.path().join("app.wasm"))
        .output()
        .expect("running guest-sdk/python/build");
    assert!(!dir.path().join("app.wasm").exists());
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_python_build_names_the_install_command_when_componentize_py_is_missing() {
    // A copy of the SDK in a tree without .tools/.
    let root = tempfile::tempdir().unwrap();
    let sdk = root.path().join("guest-sdk/python");
    std::fs::create_dir_all(&sdk).unwrap();
    for file in ["build", "build.py"] {
        std::fs::copy(repo_root().join("guest-sdk/python").join(file), sdk.join(file)).unwrap();
    }
    let (code, stderr) = python_build(root.path(), "class H: pass\n");
    assert_eq!(code, Some(127), "{stderr}");
    assert!(stderr.contains("componentize-py is not installed"), "{stderr}");
    assert!(stderr.contains("make tools-python"), "{stderr}");
}

#[test]
fn the_python_build_refuses_modules_it_cannot_make_one_component_of() {
    let root = repo_root();
    let (code, stderr) = python_build(&root, "class Plain:\n    pass\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("defines no RequestHandler, WebSocketHandler or Worker subclass"),
        "{stderr}"
    );
    let both = "from waterspout import web, websocket\n\
                class Page(web.RequestHandler):\n    pass\n\
                class Socket(websocket.WebSocketHandler):\n    pass\n";
    let (code, stderr) = python_build(&root, both);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("split them into two modules"), "{stderr}");
}

#[tokio::test]
async fn python_websocket_handlers_use_tornados_api() {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use waterspout_tests::harness::websocket::{STEP, close_of, next, raw_request, send_text, text};

    let server = TestServer::start(guests::PYTHON_ROOMS_APP).await;
    let mut request = format!("ws://{}/rooms/lobby", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "chat, rooms.v1".parse().unwrap());
    let (mut ws, response) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
        .expect("handshake accepted");
    assert_eq!(response.headers()["sec-websocket-protocol"], "rooms.v1");

    // A dict goes out as JSON text, written from an `async def on_message`.
    send_text(&mut ws, "info").await;
    let json: serde_json::Value = serde_json::from_str(&text(&mut ws).await).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "room": "lobby",
            "subprotocol": "rooms.v1",
            "path": "/rooms/lobby",
            "greeting": "welcome to",
        })
    );
    send_text(&mut ws, "bytes").await;
    assert_eq!(next(&mut ws).await, Message::binary(b"lobby".to_vec()));
    send_text(&mut ws, "hi").await;
    assert_eq!(text(&mut ws).await, "lobby: hi");
    // An exception in on_message: logged, and the connection closed with 1011.
    ws.send(Message::text("crash")).await.unwrap();
    assert_eq!(close_of(&mut ws).await.0, 1011);

    // HTTPError in open refuses the handshake with its status and reason.
    let (_stream, refused) = raw_request(&server, "GET", "/rooms/private", &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.head);
    assert_eq!(
        refused.body,
        "<html><title>403: Members Only</title><body>403: Members Only</body></html>"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn tornados_hello_world_builds_and_serves_unchanged() {
    // The manifest is the one the build generates from make_app().
    let app = std::path::Path::new(guests::PYTHON_TORNADO_HELLO_APP);
    let regenerated = tempfile::tempdir().unwrap();
    let manifest = regenerated.path().join("waterspout.toml");
    let status = std::process::Command::new(repo_root().join("guest-sdk/python/build"))
        .arg(app.join("hello.py"))
        .arg(repo_root().join("examples/target/python/tornado-hello.wasm"))
        .arg("--manifest")
        .arg(&manifest)
        .arg("--manifest-only")
        .status()
        .unwrap();
    assert!(status.success());
    let generated = std::fs::read_to_string(&manifest).unwrap();
    let committed = std::fs::read_to_string(app.join("waterspout.toml")).unwrap();
    // Same routes and handler; only the relative paths differ by directory.
    let routes = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("wasm") && !l.starts_with("build"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(routes(&generated), routes(&committed));
    assert!(generated.contains("class = \"MainHandler\""), "{generated}");
    check(guests::PYTHON_TORNADO_HELLO_APP, hello).await;
}

/// The host services from python (`examples/python/services`): kv, the
/// host's timer, the http client (see `services::check_services_example`).
#[tokio::test]
async fn python_services() {
    crate::services::check_services_example(guests::PYTHON_SERVICES_APP, "s=0.05").await;
}
