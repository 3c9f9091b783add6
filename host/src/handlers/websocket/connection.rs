//! An open WebSocket connection: one task reads frames and calls the guest
//! once per message (each call under a fresh deadline); a writer task drains
//! the connection's outbound queue into the socket. Close codes as RFC 6455
//! asks; on-close runs once, whatever ended the connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::CLOSE_TIMEOUT;
use crate::app::Registration;
use crate::capabilities::bindings::{WebsocketWorld, WsMessage};
use crate::capabilities::websocket_connection::{Budget, Outbound, Outgoing};
use crate::runtime::{Fault, Guest};

pub(super) type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// One connection's guest instance and what it needs around it.
pub(super) struct Conn {
    /// The store, its permit and live-instance count, for the connection's
    /// life; the version it started on (hot swaps leave it alone).
    guest: Guest,
    world: WebsocketWorld,
    idle: Duration,
}

/// Why the read loop ended.
enum End {
    /// The connection is over: the client's close code and reason when it
    /// sent a close frame (then the close handshake is complete: nothing
    /// more will come from the client), or the socket ended or failed.
    Closed(Option<(Option<u16>, Option<String>)>),
    /// The guest trapped or timed out: no more guest calls.
    Faulted,
}

impl Conn {
    pub(super) fn new(guest: Guest, world: WebsocketWorld, idle: Duration) -> Self {
        Conn { guest, world, idle }
    }

    fn outbound(&mut self) -> &mut Outbound {
        self.guest
            .ctx()
            .websocket_connection
            .outbound()
            .expect("websocket instance has an outbound side")
    }

    /// Calls the guest under a fresh deadline.
    ///
    /// The call's future (~1.7 KiB: wasmtime's call and the deadline) is
    /// boxed, made only while a message is handled: unboxed it would be
    /// part of the connection task's future, whose size every open
    /// connection keeps allocated for its whole life, idle or not.
    async fn on_message(&mut self, message: WsMessage) -> Result<(), Fault> {
        let handler = self.world.waterspout_handler_websocket_handler();
        Box::pin(self.guest.call("websocket on-message", async |store| {
            handler.call_on_message(store, &message).await
        }))
        .await
    }

    /// Boxed for the same reason as [`Conn::on_message`].
    async fn on_close(&mut self, code: Option<u16>, reason: Option<String>) -> Result<(), Fault> {
        let handler = self.world.waterspout_handler_websocket_handler();
        Box::pin(self.guest.call("websocket on-close", async |store| {
            handler.call_on_close(store, code, reason.as_deref()).await
        }))
        .await
    }

    /// The connection is over without a socket (the upgrade failed): still
    /// tell the guest, as Tornado calls `on_close` in every case.
    pub(super) async fn finish(mut self, code: Option<u16>, reason: Option<String>) {
        self.outbound().closing = true;
        let _ = self.on_close(code, reason).await;
    }

    /// Reads frames and feeds them to the guest until the connection ends.
    pub(super) async fn serve(
        mut self,
        ws: Ws,
        out_rx: mpsc::UnboundedReceiver<Outgoing>,
        budget: Arc<Budget>,
        mut registration: Registration,
    ) {
        let started = Instant::now();
        let (sink, mut stream) = ws.split();
        let mut writer = Writer {
            task: tokio::spawn(write_loop(sink, out_rx, budget, self.idle)),
            done: None,
        };
        let end = self.read_loop(&mut stream, &mut writer, &mut registration).await;
        let (client_close, faulted) = match end {
            End::Closed(client_close) => (client_close, false),
            End::Faulted => (None, true),
        };
        let complete = client_close.is_some();
        let (code, reason) = client_close.unwrap_or((None, None));
        tracing::debug!(handler = %self.guest.tag().handler, version = self.guest.tag().version, request = self.guest.tag().request_id,
            ?code, "WebSocket closed after {:.1}s", started.elapsed().as_secs_f64());
        if !faulted {
            self.outbound().closing = true;
            let _ = self.on_close(code, reason).await;
        }
        // The store (and with it the queue's sender) goes: the writer drains
        // what is queued, the close frame last, then hands the sink back.
        drop(self);
        let sink = match writer.done.take() {
            Some(sink) => sink,
            None => match tokio::time::timeout(CLOSE_TIMEOUT, &mut writer.task).await {
                Ok(result) => result.ok().flatten(),
                Err(_) => {
                    writer.task.abort();
                    None
                }
            },
        };
        if let Some(sink) = sink
            && let Ok(mut ws) = stream.reunite(sink)
        {
            if complete {
                // Both close frames went: nothing more comes; just end.
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.get_mut().shutdown()).await;
            } else {
                linger(ws.get_mut()).await;
            }
        }
        drop(registration);
    }

    async fn read_loop(
        &mut self,
        stream: &mut SplitStream<Ws>,
        writer: &mut Writer,
        registration: &mut Registration,
    ) -> End {
        let mut last_frame = Instant::now();
        let mut pinged = false;
        // Set once a close frame is queued or received: the handshake must
        // be done by then.
        let mut close_by: Option<Instant> = None;
        // The client's close frame, once it came.
        let mut client_close: Option<(Option<u16>, Option<String>)> = None;
        let mut shutdown_seen = false;
        let (budget, max_bytes) = self.outbound().budget();
        loop {
            if close_by.is_none() && self.outbound().closing {
                // The guest called close, or the host queued a close.
                close_by = Some(Instant::now() + CLOSE_TIMEOUT);
            }
            let wake = match close_by {
                Some(at) => at,
                None if pinged => last_frame + self.idle,
                None => last_frame + self.idle / 2,
            };
            let congested = close_by.is_none() && budget.congested(max_bytes);
            tokio::select! {
                biased;
                stopping = shutting_down(&mut registration.shutdown), if !shutdown_seen => {
                    shutdown_seen = true;
                    if stopping {
                        self.outbound().close(1001, "server shutting down");
                    }
                }
                result = &mut writer.task, if writer.done.is_none() => {
                    let sink = result.ok().flatten();
                    let healthy = sink.is_some();
                    writer.done = Some(sink);
                    if !healthy {
                        // The client stopped reading, or the socket failed.
                        return End::Closed(client_close);
                    }
                    // Our close frame is out; the client's answer comes next.
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    if close_by.is_some() {
                        // The client did not finish the close handshake in time.
                        return End::Closed(client_close);
                    }
                    if pinged {
                        tracing::debug!(handler = %self.guest.tag().handler, request = self.guest.tag().request_id,
                            "WebSocket idle for {:?}; closing", self.idle);
                        self.outbound().close(1001, "idle timeout");
                    } else {
                        self.outbound().ping();
                        pinged = true;
                    }
                }
                _ = budget.drained.notified(), if congested => {}
                item = stream.next(), if !congested => {
                    let Some(item) = item else {
                        // The close handshake is done, or the socket ended.
                        return End::Closed(client_close);
                    };
                    last_frame = Instant::now();
                    pinged = false;
                    let message = match item {
                        Ok(message) => message,
                        Err(e) => {
                            self.read_error(e);
                            return End::Closed(client_close);
                        }
                    };
                    let message = match message {
                        Message::Text(text) => WsMessage::Text(text.as_str().to_owned()),
                        Message::Binary(bytes) => WsMessage::Binary(bytes.into()),
                        Message::Close(frame) => {
                            // tungstenite queued the answer; the next read sends it.
                            self.outbound().closing = true;
                            client_close = Some(match frame {
                                Some(f) => (Some(u16::from(f.code)), Some(f.reason.as_str().to_owned())),
                                None => (None, None),
                            });
                            close_by.get_or_insert(Instant::now() + CLOSE_TIMEOUT);
                            continue;
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                    };
                    if close_by.is_some() {
                        // Closing: messages still in flight from the client are dropped.
                        continue;
                    }
                    if self.on_message(message).await.is_err() {
                        self.outbound().close(1011, "internal error");
                        return End::Faulted;
                    }
                }
            }
        }
    }

    /// A read failed: answer with the close code RFC 6455 asks for (tungstenite
    /// sends none by itself), then end.
    fn read_error(&mut self, error: WsError) {
        let (code, reason): (u16, &str) = match &error {
            WsError::Utf8(_) => (1007, "invalid UTF-8 in a text message"),
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => (1009, "message too big"),
            WsError::Capacity(_) => (1009, "message too big"),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return,
            WsError::Protocol(_) => (1002, "protocol error"),
            WsError::Io(_) | WsError::ConnectionClosed | WsError::AlreadyClosed => return,
            _ => (1011, "internal error"),
        };
        tracing::debug!(handler = %self.guest.tag().handler, request = self.guest.tag().request_id,
            "WebSocket read failed ({error}); closing with {code}");
        self.outbound().close(code, reason);
    }
}

type Sink = SplitSink<Ws, Message>;

/// Resolves to `true` once graceful shutdown starts.
async fn shutting_down(rx: &mut watch::Receiver<bool>) -> bool {
    rx.wait_for(|s| *s).await.is_ok()
}

/// The writer task, and its result once the read loop saw it end.
struct Writer {
    task: tokio::task::JoinHandle<Option<Sink>>,
    done: Option<Option<Sink>>,
}

/// Whether a failed write leaves the socket usable: a message queued before
/// the client's close frame arrived is refused by tungstenite, nothing more.
fn write_ok(result: Result<Result<(), WsError>, tokio::time::error::Elapsed>) -> bool {
    matches!(
        result,
        Ok(Ok(()) | Err(WsError::Protocol(ProtocolError::SendAfterClosing)))
    )
}

/// Drains the outbound queue into the socket. Returns the sink when the
/// queue ended (or our close frame went out), `None` when a write failed or
/// could not complete within `stall` (the client stopped reading).
async fn write_loop(
    mut sink: Sink,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    budget: Arc<Budget>,
    stall: Duration,
) -> Option<Sink> {
    while let Some(item) = rx.recv().await {
        match item {
            Outgoing::Message(message) => {
                let len = message.len();
                let fed = tokio::time::timeout(stall, sink.feed(message)).await;
                budget.release(len);
                if !write_ok(fed) {
                    return None;
                }
            }
            Outgoing::KeepAlive => {
                let fed = tokio::time::timeout(stall, sink.feed(Message::Ping(Default::default()))).await;
                if !write_ok(fed) {
                    return None;
                }
            }
            Outgoing::Close(frame) => {
                let sent = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
                return write_ok(sent).then_some(sink);
            }
        }
        // Batch what is queued now into one write; flush once caught up.
        if rx.is_empty() && !write_ok(tokio::time::timeout(stall, sink.flush()).await) {
            return None;
        }
    }
    write_ok(tokio::time::timeout(CLOSE_TIMEOUT, sink.flush()).await).then_some(sink)
}

/// Closes the TCP connection politely: our FIN first, then whatever the
/// client still sends (its close frame) is read and dropped until it closes
/// too, so the kernel never answers unread data with a reset that could
/// destroy our close frame before the client read it.
async fn linger(io: &mut TokioIo<Upgraded>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
    // On the heap, made only now: on the stack it would be 4 KiB of the
    // connection task's future for the connection's whole life.
    let mut buf = vec![0u8; 4096];
    let mut budget = 1usize << 20;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while budget > 0 {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    })
    .await;
}
