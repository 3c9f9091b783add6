//! Instance reuse (`reuse = N`): an instance serves up to N requests of its
//! handler, one after another; a fault drops it; a hot swap retires it;
//! another handler never sees its state.

use waterspout_tests::guests::{REUSE_APP, VERSION_A_WASM};
use waterspout_tests::harness::TestServer;

async fn texts(server: &TestServer, path: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (status, text) = server.get_text(path).await;
        assert_eq!(status, 200, "{path}: {text}");
        out.push(text);
    }
    out
}

#[tokio::test]
async fn an_instance_serves_reuse_requests_then_a_fresh_one_starts() {
    let server = TestServer::start(REUSE_APP).await;
    assert_eq!(
        texts(&server, "/", 7).await,
        [
            "reused:1", "reused:2", "reused:3", "reused:1", "reused:2", "reused:3", "reused:1"
        ]
    );
    // Without `reuse`, every request gets a fresh instance.
    assert_eq!(
        texts(&server, "/fresh", 3).await,
        ["fresh:1", "fresh:1", "fresh:1"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn handlers_sharing_a_component_never_share_an_instance() {
    let server = TestServer::start(REUSE_APP).await;
    assert_eq!(texts(&server, "/", 2).await, ["reused:1", "reused:2"]);
    assert_eq!(texts(&server, "/also", 2).await, ["also:1", "also:2"]);
    assert_eq!(texts(&server, "/", 1).await, ["reused:3"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_trap_drops_the_instance() {
    let server = TestServer::start(REUSE_APP).await;
    assert_eq!(texts(&server, "/", 1).await, ["reused:1"]);
    let (status, _) = server.get_text("/trap").await;
    assert_eq!(status, 500);
    // The trapped instance (which had counted 2) is gone: a fresh one counts 1.
    assert_eq!(texts(&server, "/", 2).await, ["reused:1", "reused:2"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_hot_swap_retires_the_old_versions_instances() {
    let server = TestServer::start(REUSE_APP).await;
    assert_eq!(texts(&server, "/", 2).await, ["reused:1", "reused:2"]);
    // Version 2 is another component; then back to the counter (version 3).
    let other = std::fs::read(VERSION_A_WASM).unwrap();
    server.app.deploy("reused", other).await.unwrap();
    assert_eq!(texts(&server, "/", 1).await, ["a"]);
    let counter = std::fs::read(waterspout_tests::guests::REUSE_WASM).unwrap();
    server.app.deploy("reused", counter).await.unwrap();
    // The idle instance of version 1 (which had counted 2) was retired.
    assert_eq!(texts(&server, "/", 2).await, ["reused:1", "reused:2"]);
    server.shutdown().await;
}
