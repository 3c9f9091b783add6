//! WebSocket abuse (issue 6, item 4), beside what `integration/websocket.rs`
//! covers (1009, 1002, 1007, a client that does not read its messages, idle
//! pings): a ping flood from a client that never reads the pongs stays
//! bounded in memory, and other connections keep being served.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use waterspout_tests::guests;
use waterspout_tests::harness::{TestServer, measure_alone};

use crate::raw;

/// Resident memory of this process (the server runs in it), MiB.
fn rss_mib() -> u64 {
    waterspout_tests::harness::rss_kib("self") / 1024
}

/// A raw connection to `/echo` after the opening handshake.
async fn open_raw(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(raw::PATIENCE, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "closed during the handshake");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// A masked client ping with a 125-byte payload (the largest a control
/// frame may carry); the zero mask leaves the payload as it is.
fn ping_frame() -> Vec<u8> {
    let mut frame = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    frame.extend_from_slice(&[b'p'; 125]);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_stays_bounded() {
    let _alone = measure_alone().await;
    let server = TestServer::start(guests::ECHO_APP).await;
    let flooded = open_raw(&server).await;
    let (_unread, mut write) = flooded.into_split();
    let batch = ping_frame().repeat(1000); // 131 KB of pings
    let before = rss_mib();
    let flood = tokio::spawn(async move {
        let mut sent = 0usize;
        // 200 MB of pings, or less if the server stops reading.
        while sent < 200 << 20 {
            match tokio::time::timeout(Duration::from_secs(1), write.write_all(&batch)).await {
                Ok(Ok(())) => sent += batch.len(),
                _ => break,
            }
        }
        (sent, write)
    });
    // Meanwhile another client is echoed promptly.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/echo", server.addr))
        .await
        .unwrap();
    let mut worst = Duration::ZERO;
    while !flood.is_finished() {
        let start = Instant::now();
        ws.send(Message::text("hi")).await.unwrap();
        let echoed = tokio::time::timeout(raw::PATIENCE, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text("hi"));
        worst = worst.max(start.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (sent, write) = flood.await.unwrap();
    let grown = rss_mib().saturating_sub(before);
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
