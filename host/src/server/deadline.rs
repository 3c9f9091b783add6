//! Deadlines hyper does not enforce on its own, per connection.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
}

impl<S: AsyncRead + Unpin> AsyncRead for ConnDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
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
            (Poll::Pending, _) => {
                if this.expired(cx) {
                    let why = if this.phase == Phase::Preface {
                        "no request within the header timeout"
                    } else {
                        "HTTP/2 connection idle"
                    };
                    return Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why)));
                }
            }
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
