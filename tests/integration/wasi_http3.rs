//! Standard wasi:http 0.3 (WASI p3) `service` components served unchanged,
//! beside 0.2 ones: the example hello, faults (trap, CPU loop, a guest
//! waiting on the host's clock), and the outbound policy.

use std::time::{Duration, Instant};

use waterspout_tests::guests;
use waterspout_tests::harness::{TestServer, World, app_with_manifest};

use crate::examples::{check, wasi_hello};

/// The shared wasi:http hello case, and the handler listed as a 0.3 one.
async fn wasi_hello_p3(server: &TestServer, handler: &str) {
    wasi_hello(server).await;
    let listed = server
        .app
        .handlers()
        .into_iter()
        .find(|h| h.name == handler)
        .unwrap();
    assert_eq!(listed.world, World::WasiHttp3);
}

#[tokio::test]
async fn a_wasi_http3_component_is_served_at_its_routes() {
    check(guests::WASI_HELLO_P3_APP, async |server| {
        wasi_hello_p3(server, "wasi-hello-p3").await
    })
    .await;
}

/// examples/python/wasi-hello-p3: componentize-py's own `wasi:http/service`
/// shape, no SDK.
#[tokio::test]
async fn a_python_wasi_http3_component_is_served_at_its_routes() {
    check(guests::PYTHON_WASI_HELLO_P3_APP, async |server| {
        wasi_hello_p3(server, "wasi-hello-p3").await
    })
    .await;
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

/// A body the guest writes after the head, waiting between its parts,
/// arrives whole (the rest of the run goes on while hyper waits for it), and
/// the instance then serves the next request (`/count` counts on).
#[tokio::test]
async fn a_body_written_after_the_head_arrives_whole_and_its_instance_serves_again() {
    let dir = manifest_with("reuse = 10\nmax_instances = 1");
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    for (ms, count) in [(0, "2"), (50, "4")] {
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            server.get_text(&format!("/stream?ms={ms}")),
        )
        .await
        .unwrap_or_else(|_| panic!("/stream?ms={ms} did not end"));
        assert_eq!(answer, (200, "abc".into()), "/stream?ms={ms}");
        assert_eq!(
            server.get_text("/count").await,
            (200, count.into()),
            "after ms={ms}"
        );
    }
    server.shutdown().await;
}

/// A body that stops coming after the head is cut at the handler's time
/// limit: the client sees the body fail (no chunked end: wasmtime ends the
/// body cleanly when its store is dropped, which told the client a
/// truncated body was whole) instead of a hang, and its instance is
/// dropped: with one
/// instance allowed, the next request gets a fresh one (`/count` is 1)
/// instead of waiting behind it.
#[tokio::test]
async fn a_body_that_stalls_after_the_head_is_cut_at_the_time_limit() {
    let dir = app_with_manifest(&format!(
        "[[route]]\npattern = \"/.*\"\nhandler = \"fetch\"\n\n[handler.fetch]\nwasm = {:?}\ntimeout_ms = 1000\nreuse = 3\nmax_instances = 1\n",
        guests::WASI_FETCH_P3_WASM
    ));
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    stalled_body_is_cut(&server).await;
    let next = tokio::time::timeout(Duration::from_secs(10), server.get_text("/count"))
        .await
        .unwrap();
    assert_eq!(next, (200, "1".into()));
    server.shutdown().await;
}

/// The same on an instance shared by several requests at once
/// (`concurrency = 4`): stopping the instance at the deadline cuts the body.
#[tokio::test]
async fn a_body_that_stalls_on_a_shared_instance_is_cut_at_the_time_limit() {
    let dir = shared_app("timeout_ms = 1000\nconcurrency = 4\nreuse = 100\nmax_instances = 1");
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    stalled_body_is_cut(&server).await;
    assert_eq!(server.get_text("/count").await, (200, "1".into()));
    server.shutdown().await;
}

/// `GET /stall`: a 200 whose body fails (never ends cleanly) at the time
/// limit, after its first part.
async fn stalled_body_is_cut(server: &TestServer) {
    let start = Instant::now();
    let response = server.get("/stall").await;
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(10), response.bytes())
        .await
        .expect("the stalled body was not cut");
    let took = start.elapsed();
    assert!(body.is_err(), "a cut body ended cleanly: {body:?}");
    assert!(took >= Duration::from_millis(900), "cut after {took:?}");
    assert!(took < Duration::from_secs(5), "cut after {took:?}");
}

/// The test guest on one worker thread (requests share instances per
/// thread) with `options` for its handler.
fn shared_app(options: &str) -> tempfile::TempDir {
    app_with_manifest(&format!(
        "[app]\nworkers = 1\n\n[[route]]\npattern = \"/.*\"\nhandler = \"fetch\"\n\n[handler.fetch]\nwasm = {:?}\n{options}\n",
        guests::WASI_FETCH_P3_WASM
    ))
}

/// `ID PEAK` answers of `/slow`, as (instance id, peak in flight).
fn id_and_peak(answer: &(u16, String)) -> (String, u32) {
    assert_eq!(answer.0, 200, "{answer:?}");
    let (id, peak) = answer.1.split_once(' ').unwrap_or_else(|| panic!("{answer:?}"));
    (id.to_owned(), peak.parse().unwrap())
}

/// `concurrency = 4`, one instance allowed: four slow requests at once are
/// in flight together on that one instance; a fifth waits for room on it.
#[tokio::test]
async fn with_concurrency_one_wasi_http3_instance_serves_several_requests_at_once() {
    let dir = shared_app("timeout_ms = 10000\nconcurrency = 4\nreuse = 100\nmax_instances = 1");
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    let answers = futures_util::future::join_all((0..5).map(|_| server.get_text("/slow?ms=500"))).await;
    let seen: Vec<(String, u32)> = answers.iter().map(id_and_peak).collect();
    assert!(
        seen.iter().all(|(id, _)| *id == seen[0].0),
        "one instance: {seen:?}"
    );
    assert_eq!(seen.iter().map(|(_, peak)| *peak).max(), Some(4), "{seen:?}");
    // Still the same instance afterwards (reuse = 100).
    assert_eq!(server.get_text("/id").await, (200, seen[0].0.clone()));
    server.shutdown().await;
}

/// The default (`concurrency = 1`) with reuse: one request at a time per
/// instance; concurrent requests wait for it in turn.
#[tokio::test]
async fn without_concurrency_a_wasi_http3_instance_serves_one_request_at_a_time() {
    let dir = shared_app("timeout_ms = 10000\nreuse = 100\nmax_instances = 1");
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    let answers = futures_util::future::join_all((0..3).map(|_| server.get_text("/slow?ms=200"))).await;
    let seen: Vec<(String, u32)> = answers.iter().map(id_and_peak).collect();
    assert!(
        seen.iter().all(|(id, _)| *id == seen[0].0),
        "one instance: {seen:?}"
    );
    assert!(seen.iter().all(|(_, peak)| *peak == 1), "one at a time: {seen:?}");
    server.shutdown().await;
}

/// A request spinning on the CPU keeps its instance busy: another request
/// meanwhile goes to another instance and is answered; the spinning one is
/// stopped at its deadline (503) and its instance dropped.
#[tokio::test]
async fn a_spinning_request_is_stopped_at_its_deadline_while_another_instance_answers() {
    let dir = shared_app("timeout_ms = 3000\nconcurrency = 4\nreuse = 100");
    let server = std::sync::Arc::new(TestServer::start(dir.path().to_str().unwrap()).await);
    let first = server.get_text("/id").await;
    assert_eq!(first.0, 200);
    let spinning = {
        let server = server.clone();
        tokio::spawn(async move { server.get_text("/spin").await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = tokio::time::timeout(Duration::from_secs(10), server.get_text("/id"))
        .await
        .expect("answered while the other request spins");
    assert_eq!(other.0, 200);
    assert_ne!(other.1, first.1, "a new instance, not the spinning one");
    assert!(
        !spinning.is_finished(),
        "the spinning request was stopped too early"
    );
    let (status, _) = tokio::time::timeout(Duration::from_secs(10), spinning)
        .await
        .expect("stopped at its deadline")
        .unwrap();
    assert_eq!(status, 503);
    assert_eq!(server.get_text("/id").await, other);
    std::sync::Arc::into_inner(server).unwrap().shutdown().await;
}

/// Requests in flight on one instance share its fate: when one runs past
/// its time limit the instance is stopped, and another request waiting on
/// it (that would have answered in time) gets a 503 too. Then a fresh
/// instance serves.
#[tokio::test]
async fn requests_sharing_an_instance_stop_with_it_at_one_of_their_deadlines() {
    let dir = shared_app("timeout_ms = 2000\nconcurrency = 4\nreuse = 100\nmax_instances = 1");
    let server = std::sync::Arc::new(TestServer::start(dir.path().to_str().unwrap()).await);
    let before = server.get_text("/id").await;
    let late = {
        let server = server.clone();
        tokio::spawn(async move { server.get_text("/slow?ms=60000").await })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Would answer at ~2.5 s, before its own limit (~3 s); the first
    // request's limit (~2 s) stops the instance first.
    let sharing = server.get_text("/slow?ms=1500").await;
    assert_eq!(sharing.0, 503, "{sharing:?}");
    assert_eq!(late.await.unwrap().0, 503);
    let after = server.get_text("/id").await;
    assert_eq!(after.0, 200);
    assert_ne!(after.1, before.1, "a fresh instance");
    std::sync::Arc::into_inner(server).unwrap().shutdown().await;
}

/// A hot swap under concurrency: the requests in flight on the old
/// version's instance finish there; every request after the swap gets a
/// new version's instance, the old one takes no more.
#[tokio::test]
async fn a_hot_swap_retires_shared_wasi_http3_instances_after_their_requests() {
    let dir = shared_app("timeout_ms = 10000\nconcurrency = 4\nreuse = 100");
    let server = std::sync::Arc::new(TestServer::start(dir.path().to_str().unwrap()).await);
    let old = server.get_text("/id").await;
    let in_flight: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.get_text("/slow?ms=2000").await })
        })
        .collect();
    // Both are in flight on the instance (asked of the instance itself).
    let waited = Instant::now();
    while server.get_text("/in-flight").await != (200, "2".into()) {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "the slow requests never got in flight together"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wasm = std::fs::read(guests::WASI_FETCH_P3_WASM).unwrap();
    server.app.deploy("fetch", wasm).await.unwrap();
    let new = server.get_text("/id").await;
    assert_eq!(new.0, 200);
    assert_ne!(new.1, old.1, "the new version has its own instance");
    for request in in_flight {
        let (id, peak) = id_and_peak(&request.await.unwrap());
        assert_eq!(id, old.1, "finished on the old version's instance");
        assert!(peak >= 2, "{peak}");
    }
    assert_eq!(server.get_text("/id").await, new);
    std::sync::Arc::into_inner(server).unwrap().shutdown().await;
}
