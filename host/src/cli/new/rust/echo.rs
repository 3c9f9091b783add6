//! Tornado's `EchoWebSocket`: every message comes back unchanged.
//!
//! ```python
//! class EchoWebSocket(tornado.websocket.WebSocketHandler):
//!     def on_message(self, message):
//!         self.write_message(message)
//! ```

use waterspout_sdk::log;
use waterspout_sdk::prelude::*;

#[derive(Default)]
struct EchoWebSocket;

impl WebSocketHandler for EchoWebSocket {
    fn on_message(&mut self, ctx: &mut WsContext, message: Message) {
        if let Err(error) = ctx.write_message(message) {
            log::warn!("echo: cannot reply: {error}");
        }
    }
}

export_websocket_handler!(EchoWebSocket);
