//! Write Waterspout request handlers in Rust, the Tornado way.
//!
//! A handler is a WebAssembly component built for `wasm32-wasip2`. Implement
//! [`RequestHandler`] the way you would subclass Tornado's `RequestHandler`,
//! then export it:
//!
//! ```no_run
//! use waterspout_sdk::prelude::*;
//!
//! #[derive(Default)]
//! struct MainHandler;
//!
//! impl RequestHandler for MainHandler {
//!     fn get(&mut self, ctx: &mut Context) -> Result<()> {
//!         ctx.write("Hello, world");
//!         Ok(())
//!     }
//! }
//!
//! export_handler!(MainHandler);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (the crate
//! needs `crate-type = ["cdylib"]`) and route it in `waterspout.toml`.
//!
//! A handler that needs nothing of std's WASI (clock, files, environment,
//! stdout) can be built lean, for `wasm32-unknown-unknown`: a core module
//! carrying its WIT, which Waterspout makes a component when it loads it,
//! with only the imports the handler calls (fewer to wire at every fresh
//! instance). There a panic's message goes to the host's log at `error`
//! level, and `std::time::SystemTime::now()` panics.
//!
//! The lifecycle is Tornado's: `initialize(settings)` → `prepare` → the verb
//! → `on_finish`, with `write_error` for error pages. WebSocket handlers
//! implement [`WebSocketHandler`] and use [`export_websocket_handler!`].
//!
//! | Tornado                          | Waterspout                                  |
//! |----------------------------------|---------------------------------------------|
//! | `self.get_argument("x")`         | `ctx.get_argument("x")?`                    |
//! | `self.write(...)` / `write(dict)`| `ctx.write(..)` / `ctx.write_json(&value)`  |
//! | `raise HTTPError(404)`           | `return Err(HttpError::new(404))`           |
//! | `self.send_error(403)`           | `ctx.send_error(403)`                       |
//! | `self.request.headers`           | `ctx.request().headers()`                   |
//! | `self.get_signed_cookie("u")`    | `ctx.get_signed_cookie("u")`                |
//! | `self.render("t.html", x=1)`     | `ctx.render("t.html", &json!({"x": 1}))?`   |
//! | `@tornado.web.authenticated`     | `ctx.authenticated(user, \|ctx, user\| ..)`  |
//! | `tornado.queues.Queue`           | [`Queue`] (named, `[queue.NAME]` in the manifest) |
//! | `async def worker()` × N         | [`Worker`] + [`export_worker!`] (`[worker.NAME]`) |
//!
//! The crate also compiles for native targets so that handler code can be
//! type-checked and unit-tested anywhere, but calls that reach the host
//! (everything on [`Context`], [`Request`], [`WsContext`] and [`log`]) only
//! work inside Waterspout.

#![warn(missing_docs)]

#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings;

mod context;
mod error;
pub mod groups;
mod handler;
pub mod http_client;
pub mod kv;
pub mod log;
mod panic_hook;
pub mod pubsub;
mod queue;
mod request;
mod settings;
mod slot;
mod status;
pub mod timers;
mod web;
mod websocket;
mod worker;

/// The lean build's allocator (feature `lean-allocator`, on by default):
/// dlmalloc, as std has it on `wasm32-unknown-unknown`, but in the version
/// that first uses the free heap the linker left in the initial memory
/// (`--initial-heap`, set in `.cargo/config.toml`). std's grows memory at
/// its first allocation, so every request on a fresh instance grew it, and
/// each growth costs the host two `mprotect`s and a TLB shootdown
/// (docs/guests.md, "Initial heap").
#[cfg(all(target_family = "wasm", target_os = "unknown", feature = "lean-allocator"))]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

pub use self::{
    context::{Context, CookieOptions},
    error::{HttpError, Result},
    handler::{RequestHandler, error_page},
    queue::{Queue, QueueError, QueueItems},
    request::{Method, Request, UploadedFile},
    settings::Settings,
    status::reason_phrase,
    web::MAX_AGE_DAYS,
    websocket::{Message, WebSocketHandler, WsContext},
    worker::Worker,
};

/// The names most handlers need, for a glob import.
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct Ping;
///
/// impl RequestHandler for Ping {
///     fn get(&mut self, ctx: &mut Context) -> Result<()> {
///         ctx.write("pong");
///         Ok(())
///     }
/// }
/// export_handler!(Ping);
/// ```
pub mod prelude {
    pub use crate::{
        Context, CookieOptions, HttpError, Message, Queue, QueueError, Request, RequestHandler, Result,
        Settings, WebSocketHandler, Worker, WsContext, export_handler, export_websocket_handler,
        export_worker,
    };
}

/// Items the export macros use; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::handler::HandlerExport;
    pub use crate::websocket::WebSocketExport;
    pub use crate::worker::WorkerExport;
}
