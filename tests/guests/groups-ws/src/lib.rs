//! A WebSocket group member, for the integration tests. `open` joins the
//! groups named by the `group` query arguments. Messages from the client:
//! `join G`, `leave G`, `broadcast G TEXT` (answers `sent N`), `count`
//! (answers `calls N`: how many times `on-message` ran — broadcasts from
//! others must not call it).

use waterspout_sdk::groups;
use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Member {
    calls: u32,
}

impl WebSocketHandler for Member {
    fn open(&mut self, ctx: &mut WsContext) -> Result<()> {
        let req = ctx.request().expect("open has the request");
        for group in req.query_arguments("group") {
            groups::join(&group).map_err(|e| HttpError::new(403).with_reason(e.to_string()))?;
        }
        Ok(())
    }

    fn on_message(&mut self, ctx: &mut WsContext, message: Message) {
        self.calls += 1;
        let text = message.as_text().unwrap_or_default().to_owned();
        let mut words = text.splitn(3, ' ');
        let reply = match (words.next(), words.next(), words.next()) {
            (Some("join"), Some(group), _) => groups::join(group).map(|()| "joined".to_owned()),
            (Some("leave"), Some(group), _) => groups::leave(group).map(|()| "left".to_owned()),
            (Some("broadcast"), Some(group), text) => {
                groups::broadcast(group, text.unwrap_or_default()).map(|n| format!("sent {n}"))
            }
            (Some("count"), _, _) => Ok(format!("calls {}", self.calls)),
            _ => Ok("?".to_owned()),
        };
        let _ = ctx.write_message(reply.unwrap_or_else(|e| format!("error {e}")));
    }
}

export_websocket_handler!(Member);
