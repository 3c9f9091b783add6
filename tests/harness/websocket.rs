//! WebSocket clients for tests: a polite one (tokio-tungstenite) for the
//! conversation, and the handshake and frames by hand over raw TCP for what
//! a polite client never sends (fragments, protocol violations, bad UTF-8).
//! Every wait is bounded by [`STEP`].

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestServer;

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One expected event (a handshake, a message, a close) must come within this.
pub const STEP: Duration = Duration::from_secs(10);

/// A client on `path`, once the handshake is accepted (101).
pub async fn connect(server: &TestServer, path: &str) -> Client {
    let url = format!("ws://{}{}", server.addr, path);
    let (ws, response) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake in time")
        .expect("handshake accepted");
    assert_eq!(response.status(), 101);
    ws
}

/// A client on `path` sending `cookie` as its `Cookie` header.
pub async fn connect_with_cookie(server: &TestServer, path: &str, cookie: &str) -> Client {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = format!("ws://{}{}", server.addr, path)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("a valid cookie header"));
    let (ws, response) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
        .expect("handshake accepted");
    assert_eq!(response.status(), 101);
    ws
}

/// The next data or close message (pings and pongs skipped).
pub async fn next(ws: &mut Client) -> Message {
    loop {
        let message = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a valid message");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// The next message, which must be text.
pub async fn text(ws: &mut Client) -> String {
    match next(ws).await {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

pub async fn send_text(ws: &mut Client, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// Reads until the server's close frame; returns its code and reason.
pub async fn close_of(ws: &mut Client) -> (u16, String) {
    loop {
        match next(ws).await {
            Message::Close(Some(frame)) => return (u16::from(frame.code), frame.reason.as_str().to_owned()),
            Message::Close(None) => panic!("close frame without a code"),
            _ => {}
        }
    }
}

/// After the close handshake the stream ends (an echoed close frame may
/// come first).
pub async fn ends(ws: &mut Client) {
    let mut end = tokio::time::timeout(STEP, ws.next())
        .await
        .expect("the connection ends in time");
    if matches!(end, Some(Ok(Message::Close(_)))) {
        end = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("the connection ends in time");
    }
    assert!(
        matches!(
            end,
            None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed))
        ),
        "expected the end of the stream, got {end:?}"
    );
}

// ---------------------------------------------------------------------------
// Raw TCP: the handshake and frames by hand.

/// RFC 6455 §1.3's example key, and the answer it must get.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The server's answer to a handshake sent by hand.
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// Sends an upgrade request with `headers` (each "Name: value"; the defaults
/// are replaced by a header of the same name, or dropped when its value is
/// empty) and reads the response head, and the body when it is not 101.
pub async fn raw_request(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[&str],
) -> (TcpStream, RawResponse) {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut lines: Vec<String> = vec![
        format!("Host: {}", server.addr),
        "Upgrade: websocket".into(),
        "Connection: Upgrade".into(),
        format!("Sec-WebSocket-Key: {KEY}"),
        "Sec-WebSocket-Version: 13".into(),
    ];
    for header in headers {
        let name = header.split(':').next().unwrap().trim().to_ascii_lowercase();
        lines.retain(|l| l.split(':').next().unwrap().trim().to_ascii_lowercase() != name);
        if !header.split_once(':').unwrap().1.trim().is_empty() {
            lines.push((*header).to_owned());
        }
    }
    let request = format!("{method} {path} HTTP/1.1\r\n{}\r\n\r\n", lines.join("\r\n"));
    stream.write_all(request.as_bytes()).await.unwrap();

    let mut head = Vec::new();
    tokio::time::timeout(STEP, async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.unwrap();
            assert_eq!(n, 1, "the connection ended inside the response head");
            head.push(byte[0]);
        }
    })
    .await
    .expect("response head in time");
    let head = String::from_utf8(head).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut response = RawResponse {
        status,
        head,
        body: String::new(),
    };
    if status != 101 {
        let len: usize = response
            .header("content-length")
            .map(|l| l.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        tokio::time::timeout(STEP, stream.read_exact(&mut body))
            .await
            .expect("body in time")
            .unwrap();
        response.body = String::from_utf8(body).unwrap();
    }
    (stream, response)
}

/// A raw connection after a successful handshake.
pub async fn raw_open(server: &TestServer, path: &str) -> TcpStream {
    let (stream, response) = raw_request(server, "GET", path, &[]).await;
    assert_eq!(response.status, 101, "{}", response.head);
    assert_eq!(response.header("sec-websocket-accept").as_deref(), Some(ACCEPT));
    stream
}

// Opcodes (RFC 6455 §5.2).
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CONTINUATION: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame as a client sends it: masked unless `masked` is false.
pub fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0xF)];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => out.push(mask_bit | len as u8),
        len @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A masked frame without reserved bits, as a well-behaved client sends it.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, opcode, payload, true)
}

/// Sends one [`client_frame`].
pub async fn send_frame(stream: &mut TcpStream, fin: bool, opcode: u8, payload: &[u8]) {
    stream
        .write_all(&client_frame(fin, opcode, payload))
        .await
        .expect("sending a frame");
}

/// Reads one server frame: (fin, opcode, payload); `None` at end of stream.
pub async fn read_frame(stream: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    tokio::time::timeout(STEP, async {
        let mut head = [0u8; 2];
        if stream.read_exact(&mut head).await.is_err() {
            return None;
        }
        assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
        let len = match head[1] & 0x7F {
            126 => {
                let mut ext = [0u8; 2];
                stream.read_exact(&mut ext).await.ok()?;
                u16::from_be_bytes(ext) as usize
            }
            127 => {
                let mut ext = [0u8; 8];
                stream.read_exact(&mut ext).await.ok()?;
                u64::from_be_bytes(ext) as usize
            }
            len => len as usize,
        };
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await.ok()?;
        Some((head[0] & 0x80 != 0, head[0] & 0x0F, payload))
    })
    .await
    .expect("a frame (or the end) in time")
}

/// Reads frames until a close frame; returns its code (None: no code).
pub async fn raw_close_code(stream: &mut TcpStream) -> Option<u16> {
    loop {
        let (_, opcode, payload) = read_frame(stream).await.expect("a close frame before the end");
        if opcode == CLOSE {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

/// After a close frame the server ends the TCP connection.
pub async fn raw_ends(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(STEP, stream.read(&mut buf))
            .await
            .expect("the server closes the socket in time")
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
