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
//!
//! The host is built in layers, each a folder whose `mod.rs` states its rule;
//! arrows go down only (`scripts/layers.sh` checks it):
//!
//! ```text
//! cli → admin → server → handlers → app → deploy → runtime → capabilities → services
//!                                         bottom: config, manifest, registry, router, metrics, body, text, statics, client
//! ```

// The top: assembled here, seen by the server, the drivers and the admin API.
mod app;
#[cfg(feature = "cli")]
pub mod cli;

pub mod admin;
mod deploy;
mod handlers;
pub mod server;

#[doc(hidden)]
pub mod capabilities;
#[doc(hidden)]
pub mod runtime;
mod services;

// The bottom layer: plain data and helpers, importing none of the above.
mod body;
#[doc(hidden)]
pub mod client;
pub mod config;
mod head;
mod logtail;
#[doc(hidden)]
pub mod manifest;
#[doc(hidden)]
pub mod metrics;
mod registry;
#[doc(hidden)]
pub mod router;
#[doc(hidden)]
pub mod statics;
mod text;

pub use app::{App, LoadError};
pub use config::{AdminToken, EngineConfig, ServerConfig, TlsFiles};
pub use deploy::{HandlerInfo, SwapError, VersionInfo};
pub use manifest::{Manifest, ManifestError};
pub use registry::World;
pub use server::{MAX_URI_LEN, ServerHandle};

/// The `Server` header value.
pub const SERVER_NAME: &str = concat!("Waterspout/", env!("CARGO_PKG_VERSION"));
