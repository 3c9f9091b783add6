//! An app: its settings, its live handlers and routes, and the engine, loaded
//! and checked before anything is served. Assembled here, in one place; seen
//! by the server, the handler drivers and the admin API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use crate::config::ServerConfig;
use crate::deploy::{
    ClusterLink, Deployer, HandlerInfo, RestoreError, Source, StoreError, SwapError, VersionStore,
};
use crate::manifest::{Manifest, ManifestError};
use crate::runtime::{Components, WasmEngine};
use crate::services::http_client::RootCertificates;
use crate::services::web::Web;
use crate::services::{ServiceError, ServiceOptions, Services};
use crate::statics::Statics;

/// Why an app could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot set up the WebAssembly engine")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot open the version store")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Services(#[from] ServiceError),
}

/// A loaded app, shared by every connection.
pub struct App {
    dir: PathBuf,
    config: ServerConfig,
    deployer: Arc<Deployer>,
    next_request_id: AtomicU64,
    /// Open WebSocket connections (graceful shutdown closes them).
    connections: Connections,
    /// Signed cookies, XSRF, templates (`[app]`'s web settings).
    web: Arc<Web>,
    /// `static_path` and its version cache, when the app has one.
    statics: Option<Arc<Statics>>,
    /// The service backends (kv, …) every guest's capabilities use.
    services: Services,
    // Dropped last: the ticker forgets its engines.
    wasm: WasmEngine,
}

impl App {
    /// Loads and checks the app in `dir`, its manifest's `[app]` settings
    /// applied over `config`: every handler is compiled and linked now, so a
    /// bad component stops start-up rather than a request. Blocking.
    pub fn load(dir: &Path, mut config: ServerConfig) -> Result<Arc<App>, LoadError> {
        let manifest = Manifest::load(dir)?;
        config.apply_manifest(&manifest)?;
        App::with_manifest(manifest, config)
    }

    /// Loads the app `manifest` describes with `config` exactly as given (the
    /// caller applied the manifest's `[app]` settings, and then its own). Blocking.
    pub fn with_manifest(manifest: Manifest, mut config: ServerConfig) -> Result<Arc<App>, LoadError> {
        let max_memory = manifest
            .handlers
            .iter()
            .map(|h| (h.limits.memory_limit_mb as usize) << 20)
            .max()
            .unwrap_or(0);
        config.engine.max_memory_bytes = config.engine.max_memory_bytes.max(max_memory);
        let engine_error = |e: anyhow::Error| LoadError::Engine(e.into());
        let wasm = WasmEngine::new(&config.engine).map_err(engine_error)?;
        let components = Components::new(&wasm).map_err(|e| engine_error(e.into()))?;
        let versions = match &config.store_dir {
            Some(dir) => VersionStore::open(dir)?,
            None => VersionStore::in_memory(),
        };
        let kv_dir = match (manifest.app.kv_persist, &config.store_dir) {
            (false, _) => None,
            (true, Some(dir)) => Some(dir.join("kv")),
            (true, None) => {
                return Err(manifest
                    .error(
                        None,
                        "[app] kv_persist = true needs a store directory (`waterspout serve` uses \
                         APP/.waterspout/store, or --store DIR)",
                    )
                    .into());
            }
        };
        let queues: Vec<_> = manifest
            .queues
            .iter()
            .map(|q| crate::services::queues::QueueConfig {
                name: q.name.clone(),
                max_size: q.max_size,
                max_item_size: q.max_item_size,
            })
            .collect();
        let http_client_roots = match &manifest.app.http_client_ca {
            Some(file) => {
                let line = manifest.line_of(file.span().start);
                let path = manifest.dir.join(file.get_ref());
                let pem = std::fs::read(&path).map_err(|e| {
                    manifest.error(line, format!("[app] http_client_ca {}: {e}", path.display()))
                })?;
                RootCertificates::from_pem(&pem).map_err(|e| {
                    manifest.error(line, format!("[app] http_client_ca {}: {e}", path.display()))
                })?
            }
            None => RootCertificates::default(),
        };
        // Before the services: a cluster's first Redis answer sets
        // `waterspout_redis_up` (on a change only), which a recorder
        // installed later would never see.
        crate::metrics::install();
        let mut services = Services::embedded(ServiceOptions {
            kv_dir: kv_dir.as_deref(),
            http_client_roots,
            queues: queues.clone(),
        })?;
        if let Some(cluster) = &manifest.cluster {
            services = services.clustered(cluster, queues)?;
        }
        let statics = match &config.static_path {
            Some(root) => Some(Arc::new(Statics::open(root, &config.static_url_prefix).map_err(
                |e| manifest.error(None, format!("[app] static_path {}: {e}", root.display())),
            )?)),
            None => None,
        };
        // The store's active versions (and route table) win over the manifest.
        let dir = manifest.dir.clone();
        let web = Arc::new(Web::from_manifest(&manifest));

        let deployer = Deployer::restore(manifest, components, versions)?;
        Ok(Arc::new(App {
            dir,
            config,
            deployer: Arc::new(deployer),
            next_request_id: AtomicU64::new(1),
            connections: Connections::default(),
            web,
            statics,
            services,
            wasm,
        }))
    }

    /// The app's directory (where its `waterspout.toml` is).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The app's static files (`static_path`), when it has them: what the
    /// server serves and what `static_url` versions.
    pub fn statics(&self) -> Option<&Arc<Statics>> {
        self.statics.as_ref()
    }

    /// Every handler, by name: active version, world, routes.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        self.deployer.handler_infos()
    }

    /// Deploys `wasm` as the next version of `handler` and activates it (as
    /// an upload over the admin API would). Returns the new version number.
    pub async fn deploy(&self, handler: &str, wasm: Vec<u8>) -> Result<u64, SwapError> {
        let info = self.deployer.deploy(handler, wasm, true, Source::Upload).await?;
        Ok(info.version)
    }

    /// In a cluster (`[cluster]` in the manifest, or `serve --redis`): joins
    /// its deploys — applies the cluster's active set, or records this node's
    /// as the first — and follows them from then on. Call before serving
    /// (docs/cluster.md). Outside a cluster, does nothing.
    pub async fn join_cluster(&self, link: Option<ClusterLink>) -> Result<(), SwapError> {
        match link {
            Some(link) => self.deployer.join_cluster(link).await,
            None => Ok(()),
        }
    }

    /// WebSocket connections open now (handshakes in progress included).
    pub fn open_websockets(&self) -> usize {
        self.connections.open()
    }

    /// `bytes` compiled to native code for this server's engine (a test of
    /// the admin API's refusal of precompiled uploads needs such a file).
    #[doc(hidden)]
    pub fn precompile(&self, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(self.wasm.engine.precompile_component(bytes)?)
    }

    pub(crate) fn deployer(&self) -> &Arc<Deployer> {
        &self.deployer
    }

    pub(crate) fn services(&self) -> &Services {
        &self.services
    }

    pub(crate) fn web(&self) -> &Arc<Web> {
        &self.web
    }

    pub(crate) fn connections(&self) -> &Connections {
        &self.connections
    }

    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// The app's open long-lived connections (WebSockets): a shutdown signal
/// they all watch, and their count.
pub struct Connections {
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) open: watch::Sender<usize>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            shutdown: watch::channel(false).0,
            open: watch::channel(0).0,
        }
    }
}

impl Connections {
    /// How many connections are open (handshakes in progress included).
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Counts a new connection, unless the server is shutting down.
    pub(crate) fn register(&self) -> Option<Registration> {
        if *self.shutdown.borrow() {
            return None;
        }
        self.open.send_modify(|n| *n += 1);
        Some(Registration {
            shutdown: self.shutdown.subscribe(),
            open: self.open.clone(),
        })
    }
}

/// One connection's place in `Connections`; leaving it uncounts it.
pub(crate) struct Registration {
    pub(crate) shutdown: watch::Receiver<bool>,
    open: watch::Sender<usize>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.open.send_modify(|n| *n -= 1);
    }
}
