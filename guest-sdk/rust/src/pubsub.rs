//! Publish/subscribe with long polling: the host keeps a bounded history
//! per topic; [`wait`] returns the messages after a cursor, suspending this
//! guest (and nothing else) until one comes or the timeout passes.
//!
//! Topics must be granted to the handler in `waterspout.toml`
//! (`pubsub_topics = ["chat"]`, or a prefix: `"room.*"`).
//!
//! ```no_run
//! use std::time::Duration;
//! use waterspout_sdk::prelude::*;
//! use waterspout_sdk::pubsub;
//!
//! #[derive(Default)]
//! struct Updates;
//!
//! impl RequestHandler for Updates {
//!     fn post(&mut self, ctx: &mut Context) -> Result<()> {
//!         let cursor: u64 = ctx.get_argument_or("cursor", "0").parse().unwrap_or(0);
//!         // Returns at once when there is something newer; else waits.
//!         let messages = pubsub::wait("chat", cursor, Duration::from_secs(60))?;
//!         let data: Vec<&str> = messages.iter().map(|m| m.data.as_str()).collect();
//!         ctx.write_json(&serde_json::json!({ "messages": data }));
//!         Ok(())
//!     }
//!
//!     fn on_connection_close(&mut self) {
//!         // The client hung up during the wait; nothing will be sent.
//!     }
//! }
//! ```

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use crate::bindings::raw_pubsub;
use crate::error::HttpError;

/// One message of a topic with its cursor (increasing per topic, from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMessage {
    /// Pass it to [`wait`] to get only the messages after this one.
    pub cursor: u64,
    /// The message as published.
    pub data: String,
}

/// Why a pub/sub call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubsubError {
    /// The client hung up while this guest waited. Return: the SDK then
    /// calls [`on_connection_close`](crate::RequestHandler::on_connection_close).
    Closed,
    /// The topic is not granted to this handler (`pubsub_topics`).
    Denied(String),
    /// A bad topic name or a message too large.
    Invalid(String),
    /// The backend cannot be reached.
    Unavailable(String),
}

impl fmt::Display for PubsubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PubsubError::Closed => f.write_str("the client closed the connection"),
            PubsubError::Denied(m) | PubsubError::Invalid(m) | PubsubError::Unavailable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PubsubError {}

impl From<PubsubError> for HttpError {
    /// A 500 whose log message says why (a closed client never sees it).
    fn from(error: PubsubError) -> Self {
        HttpError::new(500).with_log_message(error.to_string())
    }
}

thread_local! {
    static CLIENT_CLOSED: Cell<bool> = const { Cell::new(false) };
}

/// Whether a wait learned that the client hung up (cleared when read).
pub(crate) fn take_client_closed() -> bool {
    CLIENT_CLOSED.replace(false)
}

fn convert(error: raw_pubsub::PubsubError) -> PubsubError {
    match error {
        raw_pubsub::PubsubError::Closed => {
            CLIENT_CLOSED.set(true);
            PubsubError::Closed
        }
        raw_pubsub::PubsubError::Denied(m) => PubsubError::Denied(m),
        raw_pubsub::PubsubError::Invalid(m) => PubsubError::Invalid(m),
        raw_pubsub::PubsubError::Unavailable(m) => PubsubError::Unavailable(m),
    }
}

/// Appends `data` to `topic`, waking every guest waiting on it; returns
/// the message's cursor.
pub fn publish(topic: &str, data: &str) -> Result<u64, PubsubError> {
    raw_pubsub::publish(topic, data).map_err(convert)
}

/// The kept messages of `topic` after `after` (0: all kept); when there are
/// none yet, waits up to `timeout` for the next one and returns an empty
/// list at the timeout. The handler's `wait_timeout_ms` bounds the wait.
/// A cursor from before a server restart answers with every kept message.
pub fn wait(topic: &str, after: u64, timeout: Duration) -> Result<Vec<TopicMessage>, PubsubError> {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let messages = raw_pubsub::wait(topic, after, ms).map_err(convert)?;
    Ok(messages
        .into_iter()
        .map(|m| TopicMessage {
            cursor: m.cursor,
            data: m.data,
        })
        .collect())
}

/// The newest cursor of `topic` (0 before the first publish): wait after it
/// to get only messages published from now on.
pub fn latest(topic: &str) -> Result<u64, PubsubError> {
    raw_pubsub::latest(topic).map_err(convert)
}
