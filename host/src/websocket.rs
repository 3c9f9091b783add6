//! WebSocket connections (Tornado's `WebSocketHandler`): the handshake is
//! checked here and upgraded through hyper on the same port, frames are read
//! and written by tokio-tungstenite, and one guest instance serves the whole
//! connection: instantiate → initialize → select-subprotocol → open →
//! (101) → on-message* → on-close.
//!
//! Each connection is two tasks: the connection task owns the guest's store
//! and the read half, and calls the guest once per message; a writer task
//! owns the write half and drains the connection's outbound queue. The queue
//! is bounded in bytes and messages, so a client that never reads cannot grow
//! the server's memory: `write-message` fails with "write buffer full".

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wasmtime::Store;
use wasmtime::component::Resource;

use crate::app::App;
use crate::bindings::websocket::waterspout::handler::websocket_connection;
use crate::bindings::{HttpError, WebsocketWorld, WsMessage};
use crate::body::Body;
use crate::guest_log::Tag;
use crate::registry::{HandlerSlot, HandlerVersion, Prepared};
use crate::request::RequestData;
use crate::state::HostState;

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// How long a close handshake may take once a close frame is sent (Tornado
/// aborts the stream 5 s after `close()` too).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages queued for one connection at most (besides the byte budget).
const MAX_QUEUED_MESSAGES: usize = 1024;
/// The smallest outbound byte budget, whatever `max_message_size` says.
const MIN_WRITE_BUFFER: usize = 64 << 10;
/// Per-connection read buffer: small, so idle connections stay cheap; a
/// larger frame reserves what it needs.
const READ_BUFFER: usize = 4 << 10;
/// Small messages are coalesced up to this many bytes before a socket write.
const WRITE_BUFFER: usize = 8 << 10;
/// The longest close reason that fits a control frame (125 − 2 code bytes).
const MAX_CLOSE_REASON: usize = 123;

// ---------------------------------------------------------------------------
// Open connections, reachable from the app (graceful shutdown).

/// Every open WebSocket connection of an app: a shutdown signal they all
/// watch, and their count.
pub struct Connections {
    shutdown: watch::Sender<bool>,
    open: watch::Sender<usize>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            shutdown: watch::channel(false).0,
            open: watch::channel(0).0,
        }
    }
}

impl Connections {
    /// How many connections are open (handshakes in progress included).
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Counts a new connection, unless the server is shutting down.
    fn register(&self) -> Option<Registration> {
        if *self.shutdown.borrow() {
            return None;
        }
        self.open.send_modify(|n| *n += 1);
        Some(Registration {
            shutdown: self.shutdown.subscribe(),
            open: self.open.clone(),
        })
    }
}

/// One connection's place in `Connections`; leaving it uncounts it.
struct Registration {
    shutdown: watch::Receiver<bool>,
    open: watch::Sender<usize>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.open.send_modify(|n| *n -= 1);
    }
}

/// Graceful shutdown: refuses new handshakes, sends every open connection a
/// close frame (1001 "server shutting down"), and waits (up to the grace
/// period) until their close handshakes are done and `on-close` has run.
pub async fn close_all(app: &Arc<App>) {
    let connections = &app.websockets;
    connections.shutdown.send_replace(true);
    let mut open = connections.open.subscribe();
    let open_now = *open.borrow();
    if open_now == 0 {
        return;
    }
    tracing::info!("closing {open_now} WebSocket connection(s)");
    let wait = app.config.shutdown_grace.min(CLOSE_TIMEOUT * 2);
    if tokio::time::timeout(wait, open.wait_for(|n| *n == 0))
        .await
        .is_err()
    {
        tracing::warn!(
            "{} WebSocket connection(s) still open after {wait:?}; dropping them",
            *open.borrow()
        );
    }
}

// ---------------------------------------------------------------------------
// The outbound side, held in the instance's store.

enum Outgoing {
    /// A guest's message or ping, counted in the budget.
    Message(Message),
    /// The host's keepalive ping, outside the budget.
    KeepAlive,
    Close(CloseFrame),
}

/// Bytes and messages waiting in one connection's outbound queue.
#[derive(Default)]
struct Budget {
    bytes: AtomicUsize,
    messages: AtomicUsize,
    /// Signalled by the writer each time it takes a message off the queue.
    drained: Notify,
}

impl Budget {
    fn release(&self, bytes: usize) {
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.messages.fetch_sub(1, Ordering::AcqRel);
        self.drained.notify_one();
    }

    /// More than half full: the connection stops reading (TCP pushes back
    /// on the client) until the writer catches up, so a client that sends
    /// faster than it reads slows down instead of losing replies, and each
    /// callback starts with at least half the budget free.
    fn congested(&self, max_bytes: usize) -> bool {
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
    closing: bool,
    /// The guest called `close`.
    closed_by_guest: bool,
}

impl Outbound {
    fn new(max_bytes: usize) -> (Self, mpsc::UnboundedReceiver<Outgoing>, Arc<Budget>) {
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
    fn close(&mut self, code: u16, reason: &str) {
        if self.closing {
            return;
        }
        self.closing = true;
        let _ = self.tx.send(Outgoing::Close(close_frame(code, reason)));
    }

    /// A host ping (keepalive): not counted against the guest's budget.
    fn ping(&self) {
        if !self.closing {
            let _ = self.tx.send(Outgoing::KeepAlive);
        }
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

impl websocket_connection::Host for HostState {
    async fn write_message(&mut self, message: WsMessage) -> wasmtime::Result<Result<(), String>> {
        let Some(outbound) = self.websocket.as_mut() else {
            return Ok(Err("not a WebSocket connection".into()));
        };
        let message = match message {
            WsMessage::Text(text) => Message::Text(text.into()),
            WsMessage::Binary(bytes) => Message::Binary(bytes.into()),
        };
        Ok(outbound.queue(message))
    }

    async fn close(&mut self, code: Option<u16>, reason: Option<String>) -> wasmtime::Result<()> {
        let Some(outbound) = self.websocket.as_mut() else {
            return Ok(());
        };
        let code = match code {
            None => 1000,
            Some(code) if CloseCode::from(code).is_allowed() => code,
            Some(code) => {
                tracing::warn!(handler = %self.tag.handler, version = self.tag.version,
                    request = self.tag.request_id, "close code {code} may not be sent; using 1000");
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
        let Some(outbound) = self.websocket.as_mut() else {
            return Ok(Err("not a WebSocket connection".into()));
        };
        if data.len() > 125 {
            return Ok(Err("ping data is longer than 125 bytes".into()));
        }
        Ok(outbound.queue(Message::Ping(data.into())))
    }
}

// ---------------------------------------------------------------------------
// Guest calls under the handler's time limit.

/// How a guest call ended, when it did not end well.
enum Fault {
    Trap(wasmtime::Error),
    Timeout,
    /// No free slot in the engine's instance pool (at instantiation).
    PoolFull,
}

impl Fault {
    fn log(
        &self,
        version: &HandlerVersion,
        store: &Store<HostState>,
        tag: &Tag,
        memory_limit_mb: u64,
        timeout_ms: u64,
        call: &str,
    ) {
        match self {
            Fault::PoolFull => crate::dispatch::log_pool_full(tag),
            Fault::Timeout => {
                crate::metrics::timeout(version);
                tracing::error!(handler = %tag.handler, version = tag.version, request = tag.request_id,
                    "websocket {call} exceeded the time limit of {timeout_ms} ms");
            }
            Fault::Trap(trap) => {
                crate::metrics::trap(version);
                let why = if store.data().limiter.memory_limit_hit {
                    format!("memory limit of {memory_limit_mb} MiB reached; ")
                } else {
                    String::new()
                };
                tracing::error!(handler = %tag.handler, version = tag.version, request = tag.request_id,
                    "websocket {call} trapped: {why}{trap:#}");
            }
        }
    }

    /// A fault during the handshake: 503 on timeout, 500 on a trap.
    fn log_and_page(
        &self,
        version: &HandlerVersion,
        store: &Store<HostState>,
        tag: &Tag,
        limits: &crate::manifest::HandlerLimits,
        call: &str,
    ) -> http::Response<Body> {
        self.log(
            version,
            store,
            tag,
            limits.memory_limit_mb,
            limits.timeout_ms,
            call,
        );
        match self {
            Fault::Timeout | Fault::PoolFull => page(StatusCode::SERVICE_UNAVAILABLE, None),
            Fault::Trap(_) => page(StatusCode::INTERNAL_SERVER_ERROR, None),
        }
    }
}

/// Gives the next guest call a fresh time limit (the epoch callback traps
/// once it passes).
fn arm(store: &mut Store<HostState>, timeout: Duration) {
    let data = store.data_mut();
    data.deadline = Instant::now() + timeout;
    data.timed_out = false;
    store.set_epoch_deadline(1);
}

/// Tells a trap from a timeout after a guest call ran under `arm` and a
/// wall-clock `tokio::time::timeout` (for a guest waiting in the host).
fn classify<T>(
    store: &Store<HostState>,
    result: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
) -> Result<T, Fault> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) if store.data().timed_out => Err(Fault::Timeout),
        Ok(Err(e)) if crate::dispatch::pool_full(&e) => Err(Fault::PoolFull),
        Ok(Err(trap)) => Err(Fault::Trap(trap)),
        Err(_elapsed) => Err(Fault::Timeout),
    }
}

/// One guest call during the handshake: armed, bounded, classified.
macro_rules! guest_call {
    ($store:expr, $timeout:expr, $call:expr) => {{
        arm(&mut $store, $timeout);
        let result = tokio::time::timeout($timeout, $call).await;
        classify(&$store, result)
    }};
}

// ---------------------------------------------------------------------------
// The handshake.

/// Checks the handshake, runs the guest up to `open`, and answers 101 (the
/// connection then continues in its own task) or the refusal's status.
#[allow(clippy::too_many_arguments)]
pub async fn upgrade(
    app: &Arc<App>,
    slot: &Arc<HandlerSlot>,
    version: Arc<HandlerVersion>,
    settings: Vec<(String, String)>,
    req: &mut http::Request<hyper::body::Incoming>,
    remote: SocketAddr,
    path_args: Vec<String>,
    path_kwargs: Vec<(String, String)>,
) -> http::Response<Body> {
    let start = Instant::now();
    let response = handshake(
        app,
        slot,
        version.clone(),
        settings,
        req,
        remote,
        path_args,
        path_kwargs,
    )
    .await;
    crate::metrics::request_done(&version, response.status().as_u16(), start.elapsed());
    response
}

#[allow(clippy::too_many_arguments)]
async fn handshake(
    app: &Arc<App>,
    slot: &Arc<HandlerSlot>,
    version: Arc<HandlerVersion>,
    settings: Vec<(String, String)>,
    req: &mut http::Request<hyper::body::Incoming>,
    remote: SocketAddr,
    path_args: Vec<String>,
    path_kwargs: Vec<(String, String)>,
) -> http::Response<Body> {
    let accept = match check_handshake(req, &slot.limits.allowed_origins) {
        Ok(accept) => accept,
        Err(refusal) => return *refusal,
    };
    let Some(registration) = app.websockets.register() else {
        return page(StatusCode::SERVICE_UNAVAILABLE, None);
    };
    // One live instance per connection, counted against `max_instances`.
    let Ok(permit) = slot.permits.clone().try_acquire_owned() else {
        tracing::warn!(handler = %slot.name, "no free instance for a new WebSocket connection");
        return page(StatusCode::SERVICE_UNAVAILABLE, None);
    };
    let Prepared::Websocket(pre) = &version.prepared else {
        unreachable!("upgrade is only called for websocket handlers")
    };

    let limits = &slot.limits;
    let timeout = Duration::from_millis(limits.timeout_ms);
    let (outbound, out_rx, budget) = Outbound::new(limits.max_message_size.max(MIN_WRITE_BUFFER));
    let (mut store, tag) =
        crate::dispatch::new_store(app, &version, limits, app.next_request_id(), |state| {
            state.websocket = Some(outbound);
        });
    let instance_guard = crate::metrics::instance_started(&version);

    let data = request_data(req, remote, path_args, path_kwargs);
    let offered = subprotocols(req.headers());

    // instantiate → initialize → select-subprotocol → open
    let guest = match guest_call!(store, timeout, pre.instantiate_async(&mut store)) {
        Ok(guest) => guest,
        Err(fault) => return fault.log_and_page(&version, &store, &tag, limits, "instantiate"),
    };
    let handler = guest.waterspout_handler_websocket_handler();
    if let Err(fault) = guest_call!(store, timeout, handler.call_initialize(&mut store, &settings)) {
        return fault.log_and_page(&version, &store, &tag, limits, "initialize");
    }
    let req_rep = match store.data_mut().table.push(data) {
        Ok(r) => r.rep(),
        Err(e) => {
            tracing::error!("cannot store the request: {e}");
            return page(StatusCode::INTERNAL_SERVER_ERROR, None);
        }
    };
    let borrow = || Resource::<RequestData>::new_borrow(req_rep);
    let mut selected = None;
    if !offered.is_empty() {
        match guest_call!(
            store,
            timeout,
            handler.call_select_subprotocol(&mut store, borrow(), &offered)
        ) {
            Ok(None) => {}
            Ok(Some(choice)) if offered.contains(&choice) => selected = Some(choice),
            Ok(Some(choice)) => {
                tracing::error!(handler = %tag.handler, version = tag.version, request = tag.request_id,
                    "select-subprotocol returned {:?}, which the client did not offer",
                    crate::guest_log::sanitize(&choice));
                return page(StatusCode::INTERNAL_SERVER_ERROR, None);
            }
            Err(fault) => return fault.log_and_page(&version, &store, &tag, limits, "select-subprotocol"),
        }
    }
    match guest_call!(store, timeout, handler.call_open(&mut store, borrow())) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return refusal(req, remote, error),
        Err(fault) => return fault.log_and_page(&version, &store, &tag, limits, "open"),
    }

    let on_upgrade = hyper::upgrade::on(&mut *req);
    let conn = Conn {
        store,
        guest,
        timeout,
        tag,
        memory_limit_mb: limits.memory_limit_mb,
        timeout_ms: limits.timeout_ms,
        idle: Duration::from_secs(limits.idle_timeout_secs.max(1)),
        version: version.clone(),
        _instance: instance_guard,
        _permit: permit,
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(limits.max_message_size.max(MIN_WRITE_BUFFER) + (64 << 10))
        .max_message_size(Some(limits.max_message_size))
        .max_frame_size(Some(limits.max_message_size));
    tokio::spawn(async move {
        let registration = registration;
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                    .await;
                conn.serve(ws, out_rx, budget, registration).await;
            }
            Err(e) => {
                tracing::debug!(%remote, "WebSocket upgrade failed: {e}");
                conn.finish(None, None).await;
            }
        }
    });

    let mut response = http::Response::new(crate::body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    if let Some(protocol) = selected.and_then(|p| HeaderValue::from_str(&p).ok()) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    headers.insert(header::SERVER, HeaderValue::from_static(crate::SERVER_NAME));
    response
}

/// Validates the upgrade request (RFC 6455 §4.2.1) and Tornado's
/// `check_origin`; returns the `Sec-WebSocket-Accept` value.
fn check_handshake(
    req: &http::Request<hyper::body::Incoming>,
    allowed_origins: &[String],
) -> Result<String, Box<http::Response<Body>>> {
    if req.method() != Method::GET {
        let mut response = page(StatusCode::METHOD_NOT_ALLOWED, None);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return Err(Box::new(response));
    }
    let headers = req.headers();
    if req.version() != http::Version::HTTP_11 {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            Some("WebSocket needs HTTP/1.1"),
        )));
    }
    if !has_token(headers, &header::UPGRADE, "websocket") {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            Some("Can \"Upgrade\" only to \"WebSocket\"."),
        )));
    }
    if !has_token(headers, &header::CONNECTION, "upgrade") {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            Some("\"Connection\" must be \"Upgrade\"."),
        )));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().trim_ascii())
        .filter(|k| !k.is_empty());
    let version = headers.get(header::SEC_WEBSOCKET_VERSION);
    let (Some(key), Some(version)) = (key, version) else {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            Some("Missing/Invalid WebSocket headers"),
        )));
    };
    if version.as_bytes().trim_ascii() != b"13" {
        // RFC 6455 §4.4: say which version we speak.
        let mut response = page(StatusCode::UPGRADE_REQUIRED, None);
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(Box::new(response));
    }
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get("sec-websocket-origin"));
    if let Some(origin) = origin {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !origin_allowed(origin.to_str().unwrap_or(""), host, allowed_origins) {
            return Err(Box::new(page(
                StatusCode::FORBIDDEN,
                Some("Cross origin websockets not allowed"),
            )));
        }
    }
    Ok(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key))
}

/// Tornado's `check_origin`: the origin's host (and port) must be the
/// request's `Host`, unless the manifest's `allowed_origins` lists it (as a
/// full origin like `https://example.com` or a bare host) or holds `*`.
pub fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let netloc = origin.split_once("://").map_or(origin.as_str(), |(_, rest)| rest);
    let netloc = netloc.split('/').next().unwrap_or("");
    if host.is_some_and(|h| !netloc.is_empty() && netloc == h.trim().to_ascii_lowercase()) {
        return true;
    }
    allowed.iter().any(|a| {
        let a = a.trim().trim_end_matches('/').to_ascii_lowercase();
        a == "*" || a == origin || (!netloc.is_empty() && a == netloc)
    })
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// The client's offered subprotocols, in order.
fn subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

fn request_data(
    req: &http::Request<hyper::body::Incoming>,
    remote: SocketAddr,
    path_args: Vec<String>,
    path_kwargs: Vec<(String, String)>,
) -> RequestData {
    let (mut parts, ()) = http::Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .version(req.version())
        .body(())
        .expect("parts copied from a valid request")
        .into_parts();
    parts.headers = req.headers().clone();
    RequestData::new(parts, bytes::Bytes::new(), remote.ip(), path_args, path_kwargs)
}

/// Tornado's default error page, with the handler's reason when it gave one.
fn page(status: StatusCode, reason: Option<&str>) -> http::Response<Body> {
    let Some(reason) = reason else {
        return crate::response::error_page(status);
    };
    let mut response = crate::response::error_page(status);
    let code = status.as_u16();
    let reason = html_escape(reason);
    *response.body_mut() = crate::body::full(format!(
        "<html><title>{code}: {reason}</title><body>{code}: {reason}</body></html>"
    ));
    response
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `open` refused the connection: answer with its status (Tornado's page).
fn refusal(
    req: &http::Request<hyper::body::Incoming>,
    remote: SocketAddr,
    error: HttpError,
) -> http::Response<Body> {
    if let Some(message) = &error.log_message {
        tracing::warn!(target: "waterspout::access", "{} {} {} ({}): {}", error.status, req.method(),
            crate::guest_log::sanitize(&req.uri().to_string()), remote.ip(), crate::guest_log::sanitize(message));
    }
    let Some(status) = StatusCode::from_u16(error.status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
    else {
        tracing::error!(
            status = error.status,
            "open refused with a status that is not an error; sending 500"
        );
        return page(StatusCode::INTERNAL_SERVER_ERROR, None);
    };
    page(status, error.reason.as_deref())
}

// ---------------------------------------------------------------------------
// An open connection.

/// One connection's guest instance and what it needs around it.
struct Conn {
    store: Store<HostState>,
    guest: WebsocketWorld,
    timeout: Duration,
    tag: Tag,
    memory_limit_mb: u64,
    timeout_ms: u64,
    idle: Duration,
    /// The version this connection started on: hot swaps leave it alone.
    version: Arc<HandlerVersion>,
    /// Counts the instance as alive in the metrics.
    _instance: crate::metrics::InstanceGuard,
    /// One of the handler's `max_instances`, held for the connection's life.
    _permit: OwnedSemaphorePermit,
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
    fn outbound(&mut self) -> &mut Outbound {
        self.store
            .data_mut()
            .websocket
            .as_mut()
            .expect("websocket instance has an outbound side")
    }

    /// Calls the guest under a fresh deadline.
    async fn on_message(&mut self, message: WsMessage) -> Result<(), Fault> {
        let handler = self.guest.waterspout_handler_websocket_handler();
        let result = guest_call!(
            self.store,
            self.timeout,
            handler.call_on_message(&mut self.store, &message)
        );
        self.logged(result, "on-message")
    }

    async fn on_close(&mut self, code: Option<u16>, reason: Option<String>) -> Result<(), Fault> {
        let handler = self.guest.waterspout_handler_websocket_handler();
        let result = guest_call!(
            self.store,
            self.timeout,
            handler.call_on_close(&mut self.store, code, reason.as_deref())
        );
        self.logged(result, "on-close")
    }

    fn logged(&self, result: Result<(), Fault>, call: &str) -> Result<(), Fault> {
        if let Err(fault) = &result {
            fault.log(
                &self.version,
                &self.store,
                &self.tag,
                self.memory_limit_mb,
                self.timeout_ms,
                call,
            );
        }
        result
    }

    /// The connection is over without a socket (the upgrade failed): still
    /// tell the guest, as Tornado calls `on_close` in every case.
    async fn finish(mut self, code: Option<u16>, reason: Option<String>) {
        self.outbound().closing = true;
        let _ = self.on_close(code, reason).await;
    }

    /// Reads frames and feeds them to the guest until the connection ends.
    async fn serve(
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
        tracing::debug!(handler = %self.tag.handler, version = self.tag.version, request = self.tag.request_id,
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
        let (budget, max_bytes) = {
            let outbound = self.outbound();
            (outbound.budget.clone(), outbound.max_bytes)
        };
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
                        tracing::debug!(handler = %self.tag.handler, request = self.tag.request_id,
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
        tracing::debug!(handler = %self.tag.handler, request = self.tag.request_id,
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
    let mut buf = [0u8; 4096];
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
