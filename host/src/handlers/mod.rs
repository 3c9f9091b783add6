//! Handler drivers: one per exported world. [`http`] drives our handler
//! world in Tornado's lifecycle, [`wasi_http`] serves standard wasi:http 0.2
//! components and [`wasi_http3`] wasi:http 0.3 (p3) ones, [`websocket`] runs
//! a connection. The server's edge finds the route ([`find`]) and hands the
//! request to [`serve`] or [`upgrade`].
//!
//! **Rule:** a driver runs guests only through `runtime::Guest` (permit,
//! store, deadline, call, fault) and never implements a host trait; it knows
//! `App`, the runtime and the capabilities' contexts, never the server.

mod http;
mod inline;
mod services;
mod wasi_http;
mod wasi_http3;
pub(crate) mod websocket;
pub(crate) mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ::http::StatusCode;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::app::App;
use crate::body::Body;
use crate::registry::HandlerSlot;
use crate::runtime::{Fault, HandlerVersion, Prepared};

use self::inline::inline_until_head;
pub(crate) use self::websocket::close_all;

/// Where a request goes: its handler, the version active when it arrived
/// (kept for the whole request), and what the route gives the guest.
pub(crate) struct Target {
    slot: Arc<HandlerSlot<HandlerVersion>>,
    version: Arc<HandlerVersion>,
    settings: Vec<(String, String)>,
    path_args: Vec<String>,
    path_kwargs: Vec<(String, String)>,
}

impl Target {
    /// A WebSocket handler: the request is an upgrade, its body is not read.
    pub(crate) fn is_websocket(&self) -> bool {
        matches!(self.version.prepared, Prepared::Websocket(_))
    }
}

/// The route for `path` (404 when none matches, 500 when it points at a
/// handler that is not loaded).
pub(crate) fn find(app: &App, path: &str) -> Result<Target, StatusCode> {
    let router = app.deployer().router();
    let found = router.find(path).ok_or(StatusCode::NOT_FOUND)?;
    let Some(slot) = app.deployer().registry().get(&found.route.handler) else {
        tracing::error!(handler = %found.route.handler, "route points at a handler that is not loaded");
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    };
    Ok(Target {
        version: slot.active(),
        slot,
        settings: found.route.settings.clone(),
        path_args: found.path_args,
        path_kwargs: found.path_kwargs,
    })
}

/// Serves one request whose body was read (within the limits) by the edge.
///
/// Each driver's future is boxed: hyper keeps a connection's request future
/// in one allocation of its full size (the largest state of every path the
/// edge may take) for as long as the request lasts, so a long poll would
/// otherwise hold the biggest driver's size (~19 KiB) whatever it runs.
pub(crate) async fn serve(
    app: Arc<App>,
    target: Target,
    parts: ::http::request::Parts,
    body: Bytes,
    remote: SocketAddr,
) -> ::http::Response<Body> {
    match &target.version.prepared {
        Prepared::Handler(pre) => {
            let pre = pre.clone();
            Box::pin(http::serve(app, target, pre, parts, body, remote)).await
        }
        Prepared::WasiHttp(pre) => {
            let pre = pre.clone();
            Box::pin(wasi_http::serve(app, target, pre, parts, body)).await
        }
        Prepared::WasiHttp3(pre) => {
            let pre = pre.clone();
            Box::pin(wasi_http3::serve(app, target, pre, parts, body)).await
        }
        Prepared::Websocket(_) => unreachable!("the edge upgrades websocket routes"),
        Prepared::Worker(_) => {
            tracing::error!(handler = %target.version.name,
                "a route points at a background worker (worker world), which serves no requests");
            crate::body::error_page(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Runs a WebSocket handshake (and, once accepted, the connection).
pub(crate) async fn upgrade(
    app: &Arc<App>,
    target: Target,
    parts: ::http::request::Parts,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
    remote: SocketAddr,
) -> ::http::Response<Body> {
    Box::pin(websocket::upgrade(app, target, parts, on_upgrade, remote)).await
}

/// A request whose guest could not be admitted (every instance busy, the
/// pool full): its error page goes to the client and counts for `version`.
fn refuse(
    head_tx: oneshot::Sender<::http::Response<Body>>,
    version: &HandlerVersion,
    fault: &Fault,
    start: Instant,
) {
    let _ = head_tx.send(crate::body::error_page(fault.status()));
    version
        .metrics
        .request_done(fault.status().as_u16(), start.elapsed());
}

/// The status a wasi:http request ended with: the guest's, when its head was
/// forwarded; else an error page sent now (the fault's status, or 500 when the guest
/// returned without a response). Counted for `version`.
fn wasi_http_status(
    forwarded: Result<u16, oneshot::Sender<::http::Response<Body>>>,
    outcome: Result<(), StatusCode>,
    version: &HandlerVersion,
    start: Instant,
) {
    let status = match forwarded {
        Ok(status) => status,
        Err(head_tx) => {
            let status = match outcome {
                Ok(()) => {
                    tracing::error!(handler = %version.name, version = version.version,
                        "wasi:http guest returned without a response");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                Err(status) => status,
            };
            let _ = head_tx.send(crate::body::error_page(status));
            status.as_u16()
        }
    };
    version.metrics.request_done(status, start.elapsed());
}
