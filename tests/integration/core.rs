//! Core: the real server on 127.0.0.1:0, real HTTP clients, real guests.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use waterspout::ServerConfig;
use waterspout_tests::guests;
use waterspout_tests::harness::TestServer;

const TORNADO_500: &str =
    "<html><title>500: Internal Server Error</title><body>500: Internal Server Error</body></html>";

#[tokio::test]
async fn unknown_path_is_404_and_unsupported_verb_is_405() {
    let server = TestServer::start(guests::HELLO_APP).await;
    let (status, body) = server.get_text("/nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        "<html><title>404: Not Found</title><body>404: Not Found</body></html>"
    );
    // The SDK's default verbs answer 405, as Tornado's do.
    let r = server
        .client
        .post(server.url("/"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // A method outside Tornado's SUPPORTED_METHODS is 405 before prepare.
    let r = server
        .client
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    server.shutdown().await;
}

// Raw blocking sockets: the server needs its own worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let server = TestServer::start(guests::HELLO_APP).await;
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..3 {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let response = read_response(&mut stream);
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.ends_with("Hello, world"), "{response}");
    }
    server.shutdown().await;
}

/// Reads one response with a Content-Length body from a raw stream.
fn read_response(stream: &mut std::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf.clone()).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn flush_reaches_the_client_before_the_handler_returns() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let start = Instant::now();
    let mut r = server.get("/flush-spin?ms=1500").await;
    let first = r.chunk().await.unwrap().unwrap();
    let first_at = start.elapsed();
    assert_eq!(&first[..], b"first\n");
    let mut rest = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let done_at = start.elapsed();
    assert_eq!(rest, b"second\n");
    // The guest spins 1.5 s after flushing: the first chunk must have come
    // well before the end.
    assert!(done_at >= Duration::from_millis(1500), "{done_at:?}");
    assert!(
        done_at - first_at >= Duration::from_millis(1000),
        "first {first_at:?}, done {done_at:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn lifecycle_follows_tornado_order() {
    let server = TestServer::start(guests::LIFECYCLE_APP).await;
    let r = server.get("/prepare").await;
    assert_eq!(r.headers()["x-initialized"], "1");
    assert_eq!(r.text().await.unwrap(), "prepared;verb ran");
    // prepare() finishing the request skips the verb.
    assert_eq!(
        server.get_text("/prepare?stop=1").await,
        (200, "stopped in prepare".into())
    );
    // send_error from a verb: Tornado's default page.
    let (status, body) = server.get_text("/forbidden").await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        "<html><title>403: Forbidden</title><body>403: Forbidden</body></html>"
    );
    // A custom reason phrase reaches the status line.
    let r = server.get("/status").await;
    assert_eq!(r.status().as_u16(), 299);
    let r = server.get("/error-return").await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("409: Conflict Here"));
    // Writes after finish are dropped.
    assert_eq!(server.get_text("/after-finish").await, (200, "before".into()));
    let r = server.get("/redirect").await;
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/prepare");
    server.shutdown().await;
}

// Raw blocking sockets: the server needs its own worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_reason_phrase_is_on_the_wire() {
    let server = TestServer::start(guests::LIFECYCLE_APP).await;
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let response = read_response(&mut stream);
    assert!(
        response.starts_with("HTTP/1.1 299 Custom Reason\r\n"),
        "{response}"
    );
    server.shutdown().await;
}

// Raw blocking sockets: the server needs its own worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_manipulation_and_head_without_body() {
    let server = TestServer::start(guests::LIFECYCLE_APP).await;
    let r = server.get("/headers").await;
    let h = r.headers();
    assert_eq!(h["x-single"], "two");
    let multi: Vec<_> = h
        .get_all("x-multi")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(multi.len(), 2, "{multi:?}");
    assert!(h.get("x-gone").is_none());

    assert_eq!(server.get_text("/head").await, (200, "get body".into()));
    // HEAD: headers, no body, over a raw socket so nothing hides a stray body.
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
        .write_all(b"HEAD /head HTTP/1.1\r\nHost: x\r\n\r\nGET /head HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&buf).ends_with("get body") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    // The HEAD response is followed directly by the GET response.
    let (head, get) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(head.to_ascii_lowercase().contains("x-head: 1"), "{text}");
    assert!(get.starts_with("HTTP/1.1 200 OK"), "HEAD leaked a body: {text}");
    server.shutdown().await;
}

#[tokio::test]
async fn trap_is_a_generic_500_and_the_next_request_is_served() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let (status, body) = server.get_text("/trap").await;
    assert_eq!(status, 500);
    assert_eq!(body, TORNADO_500);
    assert!(!body.contains("panic") && !body.contains("trapping"));
    assert_eq!(server.get_text("/ok").await, (200, "ok".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn endless_loop_is_interrupted_with_503() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let start = Instant::now();
    let (status, _) = server.get_text("/loop").await;
    assert_eq!(status, 503);
    // timeout_ms = 1000 for this handler in the manifest.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(server.get_text("/ok").await, (200, "ok".into()));
    server.shutdown().await;
}

/// Every slot of the engine's instance pool in use: the server is busy (503,
/// like a handler's own `max_instances`), not the guest at fault (500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_instance_pool_is_503_and_frees_up() {
    let mut config = ServerConfig::default();
    config.engine.max_instances = 1;
    let server = TestServer::start_with(guests::FAULTS_APP, config).await;
    let spinning = {
        let (client, url) = (server.client.clone(), server.url("/spin?ms=800"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.get_text("/ok").await.0, 503);
    assert_eq!(spinning.await.unwrap(), 200);
    assert_eq!(server.get_text("/ok").await, (200, "ok".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn memory_bomb_and_endless_recursion_are_500() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let (status, body) = server.get_text("/grow").await;
    assert_eq!(status, 500);
    assert_eq!(body, TORNADO_500);
    let (status, body) = server.get_text("/recurse").await;
    assert_eq!(status, 500);
    assert_eq!(body, TORNADO_500);
    assert_eq!(server.get_text("/ok").await, (200, "ok".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn guest_header_injection_never_reaches_the_wire() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let r = server.get("/bad-header").await;
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("x-injected").is_none());
    assert!(r.headers().get("x-test").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn guest_logging_does_not_disturb_the_response() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    assert_eq!(server.get_text("/log").await, (200, "logged".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let config = ServerConfig {
        max_body_size: 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(guests::REQUESTS_APP, config).await;
    let r = server
        .client
        .post(server.url("/json"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Chunked, so the size is only known while reading.
    let stream = futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 512])));
    let r = server
        .client
        .post(server.url("/json"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = server
        .client
        .post(server.url("/json"))
        .body(r#"{"ok":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

// Raw blocking sockets: the server needs its own worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_by_the_header_timeout() {
    let config = ServerConfig {
        header_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(guests::HELLO_APP, config).await;
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap_or(0);
    let waited = start.elapsed();
    // Closed (possibly after a 408) well before our 5 s read timeout.
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // A normal request still works.
    assert_eq!(server.get_text("/").await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let (client, url) = (server.client.clone(), server.url("/spin?ms=700"));
    let in_flight = tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = server.addr;
    server.shutdown().await;
    assert_eq!(in_flight.await.unwrap(), "spun");
    // No longer accepting.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

mod bad_manifests {
    use std::path::Path;

    use waterspout_tests::harness::app_with_manifest;

    use super::*;

    fn load(dir: &Path) -> String {
        match waterspout::App::load(dir, ServerConfig::default()) {
            Ok(_) => panic!("a bad manifest loaded"),
            Err(e) => e.to_string(),
        }
    }

    fn handler(name: &str, wasm: &str) -> String {
        format!("[handler.{name}]\nwasm = {wasm:?}\n")
    }

    #[test]
    fn zero_workers() {
        let dir = app_with_manifest(&format!(
            "[app]\nworkers = 0\n\n[[route]]\npattern = \"/\"\nhandler = \"hello\"\n\n{}",
            handler("hello", guests::HELLO_WASM)
        ));
        let e = load(dir.path());
        assert!(e.contains("waterspout.toml:2:") && e.contains("nonzero"), "{e}");
    }

    #[test]
    fn syntax_error() {
        let dir = app_with_manifest("[[route]]\npattern = \"/\"\nhandler = hello\n");
        let e = load(dir.path());
        assert!(e.contains("waterspout.toml:3:"), "{e}");
    }

    #[test]
    fn unknown_handler() {
        let dir = app_with_manifest(&format!(
            "[[route]]\npattern = \"/\"\nhandler = \"nope\"\n\n{}",
            handler("hello", guests::HELLO_WASM)
        ));
        let e = load(dir.path());
        assert!(
            e.contains("waterspout.toml:3:") && e.contains("unknown handler \"nope\""),
            "{e}"
        );
    }

    #[test]
    fn invalid_regex() {
        let dir = app_with_manifest(&format!(
            "[[route]]\npattern = \"/(\"\nhandler = \"hello\"\n{}",
            handler("hello", guests::HELLO_WASM)
        ));
        let e = load(dir.path());
        assert!(
            e.contains("waterspout.toml:2:") && e.contains("invalid route pattern"),
            "{e}"
        );
    }

    #[test]
    fn missing_wasm_file() {
        let dir = app_with_manifest(&format!(
            "[[route]]\npattern = \"/\"\nhandler = \"hello\"\n\n{}",
            handler("hello", "missing.wasm")
        ));
        let e = load(dir.path());
        assert!(
            e.contains("waterspout.toml:6:") && e.contains("missing.wasm"),
            "{e}"
        );
    }

    #[test]
    fn component_of_the_wrong_world() {
        let dir = app_with_manifest(&format!(
            "[[route]]\npattern = \"/\"\nhandler = \"cmd\"\n\n{}",
            handler("cmd", guests::COMMAND_WASM)
        ));
        let e = load(dir.path());
        assert!(
            e.contains("waterspout.toml:6:") && e.contains("exports none of the worlds"),
            "{e}"
        );
        assert!(e.contains("wasi:cli/run"), "{e}");
    }

    #[test]
    fn core_module_instead_of_component() {
        let dir = app_with_manifest(&format!(
            "[[route]]\npattern = \"/\"\nhandler = \"m\"\n\n{}",
            handler("m", "m.wasm")
        ));
        std::fs::write(dir.path().join("m.wasm"), b"\0asm\x01\0\0\0").unwrap();
        let e = load(dir.path());
        assert!(e.contains("core WebAssembly module, not a component"), "{e}");
    }

    /// A core module whose component type (the custom section wit-bindgen
    /// writes) is garbage: refused as such, with the decoder's reason.
    #[test]
    fn core_module_with_a_broken_component_type() {
        let (name, payload) = (b"component-type:broken", b"not a component type");
        let mut section = vec![name.len() as u8];
        section.extend_from_slice(name);
        section.extend_from_slice(payload);
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend([0, section.len() as u8]);
        module.extend(section);
        let dir = app_with_manifest(&format!(
            "[[route]]\npattern = \"/\"\nhandler = \"m\"\n\n{}",
            handler("m", "m.wasm")
        ));
        std::fs::write(dir.path().join("m.wasm"), module).unwrap();
        let error = match waterspout::App::load(dir.path(), ServerConfig::default()) {
            Ok(_) => panic!("a broken core module loaded"),
            Err(e) => e,
        };
        let mut chain = vec![error.to_string()];
        let mut source = std::error::Error::source(&error);
        while let Some(e) = source {
            chain.push(e.to_string());
            source = e.source();
        }
        let chain = chain.join(": ");
        assert!(
            chain.contains("waterspout.toml:")
                && chain.contains("carries a component type, but it cannot be made a component"),
            "{chain}"
        );
        assert!(
            chain.contains("component-type"),
            "the decoder's reason is missing: {chain}"
        );
    }
}
