//! A WebSocket echo server, as Tornado's `EchoWebSocket` example.
//!
//! Run it: `cargo run -p waterspout -- serve --build examples/echo` from the
//! repository root, then connect to `ws://127.0.0.1:8888/echo`.
//!
//! Protocol:
//! - a text or binary message comes back unchanged, of the same kind;
//! - the text `count` is answered with how many messages this connection has
//!   received, counting this one (one instance serves one connection, so the
//!   count lives in the handler);
//! - the text `close` makes the server close with code 1000 and reason `bye`.

use waterspout_sdk::log;
use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Echo {
    /// Messages received on this connection so far.
    received: u64,
}

impl WebSocketHandler for Echo {
    fn open(&mut self, ctx: &mut WsContext) -> Result<()> {
        if let Some(req) = ctx.request() {
            log::info!("echo: connection from {}", req.remote_ip());
        }
        Ok(())
    }

    fn on_message(&mut self, ctx: &mut WsContext, message: Message) {
        self.received += 1;
        let reply = match message.as_text() {
            Some("count") => Message::from(self.received.to_string()),
            Some("close") => {
                ctx.close(Some(1000), Some("bye"));
                return;
            }
            _ => message,
        };
        if let Err(error) = ctx.write_message(reply) {
            log::warn!("echo: cannot reply: {error}");
        }
    }

    fn on_close(&mut self, _ctx: &mut WsContext, code: Option<u16>, reason: Option<String>) {
        log::info!(
            "echo: closed after {} messages (code {code:?}, reason {reason:?})",
            self.received
        );
    }
}

export_websocket_handler!(Echo);
