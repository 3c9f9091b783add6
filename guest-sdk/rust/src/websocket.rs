//! Tornado's `WebSocketHandler` and the glue that exports it.

use std::marker::PhantomData;

use crate::bindings::{raw_connection, raw_types, raw_websocket_handler};
use crate::error::{HttpError, Result};
use crate::request::Request;
use crate::settings::Settings;

/// A WebSocket message: text or binary.
///
/// Converts from `String`, `&str`, `Vec<u8>` and `&[u8]`, so
/// [`WsContext::write_message`] takes any of those.
///
/// ```
/// use waterspout_sdk::Message;
///
/// let text = Message::from("hello");
/// assert_eq!(text.as_text(), Some("hello"));
/// let binary = Message::from(vec![1u8, 2, 3]);
/// assert_eq!(binary.as_bytes(), &[1, 2, 3]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A UTF-8 text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The text of a text message, `None` for a binary one.
    ///
    /// ```
    /// assert_eq!(waterspout_sdk::Message::from("7").as_text(), Some("7"));
    /// ```
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Binary(_) => None,
        }
    }

    /// The payload as bytes, whatever the kind.
    ///
    /// ```
    /// assert_eq!(waterspout_sdk::Message::from("hi").as_bytes(), b"hi");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// Whether this is a text message.
    ///
    /// ```
    /// assert!(waterspout_sdk::Message::from("hi").is_text());
    /// ```
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    fn into_raw(self) -> raw_connection::Message {
        match self {
            Self::Text(text) => raw_connection::Message::Text(text),
            Self::Binary(bytes) => raw_connection::Message::Binary(bytes),
        }
    }

    fn from_raw(raw: raw_connection::Message) -> Self {
        match raw {
            raw_connection::Message::Text(text) => Self::Text(text),
            raw_connection::Message::Binary(bytes) => Self::Binary(bytes),
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes)
    }
}

impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Self {
        Self::Binary(bytes.to_vec())
    }
}

/// The connection as a WebSocket handler sees it during one call: Tornado's
/// `write_message`, `close` and `ping`, plus the handshake request in `open`.
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// fn shout(ctx: &mut WsContext, text: &str) {
///     if let Err(error) = ctx.write_message(text.to_uppercase()) {
///         waterspout_sdk::log::warn(&format!("client gone: {error}"));
///     }
/// }
/// ```
pub struct WsContext<'a> {
    request: Option<Request<'a>>,
}

impl std::fmt::Debug for WsContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsContext")
            .field("has_request", &self.request.is_some())
            .finish()
    }
}

impl<'a> WsContext<'a> {
    fn with_request(request: &'a raw_types::Request) -> Self {
        Self {
            request: Some(Request::new(request)),
        }
    }

    fn detached() -> Self {
        Self { request: None }
    }

    /// The handshake request: `Some` in [`open`](WebSocketHandler::open),
    /// `None` afterwards (the host keeps no request once the connection is up;
    /// copy what you need into `self` in `open`).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::WsContext) {
    /// let room = ctx.request().map(|req| req.path()).unwrap_or_default();
    /// # }
    /// ```
    pub fn request(&self) -> Option<&Request<'a>> {
        self.request.as_ref()
    }

    /// Sends a message (text from `&str`/`String`, binary from `&[u8]`/`Vec<u8>`).
    ///
    /// Fails once the connection is closing or closed, or when the client
    /// does not read and the host's write buffer is full (Tornado's
    /// `WebSocketClosedError`).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::WsContext) -> Result<(), String> {
    /// ctx.write_message("hello")?;
    /// ctx.write_message(vec![0u8, 1, 2])?;
    /// # Ok(()) }
    /// ```
    pub fn write_message(&self, message: impl Into<Message>) -> std::result::Result<(), String> {
        raw_connection::write_message(&message.into().into_raw())
    }

    /// Starts the close handshake (code 1000 when `code` is `None`).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::WsContext) {
    /// ctx.close(Some(4000), Some("bye"));
    /// # }
    /// ```
    pub fn close(&self, code: Option<u16>, reason: Option<&str>) {
        raw_connection::close(code, reason);
    }

    /// Sends a ping with up to 125 bytes of data.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::WsContext) {
    /// let _ = ctx.ping(b"are you there");
    /// # }
    /// ```
    pub fn ping(&self, data: &[u8]) -> std::result::Result<(), String> {
        raw_connection::ping(data)
    }
}

/// A WebSocket handler, as a subclass of Tornado's `WebSocketHandler`.
///
/// One instance serves one connection for its whole life, so state kept in
/// `self` persists from [`open`](WebSocketHandler::open) through every
/// [`on_message`](WebSocketHandler::on_message) to
/// [`on_close`](WebSocketHandler::on_close).
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct Echo;
///
/// impl WebSocketHandler for Echo {
///     fn on_message(&mut self, ctx: &mut WsContext, message: Message) {
///         let _ = ctx.write_message(message);
///     }
/// }
///
/// export_websocket_handler!(Echo);
/// ```
pub trait WebSocketHandler: Default + 'static {
    /// Receives the route's settings (Tornado's `initialize(**kwargs)`).
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H { prefix: String }
    /// impl WebSocketHandler for H {
    ///     fn initialize(&mut self, settings: &Settings) {
    ///         self.prefix = settings.get("prefix").unwrap_or("").to_owned();
    ///     }
    /// }
    /// ```
    fn initialize(&mut self, settings: &Settings) {
        let _ = settings;
    }

    /// Picks one of the subprotocols the client offered, or none (the default).
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl WebSocketHandler for H {
    ///     fn select_subprotocol(&mut self, _req: &Request, protocols: &[String]) -> Option<String> {
    ///         protocols.iter().find(|p| *p == "chat.v1").cloned()
    ///     }
    /// }
    /// ```
    fn select_subprotocol(&mut self, req: &Request<'_>, protocols: &[String]) -> Option<String> {
        let _ = (req, protocols);
        None
    }

    /// Runs once the handshake is accepted; an error refuses the connection
    /// with that status. `ctx.request()` is available here only.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H { user: String }
    /// impl WebSocketHandler for H {
    ///     fn open(&mut self, ctx: &mut WsContext) -> Result<()> {
    ///         let req = ctx.request().expect("open has the request");
    ///         self.user = req.cookie("user").ok_or(HttpError::new(403))?;
    ///         let _ = ctx.write_message(format!("welcome, {}", self.user));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn open(&mut self, ctx: &mut WsContext<'_>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Handles one message from the client.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl WebSocketHandler for H {
    ///     fn on_message(&mut self, ctx: &mut WsContext, message: Message) {
    ///         if let Some(text) = message.as_text() {
    ///             let _ = ctx.write_message(format!("you said {text}"));
    ///         }
    ///     }
    /// }
    /// ```
    fn on_message(&mut self, ctx: &mut WsContext<'_>, message: Message) {
        let _ = (ctx, message);
    }

    /// Runs once the connection is closed, with the client's close code and
    /// reason when it sent them.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl WebSocketHandler for H {
    ///     fn on_close(&mut self, _ctx: &mut WsContext, code: Option<u16>, reason: Option<String>) {
    ///         waterspout_sdk::log::info!("closed: {code:?} {reason:?}");
    ///     }
    /// }
    /// ```
    fn on_close(&mut self, ctx: &mut WsContext<'_>, code: Option<u16>, reason: Option<String>) {
        let _ = (ctx, code, reason);
    }
}

/// Exports a [`WebSocketHandler`] type as the component's `websocket-handler`.
///
/// Use it once per component, at the crate's top level.
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct Echo;
///
/// impl WebSocketHandler for Echo {
///     fn on_message(&mut self, ctx: &mut WsContext, message: Message) {
///         let _ = ctx.write_message(message);
///     }
/// }
///
/// export_websocket_handler!(Echo);
/// ```
#[macro_export]
macro_rules! export_websocket_handler {
    ($handler:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            type __WaterspoutWebSocketHandler = $crate::__private::WebSocketExport<$handler>;
            $crate::bindings::websocket::export_websocket_world!(
                __WaterspoutWebSocketHandler with_types_in $crate::bindings::websocket
            );
        };
    };
}

use crate::slot::with_handler;

/// The `websocket-handler` export implemented for any [`WebSocketHandler`].
#[doc(hidden)]
pub struct WebSocketExport<T>(PhantomData<T>);

impl<T: WebSocketHandler> raw_websocket_handler::Guest for WebSocketExport<T> {
    fn initialize(settings: Vec<(String, String)>) {
        let settings = Settings::new(settings);
        let mut handler = T::default();
        handler.initialize(&settings);
        crate::slot::set(handler);
    }

    fn select_subprotocol(req: &raw_types::Request, subprotocols: Vec<String>) -> Option<String> {
        with_handler(|handler: &mut T| handler.select_subprotocol(&Request::new(req), &subprotocols))
    }

    fn open(req: &raw_types::Request) -> std::result::Result<(), raw_types::HttpError> {
        with_handler(|handler: &mut T| {
            handler
                .open(&mut WsContext::with_request(req))
                .map_err(HttpError::into_raw)
        })
    }

    fn on_message(message: raw_connection::Message) {
        with_handler(|handler: &mut T| {
            handler.on_message(&mut WsContext::detached(), Message::from_raw(message));
        });
    }

    fn on_close(code: Option<u16>, reason: Option<String>) {
        with_handler(|handler: &mut T| handler.on_close(&mut WsContext::detached(), code, reason));
    }
}

#[cfg(test)]
mod tests {
    use super::Message;

    #[test]
    fn messages_convert_from_common_types() {
        assert_eq!(Message::from("a".to_string()), Message::Text("a".into()));
        assert_eq!(Message::from(&b"ab"[..]), Message::Binary(b"ab".to_vec()));
        assert!(!Message::from(vec![1u8]).is_text());
        assert_eq!(Message::from(vec![1u8]).as_text(), None);
    }

    #[test]
    fn raw_round_trip_keeps_the_kind() {
        let text = Message::from_raw(Message::from("x").into_raw());
        assert_eq!(text, Message::Text("x".into()));
        let binary = Message::from_raw(Message::from(vec![9u8]).into_raw());
        assert_eq!(binary, Message::Binary(vec![9]));
    }
}
