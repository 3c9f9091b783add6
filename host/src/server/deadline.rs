//! Deadlines hyper does not enforce on its own, per connection.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The HTTP/2 connection preface; its first bytes decide the protocol.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Deadlines hyper does not enforce on its own, per connection.
///
/// First, the protocol must be decided within the header timeout: hyper-util's
/// auto builder reads up to the 24-byte HTTP/2 preface to pick HTTP/1 or
/// HTTP/2 without any timeout, and hyper's header-read timer only starts after
/// that, so a client that connects and sends nothing (or part of the preface)
/// would hold a slot under the connection cap forever. HTTP/1 then needs
/// nothing more (hyper's header-read timer also closes idle keep-alive
/// connections). An HTTP/2 connection has no such timer: it is closed after
/// `idle` without reads or writes while no request is in flight.
///
/// It also spares HTTP/1 connections a doubled read buffer: see
/// [`Protocol`].
pub(super) struct ConnDeadline<S> {
    io: S,
    phase: Phase,
    /// Gone once the connection is HTTP/1: a timer left in the wheel would
    /// keep the waker of the task that polled it (for a WebSocket, hyper's
    /// finished connection task) until it fires.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    seen: usize,
    idle: Duration,
    in_flight: Arc<AtomicUsize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the bytes that decide the protocol.
    Preface,
    /// HTTP/2: closed when idle.
    Http2,
    /// HTTP/1: hyper's own timers apply.
    PassThrough,
}

impl<S> ConnDeadline<S> {
    pub(super) fn new(io: S, header_timeout: Duration, idle: Duration, in_flight: Arc<AtomicUsize>) -> Self {
        ConnDeadline {
            io,
            phase: Phase::Preface,
            deadline: Some(Box::pin(tokio::time::sleep(header_timeout))),
            seen: 0,
            idle,
            in_flight,
        }
    }

    /// Activity on an HTTP/2 connection pushes the idle deadline back.
    fn touch(&mut self) {
        if self.phase == Phase::Http2
            && let Some(deadline) = &mut self.deadline
        {
            deadline.as_mut().reset(tokio::time::Instant::now() + self.idle);
        }
    }

    /// Whether the deadline has passed with nothing to wait for (registers a
    /// wake-up otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            let Some(deadline) = &mut self.deadline else {
                return false;
            };
            if deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            if self.phase == Phase::Http2 && self.in_flight.load(Ordering::Relaxed) > 0 {
                // Requests are running: check again one idle period later.
                self.touch();
                continue;
            }
            return true;
        }
    }

    /// Nothing to read yet: an error once the deadline has passed.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.expired(cx) {
            return Poll::Pending;
        }
        let why = if self.phase == Phase::Preface {
            "no request within the header timeout"
        } else {
            "HTTP/2 connection idle"
        };
        Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why)))
    }
}

/// What a connection can tell about its protocol before anything is read
/// from it.
///
/// hyper-util's auto builder reads up to 24 bytes to look for the HTTP/2
/// preface and hands them to hyper first. hyper's first read then gets only
/// those bytes, and its second, wanting 8 KiB of room beside them, doubles
/// its read buffer to 16 KiB, which the connection keeps for life. A
/// connection known to be HTTP/1 before that sniff instead answers it with
/// zero bytes, which hyper-util takes for HTTP/1 with nothing read ahead, so
/// hyper's first read takes the request head into its 8 KiB buffer.
pub(super) trait Protocol {
    /// `Ready(Ok(true))` when the connection is surely HTTP/1; `false` when
    /// it may be HTTP/2 or cannot tell (the sniff then reads as usual).
    fn poll_http1(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>>;
}

impl Protocol for TcpStream {
    /// Peeks at the first bytes: anything but the start of the preface.
    fn poll_http1(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        let mut first = [0u8; H2_PREFACE.len()];
        let mut first = ReadBuf::new(&mut first);
        std::task::ready!(self.poll_peek(cx, &mut first))?;
        let first = first.filled();
        Poll::Ready(Ok(!first.is_empty() && !H2_PREFACE.starts_with(first)))
    }
}

impl Protocol for TlsStream<TcpStream> {
    /// The protocol the handshake agreed on (ALPN), if it was HTTP/1.1.
    fn poll_http1(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        Poll::Ready(Ok(self.get_ref().1.alpn_protocol() == Some(b"http/1.1")))
    }
}

impl<S: AsyncRead + Protocol + Unpin> AsyncRead for ConnDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.phase == Phase::Preface && this.seen == 0 {
            match this.io.poll_http1(cx) {
                Poll::Ready(Ok(true)) => {
                    // Zero bytes: hyper-util's sniff reads this as HTTP/1.
                    this.phase = Phase::PassThrough;
                    this.deadline = None;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(false)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return this.pending(cx),
            }
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        match (&result, this.phase) {
            (_, Phase::PassThrough) | (Poll::Ready(Err(_)), _) => {}
            (Poll::Ready(Ok(())), Phase::Preface) => {
                let new = &buf.filled()[before..];
                let start = this.seen.min(H2_PREFACE.len());
                let end = (this.seen + new.len()).min(H2_PREFACE.len());
                this.seen += new.len();
                let differs = new[..end - start] != H2_PREFACE[start..end];
                if new.is_empty() || differs {
                    this.phase = Phase::PassThrough;
                    this.deadline = None;
                } else if this.seen >= H2_PREFACE.len() {
                    this.phase = Phase::Http2;
                    this.touch();
                }
            }
            (Poll::Ready(Ok(())), Phase::Http2) => this.touch(),
            (Poll::Pending, _) => return this.pending(cx),
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ConnDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected pair over loopback: the server's side wrapped as the
    /// listener wraps it, and the client's.
    async fn pair() -> (ConnDeadline<TcpStream>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let server = ConnDeadline::new(server, Duration::from_secs(5), Duration::from_secs(5), in_flight);
        (server, client)
    }

    /// Reads as hyper-util's sniff does: into a buffer the preface's size.
    async fn sniff(server: &mut ConnDeadline<TcpStream>) -> Vec<u8> {
        let mut first = [0u8; H2_PREFACE.len()];
        let n = server.read(&mut first).await.unwrap();
        first[..n].to_vec()
    }

    #[tokio::test]
    async fn an_http1_request_is_left_whole_for_hyper_s_first_read() {
        let (mut server, mut client) = pair().await;
        let head = b"GET /a/path/longer/than/the/preface HTTP/1.1\r\nHost: x\r\n\r\n";
        client.write_all(head).await.unwrap();
        assert_eq!(
            sniff(&mut server).await,
            b"",
            "the sniff reads nothing of an HTTP/1 request"
        );
        let mut read = vec![0u8; 8192];
        let n = server.read(&mut read).await.unwrap();
        assert_eq!(&read[..n], head, "one read takes the whole head");
    }

    #[tokio::test]
    async fn the_http2_preface_is_read_by_the_sniff() {
        let (mut server, mut client) = pair().await;
        client.write_all(H2_PREFACE).await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < H2_PREFACE.len() {
            let got = sniff(&mut server).await;
            assert!(!got.is_empty(), "the preface is read, not skipped");
            seen.extend(got);
        }
        assert_eq!(seen, H2_PREFACE);
        assert_eq!(server.phase, Phase::Http2);
    }

    #[tokio::test]
    async fn a_first_byte_that_could_start_the_preface_is_read_as_usual() {
        let (mut server, mut client) = pair().await;
        client.write_all(b"P").await.unwrap();
        assert_eq!(
            sniff(&mut server).await,
            b"P",
            "one byte cannot tell POST from PRI"
        );
        client.write_all(b"OST / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut rest = [0u8; 64];
        let n = server.read(&mut rest).await.unwrap();
        assert_eq!(&rest[..n], b"OST / HTTP/1.1\r\n\r\n");
        assert_eq!(server.phase, Phase::PassThrough);
    }
}
