//! Slow and greedy clients (issue 6, item 2): trickled headers and bodies,
//! idle keep-alive, many idle connections and the connection cap. Each is
//! cut off by a timeout or refused, and a normal request still gets through
//! quickly.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use waterspout::ServerConfig;
use waterspout_tests::guests;
use waterspout_tests::harness::{TestServer, measure_alone, own_rss_kib, raw};

async fn start(config: ServerConfig) -> TestServer {
    TestServer::start_with(guests::FAULTS_APP, config).await
}

/// A normal request on a fresh connection: `(status, body, how long)`.
async fn timed_ok(server: &TestServer) -> (u16, String, Duration) {
    let start = Instant::now();
    let outcome = raw::exchange(
        server.addr,
        b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    let reply = outcome
        .replies
        .first()
        .unwrap_or_else(|| panic!("no answer: {}", outcome.raw));
    (reply.status, reply.body_text(), start.elapsed())
}

/// Writes `bytes` one at a time, `every` apart, until done or the server
/// closes; returns when it stopped and whether the server closed.
async fn trickle(stream: &mut TcpStream, bytes: &[u8], every: Duration) -> (Duration, bool) {
    let start = Instant::now();
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() {
            return (start.elapsed(), true);
        }
        // A read between writes notices the close (a write may still succeed).
        if raw::closes_within(stream, every).await {
            return (start.elapsed(), true);
        }
    }
    (start.elapsed(), false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickled_byte_by_byte_are_cut_at_the_header_timeout() {
    let server = start(ServerConfig {
        header_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // 10 bytes a second: the whole head would take far longer than 1 s.
    let head: Vec<u8> = format!(
        "GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
        "s".repeat(100)
    )
    .into_bytes();
    let (after, closed) = trickle(&mut stream, &head, Duration::from_millis(100)).await;
    assert!(closed, "the server waited for the whole trickled head");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "closed after {after:?}"
    );
    let (status, body, took) = timed_ok(&server).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert!(took < Duration::from_secs(1), "{took:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_at_the_body_timeout_with_408() {
    let server = start(ServerConfig {
        body_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut read_half, mut write_half) = stream.into_split();
    write_half
        .write_all(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    // Ten bytes a second, one at a time; the answer arrives while we write.
    let writer = tokio::spawn(async move {
        for byte in [b'b'; 100] {
            if write_half.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let reply = raw::read_reply(&mut read_half)
        .await
        .expect("an answer before the body ends");
    let took = start.elapsed();
    assert_eq!(reply.status, 408, "{reply:?}");
    assert_eq!(reply.header("connection").as_deref(), Some("close"));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(raw::closes_within(&mut read_half, Duration::from_secs(3)).await);
    writer.abort();
    // A body sent at once is unaffected.
    let outcome = raw::exchange(
        server.addr,
        b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(outcome.statuses(), [405], "{}", outcome.raw);
    server.shutdown().await;
}

/// hyper 1's header-read timer starts whenever the connection waits for a
/// request head, so it is also the keep-alive idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let server = start(ServerConfig {
        header_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).await.unwrap();
    assert_eq!(raw::read_reply(&mut stream).await.unwrap().status, 200);
    // Within the timeout the connection is still there for the next request.
    tokio::time::sleep(Duration::from_millis(400)).await;
    stream.write_all(request).await.unwrap();
    assert_eq!(raw::read_reply(&mut stream).await.unwrap().status, 200);
    // Then it idles and is closed.
    let idle = Instant::now();
    assert!(
        raw::closes_within(&mut stream, Duration::from_secs(5)).await,
        "idle connection kept open"
    );
    let after = idle.elapsed();
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "{after:?}"
    );

    // A connection that never sends anything is closed the same way.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let start = Instant::now();
    assert!(raw::closes_within(&mut silent, Duration::from_secs(5)).await);
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    // So is one that sends only the start of the HTTP/2 preface (hyper-util
    // waits for all 24 bytes to choose the protocol).
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2").await.unwrap();
    let start = Instant::now();
    assert!(raw::closes_within(&mut partial, Duration::from_secs(5)).await);
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_idle_connections_do_not_delay_a_normal_request_and_are_closed() {
    let server = start(ServerConfig {
        header_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    })
    .await;
    let mut idle = Vec::new();
    for i in 0..500 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        // Half send a partial head, half nothing at all.
        if i % 2 == 0 {
            stream
                .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        idle.push(stream);
    }
    for _ in 0..5 {
        let (status, _, took) = timed_ok(&server).await;
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_millis(500),
            "a normal request took {took:?} beside 500 idle ones"
        );
    }
    // All of them are closed by the header timeout.
    let start = Instant::now();
    for (i, stream) in idle.iter_mut().enumerate() {
        let left = Duration::from_secs(6).saturating_sub(start.elapsed());
        assert!(
            raw::closes_within(stream, left).await,
            "idle connection {i} still open after {:?}",
            start.elapsed()
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_until_timeouts_free_them() {
    let server = start(ServerConfig {
        header_timeout: Duration::from_secs(1),
        max_connections: 20,
        ..ServerConfig::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Let the server accept all twenty before the next one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = TcpStream::connect(server.addr).await.unwrap();
    let _ = over.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let outcome = raw::read_until_quiet(&mut over, Duration::from_secs(1)).await;
    assert!(
        outcome.closed && outcome.replies.is_empty(),
        "over the cap: {}",
        outcome.raw
    );
    // Once the idle ones time out, requests are served again.
    for stream in &mut idle {
        assert!(raw::closes_within(stream, Duration::from_secs(4)).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body, took) = timed_ok(&server).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert!(took < Duration::from_millis(500), "{took:?}");
    server.shutdown().await;
}

/// A client that pipelines requests and never reads the answers: hyper
/// stops reading once its write buffer is full, so after the kernel's socket
/// buffers (a few MB each way) the client is blocked, the server holds a
/// bounded amount, and others are served normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_client_that_never_reads_is_bounded() {
    let _alone = measure_alone().await;
    // Its connection never drains: do not wait 30 s for it at shutdown.
    let server = start(ServerConfig {
        shutdown_grace: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let batch = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
    let (_read, write) = stream.into_split();
    let before = own_rss_kib();
    // Up to 60 MB of requests; stops when the server stops reading.
    let greedy = raw::flood(write, batch, 60 << 20);
    let (sent, write) = tokio::time::timeout(Duration::from_secs(60), greedy)
        .await
        .unwrap()
        .unwrap();
    let grown_mib = own_rss_kib().saturating_sub(before) / 1024;
    eprintln!(
        "a non-reading client got {} MB in; RSS +{grown_mib} MiB",
        sent >> 20
    );
    assert!(
        sent < 60 << 20,
        "the server kept reading while nobody read its answers"
    );
    assert!(grown_mib < 64, "RSS grew {grown_mib} MiB");
    let (status, _, took) = timed_ok(&server).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(500), "{took:?}");
    drop(write);
    server.shutdown().await;
}

/// HTTP/2 has no header-read timer between requests: an idle connection is
/// closed after `idle_timeout`, but never while a request is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed_but_not_while_a_request_runs() {
    use tokio::io::AsyncReadExt;

    let server = start(ServerConfig {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await;

    // Preface + an empty SETTINGS frame, then silence.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let closed_after = loop {
        match tokio::time::timeout(Duration::from_secs(8), idle.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break start.elapsed(),
            Ok(Ok(_)) => continue, // the server's SETTINGS, its ACK, a GOAWAY
            Err(_) => panic!("idle HTTP/2 connection still open after 8 s"),
        }
    };
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed too early: {closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(5),
        "closed late: {closed_after:?}"
    );

    // A request that runs longer than the idle timeout is not cut.
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = client.get(server.url("/spin?ms=2500")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.unwrap(), "spun");
    server.shutdown().await;
}
