//! Raw HTTP/1 over tokio TCP, for what a polite client never sends: send
//! exact bytes, read every response the server writes, and see whether it
//! closed the connection. Every wait is bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinHandle;

/// How long a test waits for the server to say or do anything.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One response as it came off the wire.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The status line and headers, without the blank line.
    pub head: String,
    /// The body, de-chunked when it was chunked.
    pub body: Vec<u8>,
    /// A chunked body that ended without its last (zero) chunk.
    pub truncated: bool,
}

impl Reply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Everything one connection produced.
#[derive(Debug)]
pub struct Outcome {
    pub replies: Vec<Reply>,
    /// The server closed (or reset) the connection.
    pub closed: bool,
    /// Raw bytes, for failure messages.
    pub raw: String,
}

impl Outcome {
    pub fn statuses(&self) -> Vec<u16> {
        self.replies.iter().map(|r| r.status).collect()
    }
}

/// Sends `request` on a new connection and reads until the server closes, or
/// until it has been quiet for `quiet` (then `closed` is false).
pub async fn exchange(addr: SocketAddr, request: &[u8], quiet: Duration) -> Outcome {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading everything: ignore EPIPE.
    let _ = stream.write_all(request).await;
    read_until_quiet(&mut stream, quiet).await
}

/// Reads from `stream` until it closes or is quiet for `quiet`.
pub async fn read_until_quiet(stream: &mut (impl AsyncRead + Unpin), quiet: Duration) -> Outcome {
    let deadline = Instant::now() + PATIENCE;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let closed = loop {
        let wait = quiet.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break false,
        }
        if Instant::now() >= deadline {
            break false;
        }
    };
    Outcome {
        replies: parse_replies(&buf),
        closed,
        raw: String::from_utf8_lossy(&buf).into_owned(),
    }
}

/// Reads exactly one response (bounded by [`PATIENCE`]); if the connection
/// ends first, what arrived of it (`None` if nothing did).
pub async fn read_reply(stream: &mut (impl AsyncRead + Unpin)) -> Option<Reply> {
    let deadline = Instant::now() + PATIENCE;
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    loop {
        if let Some((reply, _)) = parse_one(&buf, false) {
            return Some(reply);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut byte)).await {
            // Closed: what arrived, if anything (a body cut short is marked).
            Ok(Ok(0)) | Ok(Err(_)) => return parse_one(&buf, true).map(|(reply, _)| reply),
            Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&byte[..n]),
        }
    }
}

/// Whether the server closes `stream` within `within` (reading and dropping
/// anything it still sends).
pub async fn closes_within(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// A client that writes and never reads: a task sending `batch` again and
/// again on `write` until `limit` bytes are out or a write has waited a
/// second (the server stopped reading). It returns how much it sent, and
/// `write`, for the caller to close when it likes.
pub fn flood(mut write: OwnedWriteHalf, batch: Vec<u8>, limit: usize) -> JoinHandle<(usize, OwnedWriteHalf)> {
    tokio::spawn(async move {
        let mut sent = 0;
        while sent < limit {
            match tokio::time::timeout(Duration::from_secs(1), write.write_all(&batch)).await {
                Ok(Ok(())) => sent += batch.len(),
                _ => break,
            }
        }
        (sent, write)
    })
}

/// Every complete response in `buf`, in order; a last response cut short is
/// included with what arrived (chunked: `truncated`).
pub fn parse_replies(buf: &[u8]) -> Vec<Reply> {
    let mut replies = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        match parse_one(rest, true) {
            Some((reply, used)) => {
                replies.push(reply);
                rest = &rest[used..];
            }
            None => break,
        }
    }
    replies
}

/// One response from the front of `buf` and the bytes it used. With
/// `partial`, a body cut short by the end of the stream still counts.
fn parse_one(buf: &[u8], partial: bool) -> Option<(Reply, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let mut reply = Reply {
        status,
        head,
        body: Vec::new(),
        truncated: false,
    };
    let body = &buf[end + 4..];
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Some((reply, end + 4));
    }
    if let Some(len) = reply.header("content-length") {
        let len: usize = len.parse().ok()?;
        if body.len() < len {
            if !partial {
                return None;
            }
            reply.body = body.to_vec();
            reply.truncated = true;
            return Some((reply, buf.len()));
        }
        reply.body = body[..len].to_vec();
        return Some((reply, end + 4 + len));
    }
    if reply
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        let mut at = 0;
        while let Some(line_end) = body[at..].windows(2).position(|w| w == b"\r\n") {
            let size_text = String::from_utf8_lossy(&body[at..at + line_end]).into_owned();
            let Ok(size) = usize::from_str_radix(size_text.split(';').next()?.trim(), 16) else {
                break;
            };
            let data = at + line_end + 2;
            if size == 0 {
                // The last chunk, then (no trailers) an empty line.
                return Some((reply, end + 4 + (data + 2).min(body.len())));
            }
            if body.len() < data + size + 2 {
                break;
            }
            reply.body.extend_from_slice(&body[data..data + size]);
            at = data + size + 2;
        }
        if !partial {
            return None;
        }
        reply.truncated = true;
        return Some((reply, buf.len()));
    }
    // No length: the body runs to the end of the stream.
    if !partial {
        return None;
    }
    reply.body = body.to_vec();
    Some((reply, buf.len()))
}
