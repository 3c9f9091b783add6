//! WebSocket abuse (issue 6, item 4), beside what `integration/websocket.rs`
//! covers (1009, 1002, 1007, a client that does not read its messages, idle
//! pings): a ping flood from a client that never reads the pongs stays
//! bounded in memory, and other connections keep being served.

use std::time::{Duration, Instant};

use waterspout_tests::guests;
use waterspout_tests::harness::websocket::{PING, client_frame, connect, raw_open, send_text, text};
use waterspout_tests::harness::{TestServer, measure_alone, own_rss_kib, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_stays_bounded() {
    let _alone = measure_alone().await;
    let server = TestServer::start(guests::ECHO_APP).await;
    let flooded = raw_open(&server, "/echo").await;
    let (_unread, write) = flooded.into_split();
    // Masked pings with 125 bytes each, the most a control frame may carry.
    let batch = client_frame(true, PING, &[b'p'; 125]).repeat(1000); // 131 KB
    let before = own_rss_kib() / 1024;
    // 200 MB of pings, or less if the server stops reading.
    let flood = raw::flood(write, batch, 200 << 20);
    // Meanwhile another client is echoed promptly.
    let mut ws = connect(&server, "/echo").await;
    let mut worst = Duration::ZERO;
    while !flood.is_finished() {
        let start = Instant::now();
        send_text(&mut ws, "hi").await;
        assert_eq!(text(&mut ws).await, "hi");
        worst = worst.max(start.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (sent, write) = flood.await.unwrap();
    let grown = (own_rss_kib() / 1024).saturating_sub(before);
    eprintln!(
        "ping flood: {} MB sent before the server stopped reading; RSS +{grown} MiB; worst echo beside it {worst:?}",
        sent >> 20
    );
    // The server may keep reading: RFC 6455 §5.5.3 lets a pong answer only
    // the latest ping, and tungstenite keeps just that one pending, so a
    // flood costs CPU but no memory.
    assert!(grown < 64, "RSS grew {grown} MiB");
    assert!(worst < Duration::from_millis(500), "worst echo {worst:?}");
    drop(write);
    ws.close(None).await.unwrap();
    server.shutdown().await;
}
