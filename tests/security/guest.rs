//! Guest misbehaviour (issue 6, item 3): what a handler sets never breaks the
//! HTTP framing, and every fault — endless loop, memory growth, deep
//! recursion, unbounded resource creation, a response that never finishes —
//! costs only its own request while other requests stay fast.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use waterspout_tests::guests;
use waterspout_tests::harness::{TestServer, measure_alone, own_rss_kib, raw};

const TORNADO_500: &str =
    "<html><title>500: Internal Server Error</title><body>500: Internal Server Error</body></html>";
const TORNADO_503: &str =
    "<html><title>503: Service Unavailable</title><body>503: Service Unavailable</body></html>";

/// One request for `path` with `Connection: close`; all of what came back.
async fn get_raw(server: &TestServer, path: &str) -> raw::Outcome {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw::exchange(server.addr, request.as_bytes(), Duration::from_secs(8)).await
}

#[tokio::test]
async fn guest_header_names_and_values_with_cr_lf_nul_are_refused() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let outcome = get_raw(&server, "/bad-header-name").await;
    assert_eq!(outcome.statuses(), [200], "{}", outcome.raw);
    // The guest called the raw import: every attempt came back as an error.
    assert_eq!(outcome.replies[0].body_text(), "refused 7 of 7");
    for needle in [
        "X-Injected",
        "x-injected",
        "X-Bad",
        "x-bad",
        "X-Nul",
        "x-nul",
        "x-value",
        "X-Colon",
    ] {
        assert!(
            !outcome.raw.contains(needle),
            "{needle} on the wire: {}",
            outcome.raw
        );
    }
    assert!(!outcome.raw.contains('\0'));
    server.shutdown().await;
}

#[tokio::test]
async fn guest_reason_phrases_with_cr_lf_nul_are_refused() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let outcome = get_raw(&server, "/bad-reason").await;
    assert!(outcome.raw.starts_with("HTTP/1.1 200 OK\r\n"), "{}", outcome.raw);
    assert_eq!(outcome.replies[0].body_text(), "refused 4 of 4");
    assert!(
        !outcome.raw.to_ascii_lowercase().contains("x-injected"),
        "{}",
        outcome.raw
    );
    // The SDK path (set_header with CR/LF) panics on the refusal: a 500.
    let outcome = get_raw(&server, "/bad-header").await;
    assert_eq!(outcome.statuses(), [500], "{}", outcome.raw);
    assert!(
        !outcome.raw.to_ascii_lowercase().contains("x-injected"),
        "{}",
        outcome.raw
    );
    server.shutdown().await;
}

#[tokio::test]
async fn guest_framing_headers_are_replaced_by_the_hosts() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /framing-headers HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = raw::read_reply(&mut stream).await.expect("an answer");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body_text(), "framed");
    assert_eq!(
        reply.header("content-length").as_deref(),
        Some("6"),
        "{}",
        reply.head
    );
    let head = reply.head.to_ascii_lowercase();
    assert_eq!(head.matches("content-length").count(), 1, "{head}");
    for absent in ["transfer-encoding", "connection:", "upgrade", "trailer", "999"] {
        assert!(!head.contains(absent), "{absent} in {head}");
    }
    // The guest's `Connection: close` did not close the connection either.
    stream
        .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let next = raw::read_reply(&mut stream).await.expect("keep-alive");
    assert_eq!((next.status, next.body_text().as_str()), (200, "ok"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_never_finishes_is_cut_off() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    let start = Instant::now();
    let outcome = get_raw(&server, "/never-finish").await;
    let took = start.elapsed();
    // Headers and the flushed chunk went out; then the 1 s limit hit and the
    // body was ended abnormally: no last chunk, connection closed.
    assert_eq!(outcome.statuses(), [200], "{}", outcome.raw);
    let reply = &outcome.replies[0];
    assert_eq!(reply.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(reply.body_text(), "first\n");
    assert!(reply.truncated, "the body looked complete: {}", outcome.raw);
    assert!(!outcome.raw.ends_with("0\r\n\r\n"), "{}", outcome.raw);
    assert!(outcome.closed);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(server.get_text("/ok").await, (200, "ok".into()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_resource_creation_is_stopped_and_memory_released() {
    let _alone = measure_alone().await;
    let server = TestServer::start(guests::FAULTS_APP).await;
    // Warm up: instance slots and allocator arenas.
    let (status, body) = server.get_text("/resource-bomb").await;
    assert_eq!((status, body.as_str()), (500, TORNADO_500));
    let before = own_rss_kib();
    let start = Instant::now();
    let bombs: Vec<_> = (0..8)
        .map(|_| {
            let (client, url) = (server.client.clone(), server.url("/resource-bomb"));
            tokio::spawn(async move {
                let r = client.get(url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    for bomb in bombs {
        assert_eq!(bomb.await.unwrap(), (500, TORNADO_500.to_owned()));
    }
    let took = start.elapsed();
    let grown_mib = own_rss_kib().saturating_sub(before) / 1024;
    eprintln!("8 resource bombs: {took:?}, RSS +{grown_mib} MiB");
    // Stopped by the resource limit (MAX_RESOURCES), not by the 30 s time
    // limit; before it, each bomb held ~40 MiB and a tokio task per handle.
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(grown_mib < 64, "RSS grew {grown_mib} MiB");
    assert_eq!(server.get_text("/ok").await, (200, "ok".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn fault_pages_never_carry_trap_text() {
    let server = TestServer::start(guests::FAULTS_APP).await;
    for (path, status, page) in [
        ("/trap", 500, TORNADO_500),
        ("/grow", 500, TORNADO_500),
        ("/recurse", 500, TORNADO_500),
        ("/resource-bomb", 500, TORNADO_500),
        ("/bad-header", 500, TORNADO_500),
        ("/loop", 503, TORNADO_503),
    ] {
        let outcome = get_raw(&server, path).await;
        assert_eq!(outcome.statuses(), [status], "{path}: {}", outcome.raw);
        assert_eq!(outcome.replies[0].body_text(), page, "{path}");
        for leak in ["panicked", "wasm", "trap", "backtrace", "faults"] {
            assert!(
                !outcome.raw.contains(leak),
                "{path} leaked {leak:?}: {}",
                outcome.raw
            );
        }
    }
    server.shutdown().await;
}

/// Every kind of fault at once, over and over, while a client measures the
/// latency of a normal request: each fault gets its own answer and the
/// normal requests stay fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_cost_only_their_own_request() {
    let _alone = measure_alone().await;
    let server = TestServer::start(guests::FAULTS_APP).await;
    for _ in 0..3 {
        assert_eq!(server.get_text("/ok").await.0, 200);
    }
    let until = Instant::now() + Duration::from_secs(4);
    let faults: Vec<_> = [
        ("/loop", 503),
        ("/grow", 500),
        ("/recurse", 500),
        ("/trap", 500),
        ("/resource-bomb", 500),
        ("/never-finish", 200),
        ("/spin?ms=300", 200),
    ]
    .into_iter()
    .map(|(path, status)| {
        let (client, url) = (server.client.clone(), server.url(path));
        tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < until {
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status().as_u16(), status, "{url}");
                // never-finish: the body read fails when it is cut off.
                let _ = r.bytes().await;
                n += 1;
            }
            n
        })
    })
    .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let start = Instant::now();
        assert_eq!(server.get_text("/ok").await, (200, "ok".into()));
        latencies.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut rounds = 0;
    for fault in faults {
        rounds += fault.await.unwrap();
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "{} ok requests beside {rounds} faults: median {median:?}, p99 {p99:?}",
        latencies.len()
    );
    assert!(
        latencies.len() >= 20,
        "only {} normal requests in 4 s",
        latencies.len()
    );
    assert!(median < Duration::from_millis(50), "median {median:?}");
    assert!(p99 < Duration::from_millis(500), "p99 {p99:?}");
    server.shutdown().await;
}
