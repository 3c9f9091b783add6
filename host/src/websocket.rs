//! WebSocket connections: one guest instance per connection (issue: websockets).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::app::App;
use crate::body::Body;
use crate::registry::{HandlerSlot, HandlerVersion};

/// The outbound side of one connection, held in the instance's store.
pub struct Outbound {}

#[allow(clippy::too_many_arguments)]
pub async fn upgrade(
    _app: &Arc<App>,
    _slot: &Arc<HandlerSlot>,
    _version: Arc<HandlerVersion>,
    _settings: Vec<(String, String)>,
    _req: &mut http::Request<hyper::body::Incoming>,
    _remote: SocketAddr,
    _path_args: Vec<String>,
    _path_kwargs: Vec<(String, String)>,
) -> http::Response<Body> {
    crate::response::error_page(http::StatusCode::NOT_IMPLEMENTED)
}

/// Sends close frames to every open connection (graceful shutdown).
pub async fn close_all(_app: &Arc<App>) {}

use crate::bindings::WsMessage;
use crate::bindings::websocket::waterspout::handler::websocket_connection;
use crate::state::HostState;

impl websocket_connection::Host for HostState {
    async fn write_message(&mut self, _message: WsMessage) -> wasmtime::Result<Result<(), String>> {
        Ok(Err("not connected".into()))
    }
    async fn close(&mut self, _code: Option<u16>, _reason: Option<String>) -> wasmtime::Result<()> {
        Ok(())
    }
    async fn ping(&mut self, _data: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(Err("not connected".into()))
    }
}
