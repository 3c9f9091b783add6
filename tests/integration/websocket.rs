//! WebSockets end to end: the real server on 127.0.0.1:0, a real client
//! (tokio-tungstenite) for the conversation, and raw TCP for what a polite
//! client never sends (fragments by hand, protocol violations, bad UTF-8).
//!
//! Guests: examples/echo, examples/primes and tests/guests/ws-faults (its
//! commands are listed in its src/lib.rs).

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use waterspout_tests::guests::{ECHO_APP, ECHO_WASM, PRIMES_APP, WS_FAULTS_APP};
use waterspout_tests::harness::websocket::*;
use waterspout_tests::harness::{TestServer, own_rss_kib};

/// Every test finishes well within this, or fails.
const TEST_LIMIT: Duration = Duration::from_secs(60);

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test took too long");
}

/// Serves `app` for `test`, then shuts the server down, within [`TEST_LIMIT`].
async fn with_server(app: &str, test: impl AsyncFnOnce(&TestServer)) {
    bounded(async {
        let server = TestServer::start(app).await;
        test(&server).await;
        server.shutdown().await;
    })
    .await;
}

async fn connect_with(
    server: &TestServer,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<
    (
        Client,
        tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>,
    ),
    WsError,
> {
    let mut request = format!("ws://{}{}", server.addr, path)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
}

/// Waits until the app has no open WebSocket connection; returns how long.
async fn until_all_closed(server: &TestServer) -> Duration {
    let start = Instant::now();
    while server.app.open_websockets() > 0 {
        assert!(start.elapsed() < STEP, "connections stayed open");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Sends `bytes` on a fresh connection to /ws and expects close `code`.
async fn violation(server: &TestServer, bytes: &[u8], code: u16) {
    let mut stream = raw_open(server, "/ws").await;
    stream.write_all(bytes).await.unwrap();
    assert_eq!(raw_close_code(&mut stream).await, Some(code), "for {bytes:02x?}");
    raw_ends(&mut stream).await;
}

// ---------------------------------------------------------------------------
// The examples.

#[tokio::test]
async fn primes_answers_each_number() {
    with_server(PRIMES_APP, async |server| {
        let mut ws = connect(server, "/primes").await;
        for (ask, answer) in [("7", "7 is prime"), ("8", "8 is not prime"), ("2", "2 is prime")] {
            send_text(&mut ws, ask).await;
            assert_eq!(text(&mut ws).await, answer);
        }
        send_text(&mut ws, "seven").await;
        assert!(text(&mut ws).await.starts_with("error"));
        ws.close(None).await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------
// Frames.

#[tokio::test]
async fn fragmented_messages_are_reassembled() {
    with_server(WS_FAULTS_APP, async |server| {
        let mut stream = raw_open(server, "/ws").await;
        // Text in three fragments, a ping between them (control frames may
        // interleave), and a 4-byte UTF-8 character split across fragments.
        let wave = "🌊".as_bytes();
        let mut bytes = client_frame(false, TEXT, b"Hel");
        bytes.extend(client_frame(false, CONTINUATION, b"lo "));
        bytes.extend(client_frame(true, PING, b"mid"));
        bytes.extend(client_frame(false, CONTINUATION, &wave[..2]));
        bytes.extend(client_frame(true, CONTINUATION, &wave[2..]));
        stream.write_all(&bytes).await.unwrap();
        assert_eq!(read_frame(&mut stream).await, Some((true, PONG, b"mid".to_vec())));
        assert_eq!(
            read_frame(&mut stream).await,
            Some((true, TEXT, "Hello 🌊".as_bytes().to_vec()))
        );
        // Binary in two fragments, the first one empty.
        let mut bytes = client_frame(false, BINARY, b"");
        bytes.extend(client_frame(true, CONTINUATION, &[0, 1, 2, 255]));
        stream.write_all(&bytes).await.unwrap();
        assert_eq!(
            read_frame(&mut stream).await,
            Some((true, BINARY, vec![0, 1, 2, 255]))
        );
        // The instance saw two messages (the fragments are one each).
        send_frame(&mut stream, true, TEXT, b"count").await;
        assert_eq!(read_frame(&mut stream).await, Some((true, TEXT, b"3".to_vec())));
        // A clean close from the client: the server echoes the code and
        // closes the socket.
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"done");
        send_frame(&mut stream, true, CLOSE, &payload).await;
        let (_, opcode, echoed) = read_frame(&mut stream).await.unwrap();
        assert_eq!((opcode, &echoed[..2]), (CLOSE, &1000u16.to_be_bytes()[..]));
        raw_ends(&mut stream).await;
    })
    .await;
}

#[tokio::test]
async fn ping_pong_both_ways() {
    with_server(WS_FAULTS_APP, async |server| {
        let mut ws = connect(server, "/ws").await;
        // Client ping → the host answers with a pong carrying the same data.
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .unwrap();
        let pong = tokio::time::timeout(STEP, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
        // Guest ping → the client sees it (and tungstenite answers it).
        send_text(&mut ws, "ping xyz").await;
        let ping = tokio::time::timeout(STEP, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ping, Message::Ping(b"xyz".to_vec().into()));
        // Still a working conversation afterwards.
        send_text(&mut ws, "count").await;
        assert_eq!(text(&mut ws).await, "2");
    })
    .await;
}

// ---------------------------------------------------------------------------
// The close handshake.

#[tokio::test]
async fn client_close_with_code_and_reason_reaches_the_guest() {
    with_server(WS_FAULTS_APP, async |server| {
        // The server answers with the client's code and reason, then ends.
        let mut ws = connect(server, "/ws").await;
        let start = Instant::now();
        ws.close(Some(CloseFrame {
            code: CloseCode::from(4000),
            reason: "client bye".into(),
        }))
        .await
        .unwrap();
        assert_eq!(close_of(&mut ws).await, (4000, "client bye".into()));
        ends(&mut ws).await;
        drop(ws);
        until_all_closed(server).await;
        let quick = start.elapsed();

        // `on-close` gets them: with 4321 "wait-400" the guest busy-waits
        // 400 ms in on-close, so the connection stays counted that long.
        let mut ws = connect(server, "/ws").await;
        let start = Instant::now();
        ws.close(Some(CloseFrame {
            code: CloseCode::from(4321),
            reason: "wait-400".into(),
        }))
        .await
        .unwrap();
        assert_eq!(close_of(&mut ws).await, (4321, "wait-400".into()));
        until_all_closed(server).await;
        let slow = start.elapsed();
        assert!(
            slow >= Duration::from_millis(400),
            "on-close did not see code 4321 / reason wait-400 ({slow:?})"
        );
        assert!(quick < Duration::from_millis(400), "a plain close took {quick:?}");
    })
    .await;
}

#[tokio::test]
async fn server_close_with_code_and_reason() {
    with_server(WS_FAULTS_APP, async |server| {
        let mut ws = connect(server, "/ws").await;
        send_text(&mut ws, "close 4001 server bye").await;
        assert_eq!(close_of(&mut ws).await, (4001, "server bye".into()));
        // tungstenite answered the close frame; the server then ends the TCP connection.
        ends(&mut ws).await;
        until_all_closed(server).await;

        // A raw client: after the guest's close, frames it sends are dropped,
        // and its close answer completes the handshake.
        let mut stream = raw_open(server, "/ws").await;
        send_frame(&mut stream, true, TEXT, b"close 1000 done").await;
        let (_, opcode, payload) = read_frame(&mut stream).await.unwrap();
        assert_eq!(opcode, CLOSE);
        assert_eq!(&payload[..], &[&1000u16.to_be_bytes()[..], b"done"].concat()[..]);
        send_frame(&mut stream, true, TEXT, b"count").await;
        send_frame(&mut stream, true, CLOSE, &1000u16.to_be_bytes()).await;
        raw_ends(&mut stream).await;
    })
    .await;
}

#[tokio::test]
async fn graceful_shutdown_sends_1001() {
    bounded(async {
        let server = TestServer::start(ECHO_APP).await;
        let mut a = connect(&server, "/echo").await;
        let mut b = connect(&server, "/echo").await;
        send_text(&mut a, "x").await;
        assert_eq!(text(&mut a).await, "x");
        let start = Instant::now();
        let shutdown = tokio::spawn(server.shutdown());
        for ws in [&mut a, &mut b] {
            assert_eq!(close_of(ws).await, (1001, "server shutting down".into()));
            ends(ws).await;
        }
        tokio::time::timeout(STEP, shutdown).await.unwrap().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "shutdown took {:?}",
            start.elapsed()
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// The handshake.

#[tokio::test]
async fn subprotocol_selection() {
    with_server(WS_FAULTS_APP, async |server| {
        let (ws, response) = connect_with(server, "/ws", &[("sec-websocket-protocol", "chat.v1, chat.v2")])
            .await
            .unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2");
        drop(ws);
        let (_, response) = connect_with(server, "/ws", &[("sec-websocket-protocol", "other, chat.v1")])
            .await
            .unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
        // Nothing acceptable: accepted without a subprotocol.
        let (_, response) = raw_request(server, "GET", "/ws", &["Sec-WebSocket-Protocol: mqtt"]).await;
        assert_eq!(response.status, 101);
        assert_eq!(response.header("sec-websocket-protocol"), None);
        // The guest picks one the client did not offer: refused (its bug).
        let (_stream, response) = raw_request(server, "GET", "/ws", &["Sec-WebSocket-Protocol: bogus"]).await;
        assert_eq!(response.status, 500);
    })
    .await;
}

#[tokio::test]
async fn open_may_refuse_and_may_write_first() {
    with_server(WS_FAULTS_APP, async |server| {
        let (_, response) = raw_request(server, "GET", "/ws?refuse=401", &[]).await;
        assert_eq!(response.status, 401);
        assert!(
            response.body.contains("401: refused by guest"),
            "{}",
            response.body
        );
        let (_, response) = raw_request(server, "GET", "/ws?refuse=429", &[]).await;
        assert_eq!(response.status, 429);
        // A message written in open arrives first.
        let mut ws = connect(server, "/ws?greet=welcome").await;
        assert_eq!(text(&mut ws).await, "welcome");
        // A refused handshake leaves no instance behind.
        ws.close(None).await.unwrap();
        until_all_closed(server).await;
    })
    .await;
}

#[tokio::test]
async fn origin_check() {
    with_server(WS_FAULTS_APP, async |server| {
        let same = format!("Origin: http://{}", server.addr);
        let (_, r) = raw_request(server, "GET", "/ws", &[&same]).await;
        assert_eq!(r.status, 101);
        let (_, r) = raw_request(server, "GET", "/ws", &["Origin: http://evil.example"]).await;
        assert_eq!(r.status, 403);
        assert!(
            r.body.contains("Cross origin websockets not allowed"),
            "{}",
            r.body
        );
        // Same host, other port: another origin.
        let (_, r) = raw_request(server, "GET", "/ws", &["Origin: http://127.0.0.1:1"]).await;
        assert_eq!(r.status, 403);
        let (_, r) = raw_request(server, "GET", "/ws", &["Origin: null"]).await;
        assert_eq!(r.status, 403);
        // allowed_origins = ["http://allowed.example"]
        let (_, r) = raw_request(server, "GET", "/ws/cors", &["Origin: http://allowed.example"]).await;
        assert_eq!(r.status, 101);
        let (_, r) = raw_request(server, "GET", "/ws/cors", &["Origin: http://other.example"]).await;
        assert_eq!(r.status, 403);
        // No Origin (not a browser): allowed, as in Tornado.
        let (_, r) = raw_request(server, "GET", "/ws", &[]).await;
        assert_eq!(r.status, 101);
    })
    .await;
}

#[tokio::test]
async fn invalid_handshakes() {
    with_server(WS_FAULTS_APP, async |server| {
        let (_, r) = raw_request(server, "GET", "/ws", &["Sec-WebSocket-Key:"]).await;
        assert_eq!(r.status, 400);
        let (_, r) = raw_request(server, "GET", "/ws", &["Upgrade: h2c"]).await;
        assert_eq!(r.status, 400);
        let (_, r) = raw_request(server, "GET", "/ws", &["Connection: keep-alive"]).await;
        assert_eq!(r.status, 400);
        let (_, r) = raw_request(server, "GET", "/ws", &["Sec-WebSocket-Version:"]).await;
        assert_eq!(r.status, 400);
        let (_, r) = raw_request(server, "GET", "/ws", &["Sec-WebSocket-Version: 8"]).await;
        assert_eq!(r.status, 426);
        assert_eq!(r.header("sec-websocket-version").as_deref(), Some("13"));
        let (_, r) = raw_request(server, "POST", "/ws", &["Content-Length: 0"]).await;
        assert_eq!(r.status, 405);
        // `Connection` may list more tokens, in any case.
        let (_, r) = raw_request(server, "GET", "/ws", &["Connection: keep-alive, UPGRADE"]).await;
        assert_eq!(r.status, 101);
        // A plain GET (reqwest) gets 400 too.
        let (status, _) = server.get_text("/ws").await;
        assert_eq!(status, 400);
    })
    .await;
}

#[tokio::test]
async fn max_instances_caps_open_connections() {
    with_server(WS_FAULTS_APP, async |server| {
        let mut first = connect(server, "/ws/one").await;
        let (_, r) = raw_request(server, "GET", "/ws/one", &[]).await;
        assert_eq!(r.status, 503);
        // Other handlers are not affected.
        let other = connect(server, "/ws").await;
        first.close(None).await.unwrap();
        ends(&mut first).await;
        // The permit comes back once the connection is over.
        handshakes_503_until_accepted(server, "/ws/one").await;
        drop(other);
    })
    .await;
}

/// Every slot of the engine's instance pool held by open WebSockets: a new
/// handshake is refused with 503 (busy), not 500.
#[tokio::test]
async fn a_full_instance_pool_refuses_the_handshake_with_503() {
    bounded(async {
        let mut config = waterspout::ServerConfig::default();
        config.engine.max_instances = 2;
        let server = TestServer::start_with(ECHO_APP, config).await;
        let mut a = connect(&server, "/echo").await;
        let b = connect(&server, "/echo").await;
        let (_, r) = raw_request(&server, "GET", "/echo", &[]).await;
        assert_eq!(r.status, 503);
        a.close(None).await.unwrap();
        ends(&mut a).await;
        // The slot comes back once a connection is over.
        handshakes_503_until_accepted(&server, "/echo").await;
        drop(b);
        server.shutdown().await;
    })
    .await;
}

/// Handshakes on `path` are refused with 503 until one is accepted (101),
/// within one STEP: the instance a closed connection held came back.
async fn handshakes_503_until_accepted(server: &TestServer, path: &str) {
    let start = Instant::now();
    loop {
        let (_, r) = raw_request(server, "GET", path, &[]).await;
        if r.status == 101 {
            return;
        }
        assert_eq!(r.status, 503);
        assert!(start.elapsed() < STEP, "the instance never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn open_connections_stay_on_their_version_across_a_swap() {
    with_server(WS_FAULTS_APP, async |server| {
        let mut old = connect(server, "/ws").await;
        send_text(&mut old, "count").await;
        assert_eq!(text(&mut old).await, "1");
        // Activate the echo example as version 2 of handler "ws".
        let bytes = std::fs::read(ECHO_WASM).unwrap();
        assert_eq!(server.app.deploy("ws", bytes).await.unwrap(), 2);
        // A new connection gets version 2 (echo answers "close ..." as text) ...
        let mut new = connect(server, "/ws").await;
        send_text(&mut new, "close 4001 old").await;
        assert_eq!(text(&mut new).await, "close 4001 old");
        // ... while the open one keeps its instance (count goes on) and its
        // version (ws-faults understands "close CODE REASON").
        send_text(&mut old, "count").await;
        assert_eq!(text(&mut old).await, "2");
        send_text(&mut old, "close 4001 old").await;
        assert_eq!(close_of(&mut old).await, (4001, "old".into()));
    })
    .await;
}

// ---------------------------------------------------------------------------
// Limits and faults.

#[tokio::test]
async fn oversize_message_closes_1009() {
    with_server(WS_FAULTS_APP, async |server| {
        // max_message_size = 1024: exactly 1024 passes.
        let mut ws = connect(server, "/ws/small").await;
        let fits = "a".repeat(1024);
        send_text(&mut ws, &fits).await;
        assert_eq!(text(&mut ws).await, fits);
        ws.send(Message::binary(vec![7u8; 1025])).await.unwrap();
        assert_eq!(close_of(&mut ws).await.0, 1009);
        ends(&mut ws).await;

        // Small fragments adding up to more than the limit.
        let mut stream = raw_open(server, "/ws/small").await;
        let mut bytes = Vec::new();
        for _ in 0..4 {
            bytes.extend(client_frame(
                false,
                if bytes.is_empty() { TEXT } else { CONTINUATION },
                &[b'a'; 300],
            ));
        }
        bytes.extend(client_frame(true, CONTINUATION, b"end"));
        stream.write_all(&bytes).await.unwrap();
        assert_eq!(raw_close_code(&mut stream).await, Some(1009));
        raw_ends(&mut stream).await;

        // A frame header announcing a huge payload is refused at once.
        let mut stream = raw_open(server, "/ws/small").await;
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 40).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        stream.write_all(&header).await.unwrap();
        assert_eq!(raw_close_code(&mut stream).await, Some(1009));
        raw_ends(&mut stream).await;
    })
    .await;
}

#[tokio::test]
async fn guest_trap_closes_1011_and_others_keep_going() {
    with_server(WS_FAULTS_APP, async |server| {
        let mut bystander = connect(server, "/ws").await;
        send_text(&mut bystander, "count").await;
        assert_eq!(text(&mut bystander).await, "1");

        let mut victim = connect(server, "/ws").await;
        send_text(&mut victim, "trap").await;
        assert_eq!(close_of(&mut victim).await.0, 1011);
        ends(&mut victim).await;

        // A guest that never returns: the time limit (500 ms) ends it.
        let mut spinner = connect(server, "/ws/slow").await;
        let start = Instant::now();
        send_text(&mut spinner, "spin").await;
        assert_eq!(close_of(&mut spinner).await.0, 1011);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(5),
            "{took:?}"
        );

        // The others are unharmed, and new connections work.
        send_text(&mut bystander, "count").await;
        assert_eq!(text(&mut bystander).await, "2");
        let mut fresh = connect(server, "/ws").await;
        send_text(&mut fresh, "hi").await;
        assert_eq!(text(&mut fresh).await, "hi");
        let mut fresh_slow = connect(server, "/ws/slow").await;
        send_text(&mut fresh_slow, "count").await;
        assert_eq!(text(&mut fresh_slow).await, "1");
    })
    .await;
}

#[tokio::test]
async fn write_buffer_is_capped_for_a_client_that_does_not_read() {
    with_server(WS_FAULTS_APP, async |server| {
        let mut ws = connect(server, "/ws").await;
        // The guest writes 64 KiB messages (up to 4096 = 256 MiB) while the
        // client reads nothing: the queue (10 MiB) fills and write-message fails.
        send_text(&mut ws, "flood 65536").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Now read everything that was accepted (until nothing comes for a while).
        let mut received = 0u32;
        while let Ok(message) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            match message.expect("open").expect("valid") {
                Message::Binary(bytes) => {
                    assert_eq!(bytes.len(), 65536);
                    received += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        send_text(&mut ws, "report").await;
        let report = text(&mut ws).await;
        let (sent, error) = report.split_once(' ').unwrap();
        let sent: u32 = sent.parse().unwrap();
        assert_eq!(error, "write buffer full");
        assert_eq!(received, sent, "every accepted message is delivered");
        // 10 MiB of queue = 160 messages, plus what the socket buffers took.
        assert!(sent < 1000, "{sent} messages were accepted");
        // The connection is still usable.
        send_text(&mut ws, "count").await;
        assert_eq!(text(&mut ws).await, "3");
    })
    .await;
}

#[tokio::test]
async fn idle_connections_are_pinged_then_closed() {
    with_server(WS_FAULTS_APP, async |server| {
        // idle_timeout_secs = 1: a ping after 0.5 s; no answer → 1001 at 1 s.
        let mut stream = raw_open(server, "/ws/idle").await;
        let start = Instant::now();
        let (_, opcode, _) = read_frame(&mut stream).await.unwrap();
        assert_eq!(opcode, PING);
        assert_eq!(raw_close_code(&mut stream).await, Some(1001));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "{took:?}"
        );
        raw_ends(&mut stream).await;

        // A client that answers pings (tungstenite does, while reading)
        // stays connected however quiet it is.
        let mut ws = connect(server, "/ws/idle").await;
        let quiet = tokio::time::timeout(Duration::from_millis(2500), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Ping(_))) => {}
                    other => return other,
                }
            }
        })
        .await;
        assert!(quiet.is_err(), "the connection ended: {quiet:?}");
        send_text(&mut ws, "count").await;
        assert_eq!(text(&mut ws).await, "1");
    })
    .await;
}

// ---------------------------------------------------------------------------
// RFC 6455 conformance (raw frames).

#[tokio::test]
async fn invalid_utf8_closes_1007() {
    with_server(WS_FAULTS_APP, async |server| {
        violation(server, &client_frame(true, TEXT, &[b'o', b'k', 0xff, 0xfe]), 1007).await;
        // Split across fragments, invalid only as a whole.
        let mut bytes = client_frame(false, TEXT, &[0xf0, 0x9f]);
        bytes.extend(client_frame(true, CONTINUATION, &[0x41]));
        violation(server, &bytes, 1007).await;
        // A surrogate half (CESU-8) is not UTF-8 either.
        violation(server, &client_frame(true, TEXT, &[0xed, 0xa0, 0x80]), 1007).await;
        // The server still serves.
        let mut ws = connect(server, "/ws").await;
        send_text(&mut ws, "fine").await;
        assert_eq!(text(&mut ws).await, "fine");
    })
    .await;
}

#[tokio::test]
async fn protocol_errors_close_1002() {
    with_server(WS_FAULTS_APP, async |server| {
        // Reserved bits without an extension.
        violation(server, &frame(true, 0b100, TEXT, b"rsv1", true), 1002).await;
        violation(server, &frame(true, 0b001, TEXT, b"rsv3", true), 1002).await;
        // Reserved opcodes (data 0x3, control 0xB).
        violation(server, &client_frame(true, 0x3, b"x"), 1002).await;
        violation(server, &client_frame(true, 0xB, b"x"), 1002).await;
        // Unmasked client frame.
        violation(server, &frame(true, 0, TEXT, b"bare", false), 1002).await;
        // A continuation with nothing to continue.
        violation(server, &client_frame(true, CONTINUATION, b"orphan"), 1002).await;
        // A new data frame in the middle of a fragmented message.
        let mut bytes = client_frame(false, TEXT, b"a");
        bytes.extend(client_frame(true, TEXT, b"b"));
        violation(server, &bytes, 1002).await;
        // Control frames: fragmented, or longer than 125 bytes.
        violation(server, &client_frame(false, PING, b"x"), 1002).await;
        violation(server, &client_frame(true, PING, &[0u8; 126]), 1002).await;
        // Close frames: a 1-byte payload, and codes that may not be sent.
        violation(server, &client_frame(true, CLOSE, &[3]), 1002).await;
        for bad in [999u16, 1004, 1005, 1006, 1015, 2000, 5000] {
            violation(server, &client_frame(true, CLOSE, &bad.to_be_bytes()), 1002).await;
        }
        // Allowed codes are echoed.
        for good in [1000u16, 1001, 1003, 1011, 3000, 4999] {
            violation(server, &client_frame(true, CLOSE, &good.to_be_bytes()), good).await;
        }
        // The server still serves.
        let mut ws = connect(server, "/ws").await;
        send_text(&mut ws, "fine").await;
        assert_eq!(text(&mut ws).await, "fine");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Rough numbers (not a benchmark: the test profile, one process for server
// and clients). `cargo test -p waterspout-tests --test integration -- --ignored --nocapture websocket::`

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn measure_echo_rate_and_idle_memory() {
    bounded(async {
    let server = TestServer::start(ECHO_APP).await;
    // Echo: 4 connections, each with up to 64 messages in flight.
    let start = Instant::now();
    let per_connection = 20_000u32;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let ws = connect(&server, "/echo").await;
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            let sender = tokio::spawn(async move {
                for i in 0..per_connection {
                    tx.feed(Message::text(format!("message {i:08}"))).await.unwrap();
                    if i % 64 == 63 {
                        tx.flush().await.unwrap();
                    }
                }
                tx.flush().await.unwrap();
                tx
            });
            let mut got = 0;
            while got < per_connection {
                if let Message::Text(_) = rx.next().await.unwrap().unwrap() {
                    got += 1;
                }
            }
            drop(sender.await.unwrap());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "echo: {:.0} messages/s round trip (4 connections, 20-byte text)",
        f64::from(4 * per_connection) / secs
    );

    // Idle connections: RSS growth per open connection (client side included).
    let before = own_rss_kib();
    let n = 500;
    let mut open = Vec::new();
    // Small client buffers, so the growth is mostly the server's.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    for _ in 0..n {
        let url = format!("ws://{}/echo", server.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .unwrap();
        send_text(&mut ws, "hi").await;
        assert_eq!(text(&mut ws).await, "hi");
        open.push(ws);
    }
    let after = own_rss_kib();
    println!(
        "idle: {n} connections, RSS +{} MiB = {:.1} KiB per connection (server and client in one process)",
        (after - before) / 1024,
        (after - before) as f64 / f64::from(n)
    );
    drop(open);
    server.shutdown().await;
    })
    .await;
}
