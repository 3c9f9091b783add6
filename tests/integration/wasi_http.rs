//! Standard wasi:http/proxy components served unchanged.

use std::time::Duration;

use waterspout_tests::guests;
use waterspout_tests::harness::{TestServer, World, app_with_manifest};

#[tokio::test]
async fn a_wasi_http_component_is_served_at_its_routes() {
    let server = TestServer::start(guests::WASI_HELLO_APP).await;
    for path in ["/", "/any/path?x=1"] {
        let r = server.get(path).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(r.text().await.unwrap(), "Hello, world");
    }
    let listed = server
        .app
        .handlers()
        .into_iter()
        .find(|h| h.name == "wasi-hello")
        .unwrap();
    assert_eq!(listed.world, World::WasiHttp);
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
        guests::WASI_FETCH_WASM
    ))
}

#[tokio::test]
async fn outbound_requests_are_denied_unless_the_manifest_allows_the_host() {
    let up = upstream().await;
    let denied = TestServer::start(guests::WASI_FETCH_APP).await;
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
async fn a_trapping_wasi_http_component_is_a_500_and_the_next_request_works() {
    let server = TestServer::start(guests::WASI_FETCH_APP).await;
    let (status, body) = server.get_text("/panic").await;
    assert_eq!(status, 500);
    assert!(!body.contains("panicking"), "{body}");
    let r = tokio::time::timeout(Duration::from_secs(10), server.get_text("/"))
        .await
        .unwrap();
    assert_eq!(r, (200, "wasi-fetch".into()));
    server.shutdown().await;
}
