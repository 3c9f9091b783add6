//! WebSocket groups: a WebSocket handler [`join`]s named groups with its
//! connection; any handler [`broadcast`]s to a group. The host writes the
//! message to every member connection itself: the members' handlers are
//! not called (Tornado's chat keeps a set of waiters and writes to each;
//! here the host keeps the set).
//!
//! Groups must be granted to the handler in `waterspout.toml`
//! (`groups = ["chat"]`, or a prefix: `"room.*"`).
//!
//! ```no_run
//! use waterspout_sdk::prelude::*;
//! use waterspout_sdk::groups;
//!
//! #[derive(Default)]
//! struct ChatSocket;
//!
//! impl WebSocketHandler for ChatSocket {
//!     fn open(&mut self, _ctx: &mut WsContext) -> Result<()> {
//!         groups::join("chat")?;
//!         Ok(())
//!     }
//!     fn on_message(&mut self, _ctx: &mut WsContext, message: Message) {
//!         let _ = groups::broadcast("chat", message);
//!     }
//! }
//! ```

use std::fmt;

use crate::bindings::raw_groups;
use crate::error::HttpError;
use crate::websocket::Message;

/// Why a group call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupError {
    /// `join` and `leave` need a WebSocket connection.
    NotAConnection,
    /// The group is not granted to this handler (`groups`).
    Denied(String),
    /// A bad group name or a message too large.
    Invalid(String),
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::NotAConnection => {
                f.write_str("only a WebSocket connection can join or leave a group")
            }
            GroupError::Denied(m) | GroupError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for GroupError {}

impl From<GroupError> for HttpError {
    fn from(error: GroupError) -> Self {
        HttpError::new(500).with_log_message(error.to_string())
    }
}

fn convert(error: raw_groups::GroupError) -> GroupError {
    match error {
        raw_groups::GroupError::NotAConnection => GroupError::NotAConnection,
        raw_groups::GroupError::Denied(m) => GroupError::Denied(m),
        raw_groups::GroupError::Invalid(m) => GroupError::Invalid(m),
    }
}

/// Adds this WebSocket connection to `group` (until it leaves or closes).
pub fn join(group: &str) -> Result<(), GroupError> {
    raw_groups::join(group).map_err(convert)
}

/// Takes this connection out of `group`.
pub fn leave(group: &str) -> Result<(), GroupError> {
    raw_groups::leave(group).map_err(convert)
}

/// Sends `message` to every member connection of `group` (this one too when
/// it is a member); returns how many members it was queued for.
pub fn broadcast(group: &str, message: impl Into<Message>) -> Result<u32, GroupError> {
    let message = match message.into() {
        Message::Text(text) => raw_groups::GroupMessage::Text(text),
        Message::Binary(bytes) => raw_groups::GroupMessage::Binary(bytes),
    };
    raw_groups::broadcast(group, &message).map_err(convert)
}
