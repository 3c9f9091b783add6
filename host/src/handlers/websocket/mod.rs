//! WebSocket connections (Tornado's `WebSocketHandler`): the handshake is
//! checked ([`handshake`]) and upgraded through hyper on the same port,
//! frames are read and written by tokio-tungstenite, and one guest instance
//! serves the whole connection ([`connection`]): instantiate → initialize →
//! select-subprotocol → open → (101) → on-message* → on-close.

mod connection;
mod handshake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use http::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use wasmtime::component::Resource;

use self::connection::Conn;
use self::handshake::{check_handshake, refusal, subprotocols};
use super::Target;
use crate::app::App;
use crate::body::{Body, page};
use crate::capabilities::queue::QueueCtx;
use crate::capabilities::request::RequestData;
use crate::capabilities::websocket_connection::{ConnectionCtx, Outbound};
use crate::runtime::{Admission, Guest, Prepared};
use crate::text::sanitize;

/// How long a close handshake may take once a close frame is sent (Tornado
/// aborts the stream 5 s after `close()` too).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The smallest outbound byte budget, whatever `max_message_size` says.
const MIN_WRITE_BUFFER: usize = 64 << 10;
/// Per-connection read buffer: small, so idle connections stay cheap; a
/// larger frame reserves what it needs.
const READ_BUFFER: usize = 4 << 10;
/// Small messages are coalesced up to this many bytes before a socket write.
const WRITE_BUFFER: usize = 8 << 10;

/// Graceful shutdown: refuses new handshakes, sends every open connection a
/// close frame (1001 "server shutting down"), and waits (up to the grace
/// period) until their close handshakes are done and `on-close` has run.
pub(crate) async fn close_all(app: &Arc<App>) {
    let connections = app.connections();
    connections.shutdown.send_replace(true);
    let mut open = connections.open.subscribe();
    let open_now = *open.borrow();
    if open_now == 0 {
        return;
    }
    tracing::info!("closing {open_now} WebSocket connection(s)");
    let wait = app.config().shutdown_grace.min(CLOSE_TIMEOUT * 2);
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

/// Checks the handshake, runs the guest up to `open`, and answers 101 (the
/// connection then continues in its own task) or the refusal's status.
pub(super) async fn upgrade(
    app: &Arc<App>,
    target: Target,
    parts: http::request::Parts,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
    remote: SocketAddr,
) -> http::Response<Body> {
    let start = Instant::now();
    let version = target.version.clone();
    let response = handshake(app, target, parts, on_upgrade, remote).await;
    version
        .metrics
        .request_done(response.status().as_u16(), start.elapsed());
    response
}

async fn handshake(
    app: &Arc<App>,
    target: Target,
    mut parts: http::request::Parts,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
    remote: SocketAddr,
) -> http::Response<Body> {
    let Target {
        slot,
        version,
        settings,
        path_args,
        path_kwargs,
    } = target;
    let accept = match check_handshake(&parts, &slot.limits.allowed_origins) {
        Ok(accept) => accept,
        Err(refused) => return *refused,
    };
    // hyper offers the upgrade on HTTP/1 connections only.
    let Some(on_upgrade) = on_upgrade else {
        return page(StatusCode::BAD_REQUEST, Some("WebSocket needs HTTP/1.1"));
    };
    // The request stays as long as the connection: in copies, so that it
    // does not keep hyper's read buffer (8 KiB) alive.
    parts.uri = crate::head::detached_uri(&parts.uri);
    parts.headers = crate::head::detached_headers(&parts.headers);
    let Some(registration) = app.connections().register() else {
        return page(StatusCode::SERVICE_UNAVAILABLE, None);
    };
    let Prepared::Websocket(pre) = &version.prepared else {
        unreachable!("upgrade is only called for websocket handlers")
    };
    let pre = pre.clone();
    // One live instance per connection, counted against `max_instances`.
    let admitted = Guest::admit(&slot, version.clone(), app.next_request_id(), Admission::NoWait).await;
    let mut guest = match admitted {
        Ok(guest) => guest,
        Err(fault) => return page(fault.status(), None),
    };
    let limits = &slot.limits;
    let (outbound, out_rx, budget) = Outbound::new(limits.max_message_size.max(MIN_WRITE_BUFFER));
    let tag = guest.tag().clone();
    super::services::grant(app, limits, guest.ctx(), Some(outbound.member()));
    guest.ctx().websocket_connection = ConnectionCtx::new(outbound, tag.clone());
    // Signed cookies (`current_user` in `open`) read the handshake's cookies.
    let cookies = parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .cloned()
        .collect();
    guest.ctx().web = crate::capabilities::web::WebCtx::new(
        app.web().clone(),
        std::sync::Arc::clone(&app.deployer().router()),
        app.statics().cloned(),
        cookies,
    );
    guest.ctx().queue = QueueCtx::new(app.services().queues.clone(), &limits.queues);

    let offered = subprotocols(&parts.headers);
    let data = RequestData::new(parts, bytes::Bytes::new(), remote.ip(), path_args, path_kwargs);

    // instantiate → initialize → select-subprotocol → open
    let world = match guest
        .call("websocket instantiate", async |store| {
            pre.instantiate_async(store).await
        })
        .await
    {
        Ok(world) => world,
        Err(fault) => return page(fault.status(), None),
    };
    let handler = world.waterspout_handler_websocket_handler();
    if let Err(fault) = guest
        .call("websocket initialize", async |store| {
            handler.call_initialize(store, &settings).await
        })
        .await
    {
        return page(fault.status(), None);
    }
    let req_rep = match guest.ctx().table.push(data) {
        Ok(r) => r.rep(),
        Err(e) => {
            tracing::error!("cannot store the request: {e}");
            return page(StatusCode::INTERNAL_SERVER_ERROR, None);
        }
    };
    let borrow = || Resource::<RequestData>::new_borrow(req_rep);
    let mut selected = None;
    if !offered.is_empty() {
        let chosen = guest
            .call("websocket select-subprotocol", async |store| {
                handler.call_select_subprotocol(store, borrow(), &offered).await
            })
            .await;
        match chosen {
            Ok(None) => {}
            Ok(Some(choice)) if offered.contains(&choice) => selected = Some(choice),
            Ok(Some(choice)) => {
                tracing::error!(handler = %tag.handler, version = tag.version, request = tag.request_id,
                    "select-subprotocol returned {:?}, which the client did not offer", sanitize(&choice));
                return page(StatusCode::INTERNAL_SERVER_ERROR, None);
            }
            Err(fault) => return page(fault.status(), None),
        }
    }
    match guest
        .call("websocket open", async |store| {
            handler.call_open(store, borrow()).await
        })
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            let request = guest
                .ctx()
                .table
                .get(&borrow())
                .expect("the request was pushed above");
            return refusal(request, error);
        }
        Err(fault) => return page(fault.status(), None),
    }

    let conn = Conn::new(guest, world, Duration::from_secs(limits.idle_timeout_secs.max(1)));
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
