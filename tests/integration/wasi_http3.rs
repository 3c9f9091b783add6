//! Standard wasi:http 0.3 (WASI p3) `service` components served unchanged,
//! beside 0.2 ones: the example hello, faults (trap, CPU loop, a guest
//! waiting on the host's clock), and the outbound policy.

use std::time::{Duration, Instant};

use waterspout_tests::guests;
use waterspout_tests::harness::{TestServer, World, app_with_manifest};

#[tokio::test]
async fn a_wasi_http3_component_is_served_at_its_routes() {
    let server = TestServer::start(guests::WASI_HELLO_P3_APP).await;
    for path in ["/", "/any/path?x=1", "/"] {
        let r = server.get(path).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(r.text().await.unwrap(), "Hello, world");
    }
    let listed = server
        .app
        .handlers()
        .into_iter()
        .find(|h| h.name == "wasi-hello-p3")
        .unwrap();
    assert_eq!(listed.world, World::WasiHttp3);
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_each_get_their_answer() {
    let server = TestServer::start(guests::WASI_HELLO_P3_APP).await;
    let answers = futures_util::future::join_all((0..32).map(|_| server.get_text("/"))).await;
    for answer in answers {
        assert_eq!(answer, (200, "Hello, world".into()));
    }
    server.shutdown().await;
}

/// A tiny upstream on loopback to fetch from.
async fn upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    addr
}

fn manifest_with(allowed: &str) -> tempfile::TempDir {
    app_with_manifest(&format!(
        "[[route]]\npattern = \"/.*\"\nhandler = \"fetch\"\n\n[handler.fetch]\nwasm = {:?}\ntimeout_ms = 5000\n{allowed}\n",
        guests::WASI_FETCH_P3_WASM
    ))
}

#[tokio::test]
async fn outbound_requests_are_denied_unless_the_manifest_allows_the_host() {
    let up = upstream().await;
    let denied = TestServer::start(guests::WASI_FETCH_P3_APP).await;
    let (status, body) = denied.get_text(&format!("/fetch?url=http://{up}/")).await;
    assert_eq!(status, 200);
    assert_eq!(body, "error: ErrorCode::HttpRequestDenied");
    denied.shutdown().await;

    let dir = manifest_with("allowed_outbound_hosts = [\"127.0.0.1\"]");
    let allowed = TestServer::start(dir.path().to_str().unwrap()).await;
    let (status, body) = allowed.get_text(&format!("/fetch?url=http://{up}/")).await;
    assert_eq!((status, body.as_str()), (200, "fetched 204"));
    // Another host is still refused.
    let (_, body) = allowed.get_text("/fetch?url=http://localhost:1/").await;
    assert_eq!(body, "error: ErrorCode::HttpRequestDenied");
    allowed.shutdown().await;
}

#[tokio::test]
async fn a_trapping_wasi_http3_component_is_a_500_and_the_next_request_works() {
    let server = TestServer::start(guests::WASI_FETCH_P3_APP).await;
    let (status, body) = server.get_text("/panic").await;
    assert_eq!(status, 500);
    assert!(!body.contains("panicking"), "{body}");
    let r = tokio::time::timeout(Duration::from_secs(10), server.get_text("/"))
        .await
        .unwrap();
    assert_eq!(r, (200, "wasi-fetch-p3".into()));
    server.shutdown().await;
}

/// timeout_ms = 1000 for this handler in its manifest: a guest looping on
/// the CPU (epoch deadline) and one waiting on the host's clock (wall-clock
/// deadline, enforced outside the store's event loop) both get a 503 then.
#[tokio::test]
async fn a_slow_wasi_http3_component_is_a_503_at_its_time_limit() {
    let server = TestServer::start(guests::WASI_FETCH_P3_APP).await;
    for path in ["/spin", "/sleep"] {
        let start = Instant::now();
        let (status, _) = tokio::time::timeout(Duration::from_secs(10), server.get_text(path))
            .await
            .unwrap_or_else(|_| panic!("{path} was not stopped"));
        let took = start.elapsed();
        assert_eq!(status, 503, "{path}");
        assert!(took >= Duration::from_millis(900), "{path} took {took:?}");
        assert!(took < Duration::from_secs(5), "{path} took {took:?}");
    }
    assert_eq!(server.get_text("/").await, (200, "wasi-fetch-p3".into()));
    server.shutdown().await;
}

/// A fresh instance per request by default; with `reuse = 3`, an instance
/// serves three requests one after another, then a fresh one takes over. A
/// trap never returns its instance.
#[tokio::test]
async fn wasi_http3_instances_are_fresh_by_default_and_reused_when_configured() {
    let server = TestServer::start(guests::WASI_FETCH_P3_APP).await;
    for _ in 0..3 {
        assert_eq!(server.get_text("/count").await, (200, "1".into()));
    }
    server.shutdown().await;

    let dir = manifest_with("reuse = 3\nmax_instances = 1");
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    let mut counts = Vec::new();
    for _ in 0..7 {
        counts.push(server.get_text("/count").await.1);
    }
    assert_eq!(counts, ["1", "2", "3", "1", "2", "3", "1"]);
    assert_eq!(server.get_text("/panic").await.0, 500);
    assert_eq!(server.get_text("/count").await, (200, "1".into()));
    server.shutdown().await;
}
