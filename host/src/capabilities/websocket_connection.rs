//! Capability `websocket-connection`: the host side of one WebSocket
//! connection (Tornado's `WebSocketHandler` output methods). The guest's
//! `write-message`, `ping` and `close` queue frames for the connection's
//! writer task; the queue is bounded in bytes and messages, so a client
//! that never reads cannot grow the server's memory: `write-message` fails
//! with "write buffer full".

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wasmtime::component::{HasData, Linker};

use crate::capabilities::bindings::{WsMessage, websocket_connection};
use crate::capabilities::log::Tag;
use crate::services::broker::{GroupMessage, Member};

/// Messages queued for one connection at most (besides the byte budget).
pub const MAX_QUEUED_MESSAGES: usize = 1024;
/// The longest close reason that fits a control frame (125 − 2 code bytes).
const MAX_CLOSE_REASON: usize = 123;

/// The websocket-connection context of one instance: the connection's
/// outbound side (none for HTTP instances, whose calls then fail).
#[derive(Default)]
pub struct ConnectionCtx {
    outbound: Option<Outbound>,
    tag: Option<Tag>,
}

impl ConnectionCtx {
    pub fn new(outbound: Outbound, tag: Tag) -> Self {
        ConnectionCtx {
            outbound: Some(outbound),
            tag: Some(tag),
        }
    }

    pub fn outbound(&mut self) -> Option<&mut Outbound> {
        self.outbound.as_mut()
    }
}

struct HasConnection;

impl HasData for HasConnection {
    type Data<'a> = &'a mut ConnectionCtx;
}

/// Links interface `websocket-connection`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ConnectionCtx,
) -> wasmtime::Result<()> {
    websocket_connection::add_to_linker::<T, HasConnection>(linker, get)
}

pub enum Outgoing {
    /// A guest's message or ping, counted in the budget.
    Message(Message),
    /// The host's keepalive ping, outside the budget.
    KeepAlive,
    Close(CloseFrame),
}

/// Bytes and messages waiting in one connection's outbound queue.
#[derive(Default)]
pub struct Budget {
    bytes: AtomicUsize,
    messages: AtomicUsize,
    /// Signalled by the writer each time it takes a message off the queue.
    pub drained: Notify,
}

impl Budget {
    pub fn release(&self, bytes: usize) {
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.messages.fetch_sub(1, Ordering::AcqRel);
        self.drained.notify_one();
    }

    /// More than half full: the connection stops reading (TCP pushes back
    /// on the client) until the writer catches up, so a client that sends
    /// faster than it reads slows down instead of losing replies, and each
    /// callback starts with at least half the budget free.
    pub fn congested(&self, max_bytes: usize) -> bool {
        self.bytes.load(Ordering::Acquire) > max_bytes / 2
            || self.messages.load(Ordering::Acquire) > MAX_QUEUED_MESSAGES / 2
    }
}

/// The outbound side of one connection, held in the instance's store: the
/// guest's `write-message`, `ping` and `close` queue frames here for the
/// writer task.
pub struct Outbound {
    tx: mpsc::UnboundedSender<Outgoing>,
    budget: Arc<Budget>,
    max_bytes: usize,
    /// A close frame was queued or received: no more messages.
    pub closing: bool,
    /// The guest called `close`.
    closed_by_guest: bool,
}

impl Outbound {
    pub fn new(max_bytes: usize) -> (Self, mpsc::UnboundedReceiver<Outgoing>, Arc<Budget>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Budget::default());
        let outbound = Outbound {
            tx,
            budget: budget.clone(),
            max_bytes,
            closing: false,
            closed_by_guest: false,
        };
        (outbound, rx, budget)
    }

    /// The queue's budget and its size in bytes (the reader stops reading
    /// while it is congested).
    pub fn budget(&self) -> (Arc<Budget>, usize) {
        (self.budget.clone(), self.max_bytes)
    }

    /// Queues a data frame or ping within the byte and message budget.
    fn queue(&mut self, message: Message) -> Result<(), String> {
        if self.closing {
            return Err("connection is closing".into());
        }
        let len = message.len();
        if len > self.max_bytes {
            return Err(format!(
                "message too large ({len} bytes; the write buffer holds {} bytes)",
                self.max_bytes
            ));
        }
        let queued = self.budget.bytes.load(Ordering::Acquire);
        if queued + len > self.max_bytes
            || self.budget.messages.load(Ordering::Acquire) >= MAX_QUEUED_MESSAGES
        {
            return Err("write buffer full".into());
        }
        self.budget.bytes.fetch_add(len, Ordering::AcqRel);
        self.budget.messages.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(Outgoing::Message(message)).is_err() {
            self.budget.release(len);
            self.closing = true;
            return Err("connection is closed".into());
        }
        Ok(())
    }

    /// Queues a close frame after what is already queued (once).
    pub fn close(&mut self, code: u16, reason: &str) {
        if self.closing {
            return;
        }
        self.closing = true;
        let _ = self.tx.send(Outgoing::Close(close_frame(code, reason)));
    }

    /// This connection as a group member: broadcasts are queued here, in
    /// the same budget, and written by the writer task (no guest call).
    pub fn member(&self) -> Arc<ConnectionMember> {
        Arc::new(ConnectionMember {
            tx: self.tx.clone(),
            budget: self.budget.clone(),
            max_bytes: self.max_bytes,
        })
    }

    /// A host ping (keepalive): not counted against the guest's budget.
    pub fn ping(&self) {
        if !self.closing {
            let _ = self.tx.send(Outgoing::KeepAlive);
        }
    }
}

/// One connection's outbound queue as seen by a group broadcast.
pub struct ConnectionMember {
    tx: mpsc::UnboundedSender<Outgoing>,
    budget: Arc<Budget>,
    max_bytes: usize,
}

impl Member for ConnectionMember {
    fn deliver(&self, message: &GroupMessage) -> bool {
        let len = message.len();
        if self.budget.bytes.load(Ordering::Acquire) + len > self.max_bytes
            || self.budget.messages.load(Ordering::Acquire) >= MAX_QUEUED_MESSAGES
        {
            return false;
        }
        let frame = match message {
            GroupMessage::Text(text) => Message::Text(text.as_ref().into()),
            GroupMessage::Binary(bytes) => Message::Binary(bytes.to_vec().into()),
        };
        self.budget.bytes.fetch_add(len, Ordering::AcqRel);
        self.budget.messages.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(Outgoing::Message(frame)).is_err() {
            self.budget.release(len);
            return false;
        }
        true
    }
}

fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..end].to_owned().into(),
    }
}

impl websocket_connection::Host for ConnectionCtx {
    async fn write_message(&mut self, message: WsMessage) -> wasmtime::Result<Result<(), String>> {
        let Some(outbound) = self.outbound.as_mut() else {
            return Ok(Err("not a WebSocket connection".into()));
        };
        let message = match message {
            WsMessage::Text(text) => Message::Text(text.into()),
            WsMessage::Binary(bytes) => Message::Binary(bytes.into()),
        };
        Ok(outbound.queue(message))
    }

    async fn close(&mut self, code: Option<u16>, reason: Option<String>) -> wasmtime::Result<()> {
        let Some(outbound) = self.outbound.as_mut() else {
            return Ok(());
        };
        let code = match code {
            None => 1000,
            Some(code) if CloseCode::from(code).is_allowed() => code,
            Some(code) => {
                if let Some(tag) = &self.tag {
                    tracing::warn!(handler = %tag.handler, version = tag.version,
                        request = tag.request_id, "close code {code} may not be sent; using 1000");
                }
                1000
            }
        };
        if !outbound.closing {
            outbound.closed_by_guest = true;
        }
        outbound.close(code, reason.as_deref().unwrap_or(""));
        Ok(())
    }

    async fn ping(&mut self, data: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        let Some(outbound) = self.outbound.as_mut() else {
            return Ok(Err("not a WebSocket connection".into()));
        };
        if data.len() > 125 {
            return Ok(Err("ping data is longer than 125 bytes".into()));
        }
        Ok(outbound.queue(Message::Ping(data.into())))
    }
}
