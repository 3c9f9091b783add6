//! Deploy: the live set of handlers and routes, the hot-swap operations that
//! change it (behind the admin API and `serve --watch`: deploy a version,
//! activate, roll back, delete, replace the routes), the version store they
//! write, and, at start, restoring what the store says was active.
//!
//! **Rule:** deploy knows the runtime (to compile), the registry, the router
//! and the manifest; never the handler drivers, the server, the admin API or
//! `App`. Its version store deals in bytes and JSON only.
//!
//! Every operation validates first and changes nothing when refused. The
//! order of a change is always: compile (off the async runtime, one at a
//! time) → write the store (fsync) → swap the in-memory pointer. So when a
//! call returns success, the change is durable and every request that starts
//! afterwards sees it; a request already running keeps the version it
//! started with (it holds its own `Arc`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use arc_swap::ArcSwap;

use crate::manifest::{HandlerLimits, Manifest, check_route};
use crate::registry::{Registry, World, sha256_hex};
use crate::router::{Route, Router};
use crate::runtime::{ComponentError, Components, HandlerVersion, Prepared};

mod cluster;
mod follow;
mod restore;
mod versions;

pub use self::cluster::{ClusterError, ClusterLink};
pub use self::restore::RestoreError;
pub use self::versions::{
    HandlerRecord, RouteDoc, STATE_FILE, Source, StoreError, VersionMeta, VersionStore, rfc3339,
    valid_handler_name,
};

/// A boxed underlying error, kept as the `source` of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serializes changes and compiles; remembers the version last swapped out
/// of each handler so a rollback to it is instant.
struct SwapControl {
    /// One compile at a time, so uploads never take more than one core from
    /// serving.
    compile: Semaphore,
    /// One change of the active set / routes / store at a time.
    ops: tokio::sync::Mutex<()>,
    recent: Mutex<HashMap<String, Arc<HandlerVersion>>>,
}

impl Default for SwapControl {
    fn default() -> Self {
        SwapControl {
            compile: Semaphore::new(1),
            ops: tokio::sync::Mutex::new(()),
            recent: Mutex::new(HashMap::new()),
        }
    }
}

/// Why an operation was refused. Each knows its HTTP status; the message says
/// what to do about it (with its source, for the underlying error).
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("no handler named {0:?} (GET /handlers lists them)")]
    UnknownHandler(String),
    #[error("handler {handler:?} has no version {version} (GET /handlers/{handler}/versions lists them)")]
    UnknownVersion { handler: String, version: u64 },
    #[error(
        "invalid handler name {0:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    BadName(String),
    #[error("component refused")]
    Refused(#[from] ComponentError),
    #[error(
        "component refused: handler {handler:?} is a {} handler and this component implements the {} world; deploy it under a new name and point a route at it",
        active.as_str(), uploaded.as_str()
    )]
    WorldChange {
        handler: String,
        active: World,
        uploaded: World,
    },
    #[error(
        "handler {handler:?} has no earlier active version to roll back to (version {current} is active; \
         POST /handlers/{handler}/versions/N/activate picks any version)"
    )]
    NothingToRollBackTo { handler: String, current: u64 },
    #[error("version {version} of {handler:?} is active; activate or roll back to another version first")]
    VersionActive { handler: String, version: u64 },
    #[error("handler {handler:?} is declared in {}; remove it there rather than over the API", file.display())]
    DeclaredInManifest {
        handler: String,
        file: std::path::PathBuf,
    },
    #[error(
        "handler {handler:?} is still routed from {routes:?}; replace the route table without it first (PUT /routes)"
    )]
    StillRouted { handler: String, routes: Vec<String> },
    #[error("invalid route table")]
    Routes(#[source] RouteTableError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("nothing was changed: {0}")]
    Cluster(#[from] ClusterError),
    #[error("internal error: {what}")]
    Internal {
        what: &'static str,
        #[source]
        source: BoxError,
    },
}

impl SwapError {
    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> u16 {
        match self {
            SwapError::UnknownHandler(_) | SwapError::UnknownVersion { .. } => 404,
            SwapError::BadName(_) => 400,
            SwapError::Refused(_) | SwapError::WorldChange { .. } | SwapError::Routes(_) => 422,
            SwapError::NothingToRollBackTo { .. }
            | SwapError::VersionActive { .. }
            | SwapError::DeclaredInManifest { .. }
            | SwapError::StillRouted { .. } => 409,
            SwapError::Store(_) | SwapError::Internal { .. } => 500,
            SwapError::Cluster(_) => 503,
        }
    }
}

/// What is wrong with a route table given over the API (or saved in the store).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RouteTableError(String);

/// One version, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub handler: String,
    pub version: u64,
    pub sha256: String,
    pub size: u64,
    pub world: World,
    pub uploaded_at: String,
    pub source: Source,
    pub active: bool,
    /// How long validating and compiling took (uploads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compile_ms: Option<f64>,
}

impl VersionInfo {
    fn new(meta: VersionMeta, active: bool, compile: Option<Duration>) -> Self {
        VersionInfo {
            handler: meta.handler,
            version: meta.version,
            sha256: meta.sha256,
            size: meta.size,
            world: meta.world,
            uploaded_at: meta.uploaded_at,
            source: meta.source,
            active,
            compile_ms: compile.map(|d| (d.as_secs_f64() * 1e5).round() / 100.0),
        }
    }
}

/// One handler, as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HandlerInfo {
    pub name: String,
    pub active_version: u64,
    pub sha256: String,
    pub size: u64,
    pub world: World,
    pub uploaded_at: String,
    pub source: Option<Source>,
    /// What `rollback` would activate.
    pub previous_version: Option<u64>,
    pub versions: usize,
    /// Patterns of the routes that point at this handler.
    pub routes: Vec<String>,
    /// Declared in `waterspout.toml` (such handlers cannot be deleted over the API).
    pub in_manifest: bool,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, SwapError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SwapError::Internal {
            what: "a background task failed",
            source: e.into(),
        })
}

/// The live handlers and routes of an app, and the operations that change
/// them. One change at a time; compiles one at a time.
pub struct Deployer {
    manifest: Manifest,
    components: Components,
    registry: Registry<HandlerVersion>,
    router: ArcSwap<Router>,
    versions: VersionStore,
    control: SwapControl,
    /// Set once the node has joined a cluster (`[cluster] redis`): changes
    /// are recorded there first (see [`cluster`]).
    cluster: std::sync::OnceLock<Arc<cluster::Cluster>>,
}

impl Deployer {
    /// At start: every handler the manifest declares or the store holds,
    /// compiled and installed (see [`restore`]), and the route table. Blocking.
    pub fn restore(
        manifest: Manifest,
        components: Components,
        versions: VersionStore,
    ) -> Result<Self, RestoreError> {
        let registry = Registry::default();
        let routes = restore::restore(&manifest, &components, &registry, &versions)?;
        Ok(Deployer {
            manifest,
            components,
            registry,
            router: ArcSwap::from_pointee(Router::new(routes)),
            versions,
            control: SwapControl::default(),
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// The route table new requests are matched against.
    pub fn router(&self) -> arc_swap::Guard<Arc<Router>> {
        self.router.load()
    }

    /// Every handler by name, each with its active version.
    pub fn registry(&self) -> &Registry<HandlerVersion> {
        &self.registry
    }

    /// The manifest as loaded at start (`--watch` watches its files; the
    /// background workers are started from its `[worker.NAME]` sections).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Validates `bytes` and records them as the next version of `handler`
    /// (creating the handler, with default limits, if it is new); activates
    /// it unless `activate` is false. A new handler's first version is
    /// always activated. A refused component changes nothing.
    pub async fn deploy(
        self: &Arc<Self>,
        handler: &str,
        bytes: Vec<u8>,
        activate: bool,
        source: Source,
    ) -> Result<VersionInfo, SwapError> {
        if !valid_handler_name(handler) {
            return Err(SwapError::BadName(handler.to_owned()));
        }
        let bytes = Arc::new(bytes);
        let (world, prepared, compile_time) = self.compile(handler, bytes.clone()).await?;
        let sha = {
            let bytes = bytes.clone();
            blocking(move || sha256_hex(&bytes)).await?
        };

        let _ops = self.control.ops.lock().await;
        let existing = self.registry.get(handler);
        if let Some(slot) = &existing {
            let active = slot.active().world;
            // HTTP handlers (ours or wasi:http) replace each other freely; a
            // route that upgrades to WebSocket must stay a WebSocket route,
            // and a background worker a worker.
            let kind = |w: World| match w {
                World::Websocket | World::Worker => Some(w),
                _ => None,
            };
            if kind(active) != kind(world) {
                metrics_refused(handler);
                tracing::warn!(
                    handler,
                    "component refused: it implements the {} world, the handler is {}",
                    world.as_str(),
                    active.as_str()
                );
                return Err(SwapError::WorldChange {
                    handler: handler.to_owned(),
                    active,
                    uploaded: world,
                });
            }
        }
        let activate = activate || existing.is_none();
        let meta = {
            let (app, bytes, name, sha) = (self.clone(), bytes.clone(), handler.to_owned(), sha.clone());
            blocking(move || app.versions.record_version(&name, &bytes, &sha, world, source)).await??
        };
        tracing::info!(handler, version = meta.version, sha256 = %meta.sha256, size = meta.size,
            "recorded a new version ({source:?}, compiled in {:.1} ms)", compile_time.as_secs_f64() * 1e3);
        if activate {
            let published = self
                .publish_activate(handler, &sha, meta.version, Some(&bytes))
                .await?;
            let mut version = HandlerVersion::new(handler, meta.version, sha, bytes.len(), world, prepared);
            version.uploaded_at = meta.uploaded_at_time();
            let from_manifest_file = source == Source::Watch;
            self.activate_locked(Arc::new(version), from_manifest_file)
                .await?;
            self.note_published(published).await;
        }
        Ok(VersionInfo::new(meta, activate, Some(compile_time)))
    }

    /// Makes `version` of `handler` the active one.
    pub async fn activate(self: &Arc<Self>, handler: &str, version: u64) -> Result<VersionInfo, SwapError> {
        let _ops = self.control.ops.lock().await;
        let slot = self
            .registry
            .get(handler)
            .ok_or_else(|| SwapError::UnknownHandler(handler.to_owned()))?;
        let meta = self
            .versions
            .meta(handler, version)
            .ok_or(SwapError::UnknownVersion {
                handler: handler.to_owned(),
                version,
            })?;
        if slot.active().version != version {
            let loaded = self.load_version(&meta).await?;
            let published = self
                .publish_activate(handler, &meta.sha256, version, None)
                .await?;
            self.activate_locked(loaded, false).await?;
            self.note_published(published).await;
        }
        Ok(VersionInfo::new(meta, true, None))
    }

    /// Activates the version that was active before the current one. Repeated
    /// rollbacks walk further back; activating pushes onto that history.
    pub async fn rollback(self: &Arc<Self>, handler: &str) -> Result<VersionInfo, SwapError> {
        let _ops = self.control.ops.lock().await;
        let slot = self
            .registry
            .get(handler)
            .ok_or_else(|| SwapError::UnknownHandler(handler.to_owned()))?;
        let current = slot.active().version;
        let record = self.versions.state().handlers.get(handler).cloned();
        let Some(target) = record.and_then(|r| r.previous.last().copied()) else {
            return Err(SwapError::NothingToRollBackTo {
                handler: handler.to_owned(),
                current,
            });
        };
        let meta = self
            .versions
            .meta(handler, target)
            .ok_or(SwapError::UnknownVersion {
                handler: handler.to_owned(),
                version: target,
            })?;
        let version = self.load_version(&meta).await?;
        let published = self.publish_activate(handler, &meta.sha256, target, None).await?;
        let (app, name) = (self.clone(), handler.to_owned());
        blocking(move || {
            app.versions.update(|s| {
                let record = s.handlers.get_mut(&name).expect("checked above");
                record.previous.pop();
                record.active = target;
                Ok::<_, SwapError>(())
            })
        })
        .await??;
        self.swap_in(version);
        self.note_published(published).await;
        Ok(VersionInfo::new(meta, true, None))
    }

    /// Deletes a version that is not active (its bytes and metadata).
    pub async fn delete_version(self: &Arc<Self>, handler: &str, version: u64) -> Result<(), SwapError> {
        let _ops = self.control.ops.lock().await;
        let slot = self
            .registry
            .get(handler)
            .ok_or_else(|| SwapError::UnknownHandler(handler.to_owned()))?;
        if self.versions.meta(handler, version).is_none() {
            return Err(SwapError::UnknownVersion {
                handler: handler.to_owned(),
                version,
            });
        }
        if slot.active().version == version {
            return Err(SwapError::VersionActive {
                handler: handler.to_owned(),
                version,
            });
        }
        let (app, name) = (self.clone(), handler.to_owned());
        blocking(move || {
            app.versions.update(|s| {
                if let Some(record) = s.handlers.get_mut(&name) {
                    record.previous.retain(|&v| v != version);
                }
                Ok::<_, SwapError>(())
            })?;
            app.versions.forget_version(&name, version)?;
            Ok::<_, SwapError>(())
        })
        .await??;
        let mut recent = self.control.recent.lock().expect("recent lock");
        if recent.get(handler).is_some_and(|v| v.version == version) {
            recent.remove(handler);
        }
        tracing::info!(handler, version, "deleted a version");
        Ok(())
    }

    /// Deletes a handler created over the API, with all its versions. Refused
    /// while a route points at it, and for handlers the manifest declares.
    pub async fn delete_handler(self: &Arc<Self>, handler: &str) -> Result<(), SwapError> {
        let _ops = self.control.ops.lock().await;
        if self.registry.get(handler).is_none() {
            return Err(SwapError::UnknownHandler(handler.to_owned()));
        }
        if self.manifest.handler(handler).is_some() {
            return Err(SwapError::DeclaredInManifest {
                handler: handler.to_owned(),
                file: self.manifest.file.clone(),
            });
        }
        let routed = self.routes_of(handler);
        if !routed.is_empty() {
            return Err(SwapError::StillRouted {
                handler: handler.to_owned(),
                routes: routed,
            });
        }
        let published = self.publish(cluster::Change::Delete { handler }).await?;
        self.delete_handler_locked(handler).await?;
        self.note_published(published).await;
        Ok(())
    }

    /// Removes a handler and its versions from this node. Called with the
    /// ops lock held.
    async fn delete_handler_locked(self: &Arc<Self>, handler: &str) -> Result<(), SwapError> {
        let (app, name) = (self.clone(), handler.to_owned());
        blocking(move || {
            app.versions.update(|s| {
                s.handlers.remove(&name);
                Ok::<_, SwapError>(())
            })?;
            app.versions.forget_handler(&name)?;
            Ok::<_, SwapError>(())
        })
        .await??;
        self.registry.remove(handler);
        self.control.recent.lock().expect("recent lock").remove(handler);
        tracing::info!(handler, "deleted the handler");
        Ok(())
    }

    /// Replaces the route table, checked as the manifest's is. Saved in the
    /// store, where it wins over the manifest's routes from then on.
    pub async fn replace_routes(self: &Arc<Self>, docs: Vec<RouteDoc>) -> Result<(), SwapError> {
        let _ops = self.control.ops.lock().await;
        let names = self.registry.names();
        routes_from_docs(&docs, &names).map_err(SwapError::Routes)?;
        let published = self.publish(cluster::Change::Routes(&docs)).await?;
        self.replace_routes_locked(docs).await?;
        self.note_published(published).await;
        Ok(())
    }

    /// Saves and swaps in a route table. Called with the ops lock held.
    async fn replace_routes_locked(self: &Arc<Self>, docs: Vec<RouteDoc>) -> Result<(), SwapError> {
        let names = self.registry.names();
        let routes = routes_from_docs(&docs, &names).map_err(SwapError::Routes)?;
        let app = self.clone();
        let count = docs.len();
        blocking(move || {
            app.versions.update(|s| {
                s.routes = Some(docs);
                Ok::<_, SwapError>(())
            })
        })
        .await??;
        self.router.store(Arc::new(Router::new(routes)));
        tracing::info!("route table replaced ({count} routes)");
        Ok(())
    }

    /// The route table as the admin API spells it.
    pub fn route_docs(&self) -> Vec<RouteDoc> {
        self.router
            .load()
            .routes()
            .iter()
            .map(|r| RouteDoc {
                pattern: r.pattern.clone(),
                handler: r.handler.clone(),
                name: r.name.clone(),
                settings: r
                    .settings
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
            })
            .collect()
    }

    /// Every handler, by name.
    pub fn handler_infos(&self) -> Vec<HandlerInfo> {
        let state = self.versions.state();
        self.registry
            .names()
            .into_iter()
            .filter_map(|name| {
                let active = self.registry.get(&name)?.active();
                let meta = self.versions.meta(&name, active.version);
                let record = state.handlers.get(&name);
                Some(HandlerInfo {
                    active_version: active.version,
                    sha256: active.sha256.clone(),
                    size: active.size as u64,
                    world: active.world,
                    uploaded_at: rfc3339(active.uploaded_at),
                    source: meta.map(|m| m.source),
                    previous_version: record.and_then(|r| r.previous.last().copied()),
                    versions: self.versions.versions(&name).len(),
                    routes: self.routes_of(&name),
                    in_manifest: self.manifest.handler(&name).is_some(),
                    name,
                })
            })
            .collect()
    }

    /// One handler's versions, oldest first.
    pub fn version_infos(&self, handler: &str) -> Result<Vec<VersionInfo>, SwapError> {
        let slot = self
            .registry
            .get(handler)
            .ok_or_else(|| SwapError::UnknownHandler(handler.to_owned()))?;
        let active = slot.active().version;
        Ok(self
            .versions
            .versions(handler)
            .into_iter()
            .map(|m| {
                let is_active = m.version == active;
                VersionInfo::new(m, is_active, None)
            })
            .collect())
    }

    fn routes_of(&self, handler: &str) -> Vec<String> {
        self.router
            .load()
            .routes()
            .iter()
            .filter(|r| r.handler == handler)
            .map(|r| r.pattern.clone())
            .collect()
    }

    /// Validates and compiles off the async runtime, one compile at a time.
    async fn compile(
        self: &Arc<Self>,
        handler: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(World, Prepared, Duration), SwapError> {
        let _permit = self
            .control
            .compile
            .acquire()
            .await
            .map_err(|e| SwapError::Internal {
                what: "the compile queue is closed",
                source: e.into(),
            })?;
        let start = Instant::now();
        let app = self.clone();
        let name = handler.to_owned();
        let result = blocking(move || app.components.prepare_logged(&name, &bytes)).await?;
        let elapsed = start.elapsed();
        crate::metrics::compiled(handler, elapsed, result.is_ok());
        match result {
            Ok((world, prepared)) => Ok((world, prepared, elapsed)),
            Err(e) => {
                tracing::warn!(handler, "component refused: {e}");
                Err(e.into())
            }
        }
    }

    /// A stored version, compiled (the compile cache makes this quick) or
    /// taken from the version last swapped out.
    async fn load_version(self: &Arc<Self>, meta: &VersionMeta) -> Result<Arc<HandlerVersion>, SwapError> {
        if let Some(v) = self
            .control
            .recent
            .lock()
            .expect("recent lock")
            .get(&meta.handler)
            && v.version == meta.version
        {
            return Ok(v.clone());
        }
        let (app, name, number) = (self.clone(), meta.handler.clone(), meta.version);
        let bytes = Arc::new(blocking(move || app.versions.read_version(&name, number)).await??);
        let (world, prepared, _) = self.compile(&meta.handler, bytes.clone()).await?;
        let mut version = HandlerVersion::new(
            &meta.handler,
            meta.version,
            meta.sha256.clone(),
            bytes.len(),
            world,
            prepared,
        );
        version.uploaded_at = meta.uploaded_at_time();
        Ok(Arc::new(version))
    }

    /// Saves `version` as active in the store, then swaps it in. Called with
    /// the ops lock held.
    async fn activate_locked(
        self: &Arc<Self>,
        version: Arc<HandlerVersion>,
        from_manifest_file: bool,
    ) -> Result<(), SwapError> {
        let (app, name, number, sha) = (
            self.clone(),
            version.name.to_string(),
            version.version,
            version.sha256.clone(),
        );
        blocking(move || {
            app.versions.update(|s| {
                let record = s.handlers.entry(name).or_insert_with(|| HandlerRecord {
                    active: number,
                    previous: Vec::new(),
                    manifest_sha256: None,
                });
                set_active(record, number);
                if from_manifest_file {
                    // So a restart does not take the same file for a new deploy.
                    record.manifest_sha256 = Some(sha);
                }
                Ok::<_, SwapError>(())
            })
        })
        .await??;
        self.swap_in(version);
        Ok(())
    }

    /// The atomic part: new requests get `version` from now on.
    fn swap_in(&self, version: Arc<HandlerVersion>) {
        let name = version.name.to_string();
        let number = version.version;
        version.idle.reopen();
        let previous = match self.registry.get(&name) {
            Some(slot) => {
                let old = slot.swap(version);
                old.idle.retire();
                let was = old.version;
                self.control
                    .recent
                    .lock()
                    .expect("recent lock")
                    .insert(name.clone(), old);
                Some(was)
            }
            None => {
                self.registry.install(&name, HandlerLimits::default(), version);
                None
            }
        };
        crate::metrics::swapped(&name, number);
        match previous {
            Some(was) => tracing::info!(handler = %name, "version {number} is active (was {was})"),
            None => tracing::info!(handler = %name, "new handler: version {number} is active"),
        }
    }
}

fn metrics_refused(handler: &str) {
    crate::metrics::compiled(handler, Duration::ZERO, false);
}

/// Activating `version` pushes the current one onto the rollback history
/// (each version at most once in it).
fn set_active(record: &mut HandlerRecord, version: u64) {
    if record.active != version {
        record.previous.retain(|&v| v != version);
        let current = record.active;
        record.previous.retain(|&v| v != current);
        record.previous.push(current);
        record.active = version;
    }
}

/// Checks and compiles a route table given over the API (or saved in the
/// store) the way the manifest's is checked.
pub fn routes_from_docs(docs: &[RouteDoc], handlers: &[String]) -> Result<Vec<Route>, RouteTableError> {
    if docs.is_empty() {
        return Err(RouteTableError(
            "it is empty, so nothing would be served; send at least one route".into(),
        ));
    }
    let known: Vec<&str> = handlers.iter().map(String::as_str).collect();
    docs.iter()
        .enumerate()
        .map(|(i, doc)| {
            check_route(&doc.pattern, &doc.handler, &known)
                .map_err(|(_, m)| RouteTableError(format!("route {i}: {m}")))?;
            let settings = doc
                .settings
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), value)
                })
                .collect();
            Route::new(&doc.pattern, doc.handler.clone(), doc.name.clone(), settings).map_err(|e| {
                RouteTableError(format!("route {i}: invalid route pattern {:?}: {e}", doc.pattern))
            })
        })
        .collect()
}
