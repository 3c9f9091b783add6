//! An app: its manifest, router and handler registry, loaded and checked
//! before anything is served.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::admin::AdminToken;
use crate::engine::{EngineConfig, WasmEngine};
use crate::manifest::{Manifest, ManifestError};
use crate::registry::{Linkers, Registry};
use crate::router::Router;
use crate::store::Store;
use crate::swap::SwapControl;

/// Server-wide settings; the manifest's `[app]` table and the CLI fill them.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Tornado's `max_body_size`: 100 MB.
    pub max_body_size: u64,
    /// A client must send its request headers within this time; hyper also
    /// closes a keep-alive connection idle this long between requests.
    pub header_timeout: Duration,
    /// A client must send the whole request body within this time (→ 408).
    pub body_timeout: Duration,
    /// An HTTP/2 connection with no request in flight and no traffic for this
    /// long is closed (HTTP/1 keep-alive is bounded by `header_timeout`).
    pub idle_timeout: Duration,
    /// Connections beyond this many are refused at accept.
    pub max_connections: usize,
    /// How long graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Threads serving HTTP, each with its own event loop (default: one per core).
    pub workers: usize,
    pub engine: EngineConfig,
    /// Where the admin API listens (never the public port unless set so).
    pub admin_listen: SocketAddr,
    /// The admin API's bearer token; `None` turns the admin API off.
    pub admin_token: Option<AdminToken>,
    /// The largest component the admin API accepts, bytes.
    pub max_upload_size: u64,
    /// The store directory; `None` keeps versions in memory only.
    pub store_dir: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8888)),
            max_body_size: 100 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 20_000,
            shutdown_grace: Duration::from_secs(30),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            engine: EngineConfig::default(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8889)),
            admin_token: None,
            max_upload_size: 100 * 1024 * 1024,
            store_dir: None,
        }
    }
}

impl ServerConfig {
    /// Applies the manifest's `[app]` settings (the CLI may override after).
    pub fn apply_manifest(&mut self, manifest: &Manifest) -> Result<(), ManifestError> {
        if let Some(listen) = &manifest.app.listen {
            self.listen = listen
                .parse()
                .map_err(|e| manifest.error(None, format!("[app] listen = {listen:?}: {e}")))?;
        }
        if let Some(max) = manifest.app.max_body_size {
            self.max_body_size = max;
        }
        if let Some(workers) = manifest.app.workers {
            self.workers = workers.get();
        }
        if let Some(max) = manifest.app.max_connections {
            self.max_connections = max;
        }
        if let Some(secs) = manifest.app.shutdown_grace_secs {
            self.shutdown_grace = Duration::from_secs(secs);
        }
        if let Some(secs) = manifest.app.header_timeout_secs {
            self.header_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = manifest.app.idle_timeout_secs {
            self.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = manifest.app.body_timeout_secs {
            self.body_timeout = Duration::from_secs(secs);
        }
        Ok(())
    }
}

/// Why an app could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{0:#}")]
    Engine(anyhow::Error),
    #[error("{0}")]
    Store(String),
}

/// A loaded app, shared by every connection.
pub struct App {
    pub dir: PathBuf,
    pub config: ServerConfig,
    /// The manifest as loaded at start (handlers it declares, their files).
    pub manifest: Manifest,
    pub router: ArcSwap<Router>,
    pub registry: Registry,
    /// Every version's bytes and metadata, and the active set.
    pub store: Store,
    /// Serializes hot-swap operations (see `swap`).
    pub swap: SwapControl,
    next_request_id: AtomicU64,
    /// Open WebSocket connections (graceful shutdown closes them).
    pub websockets: crate::websocket::Connections,
    // Dropped last: stops the epoch ticker.
    pub wasm: WasmEngine,
}

impl App {
    /// Loads and checks the app in `dir`: every handler is compiled and linked
    /// now, so a bad component stops start-up rather than a request. Blocking.
    pub fn load(dir: &Path, mut config: ServerConfig) -> Result<Arc<App>, LoadError> {
        let manifest = Manifest::load(dir)?;
        config.apply_manifest(&manifest)?;
        let max_memory = manifest
            .handlers
            .iter()
            .map(|h| (h.limits.memory_limit_mb as usize) << 20)
            .max()
            .unwrap_or(0);
        config.engine.max_memory_bytes = config.engine.max_memory_bytes.max(max_memory);
        let wasm = WasmEngine::new(&config.engine).map_err(LoadError::Engine)?;
        let linkers = Linkers::new(wasm.engine.clone()).map_err(LoadError::Engine)?;
        let registry = Registry::new(linkers);

        let store = match &config.store_dir {
            Some(dir) => Store::open(dir).map_err(|e| LoadError::Store(e.to_string()))?,
            None => Store::in_memory(),
        };
        crate::metrics::install();
        // The store's active versions (and route table) win over the manifest.
        let routes = crate::swap::restore(&manifest, &registry, &store)?;

        Ok(Arc::new(App {
            dir: manifest.dir.clone(),
            config,
            manifest,
            router: ArcSwap::from_pointee(Router::new(routes)),
            registry,
            store,
            swap: SwapControl::default(),
            next_request_id: AtomicU64::new(1),
            websockets: Default::default(),
            wasm,
        }))
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }
}
