//! A WebSocket handler that misbehaves on command, for tests/integration/websocket.rs.
//!
//! Handshake (query arguments of the upgrade request):
//! - `refuse=STATUS`: `open` refuses with STATUS and reason "refused by guest";
//! - `greet=TEXT`: `open` writes TEXT before the handshake is answered.
//!
//! Subprotocols: picks `chat.v2`, else `chat.v1`, else none; when the client
//! offers `bogus`, it answers `not-offered` (a guest bug: the host refuses).
//!
//! Messages (text):
//! - `count`: how many messages this connection sent so far (this one too);
//! - `trap`: panics; `spin`: loops forever (the time limit ends it);
//! - `close CODE REASON`: the server closes with CODE and REASON;
//! - `ping DATA`: the server pings with DATA;
//! - `flood SIZE`: writes SIZE-byte binary messages until `write-message`
//!   fails (at most 4096), then `report` answers "N ERROR";
//! - anything else (and binary) comes back unchanged.
//!
//! `on-close` with code 4321 and reason `wait-MS` busy-waits MS milliseconds,
//! so a test can tell that the client's code and reason reached the guest.

use std::time::{Duration, Instant};

use waterspout_sdk::prelude::*;

#[derive(Default)]
struct WsFaults {
    received: u64,
    flood: Option<(u32, String)>,
}

impl WebSocketHandler for WsFaults {
    fn select_subprotocol(&mut self, _req: &Request, protocols: &[String]) -> Option<String> {
        if protocols.iter().any(|p| p == "bogus") {
            return Some("not-offered".into());
        }
        ["chat.v2", "chat.v1"]
            .into_iter()
            .find(|want| protocols.iter().any(|p| p == want))
            .map(str::to_owned)
    }

    fn open(&mut self, ctx: &mut WsContext) -> Result<()> {
        let req = ctx.request().expect("open has the request");
        if let Some(status) = req.query_arguments("refuse").first() {
            let status = status.parse().unwrap_or(400);
            return Err(HttpError::new(status).with_reason("refused by guest"));
        }
        if let Some(greeting) = req.query_arguments("greet").first().cloned() {
            let _ = ctx.write_message(greeting);
        }
        Ok(())
    }

    fn on_message(&mut self, ctx: &mut WsContext, message: Message) {
        self.received += 1;
        let Some(text) = message.as_text() else {
            let _ = ctx.write_message(message);
            return;
        };
        let (command, rest) = text.split_once(' ').unwrap_or((text, ""));
        match command {
            "count" => {
                let _ = ctx.write_message(self.received.to_string());
            }
            "trap" => panic!("trap requested"),
            "spin" =>
            {
                #[allow(clippy::empty_loop)]
                loop {}
            }
            "close" => {
                let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                ctx.close(code.parse().ok(), Some(reason));
            }
            "ping" => {
                let _ = ctx.ping(rest.as_bytes());
            }
            "flood" => {
                let size: usize = rest.parse().unwrap_or(65536);
                let chunk = vec![b'x'; size];
                let mut sent = 0;
                let mut error = String::from("none");
                while sent < 4096 {
                    match ctx.write_message(chunk.clone()) {
                        Ok(()) => sent += 1,
                        Err(e) => {
                            error = e;
                            break;
                        }
                    }
                }
                self.flood = Some((sent, error));
            }
            "report" => {
                let (sent, error) = self.flood.clone().unwrap_or((0, "no flood".into()));
                let _ = ctx.write_message(format!("{sent} {error}"));
            }
            _ => {
                let _ = ctx.write_message(message);
            }
        }
    }

    fn on_close(&mut self, _ctx: &mut WsContext, code: Option<u16>, reason: Option<String>) {
        if code == Some(4321)
            && let Some(ms) = reason.as_deref().and_then(|r| r.strip_prefix("wait-"))
        {
            let until = Instant::now() + Duration::from_millis(ms.parse().unwrap_or(0));
            while Instant::now() < until {}
        }
    }
}

export_websocket_handler!(WsFaults);
