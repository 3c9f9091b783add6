//! Waterspout: Tornado rebuilt for WebAssembly.
//!
//! A Rust host owns the event loop, the HTTP server and the WebSocket stack;
//! every request handler is a sandboxed WebAssembly component whose WIT
//! contract (`waterspout:handler@0.1.0`) mirrors Tornado's `RequestHandler`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let app = waterspout::App::load("examples/hello".as_ref(), Default::default())?;
//! let server = waterspout::server::start(app, "127.0.0.1:0".parse()?).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod app;
pub mod bindings;
pub mod body;
pub mod build;
pub mod cli;
pub mod deploy;
pub mod dispatch;
pub mod engine;
pub mod guest_log;
pub mod manifest;
pub mod metrics;
pub mod proxy;
pub mod registry;
pub mod request;
pub mod response;
pub mod router;
pub mod server;
pub mod state;
pub mod store;
pub mod swap;
pub mod watch;
pub mod websocket;

pub use app::{App, LoadError, ServerConfig};
pub use manifest::{Manifest, ManifestError};
pub use server::ServerHandle;

/// The `Server` header value.
pub const SERVER_NAME: &str = concat!("Waterspout/", env!("CARGO_PKG_VERSION"));
