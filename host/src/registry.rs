//! Handlers by name, each with its active version behind an atomic pointer:
//! a request takes the version that is active when it starts and keeps it,
//! so swapping never disturbs requests already running.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::{HandlerPre, HandlerWorld, WebsocketPre, WebsocketWorld};
use crate::manifest::HandlerLimits;
use crate::metrics::VersionMetrics;
use crate::state::HostState;

/// Which contract a component implements, told by its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// `waterspout:handler/handler`: a Tornado RequestHandler.
    Handler,
    /// `waterspout:handler/websocket`: a Tornado WebSocketHandler.
    Websocket,
    /// `wasi:http/proxy`: a standard wasi:http component, served unchanged.
    WasiHttp,
}

impl World {
    pub fn as_str(self) -> &'static str {
        match self {
            World::Handler => "handler",
            World::Websocket => "websocket",
            World::WasiHttp => "wasi-http",
        }
    }
}

const HANDLER_EXPORT: &str = "waterspout:handler/request-handler@0.1.0";
const WEBSOCKET_EXPORT: &str = "waterspout:handler/websocket-handler@0.1.0";
/// Any 0.2.x version of wasi:http's handler export.
const WASI_HTTP_EXPORT: &str = "wasi:http/incoming-handler@0.2";

/// A compiled, linked component ready to instantiate.
pub enum Prepared {
    Handler(HandlerPre<HostState>),
    Websocket(WebsocketPre<HostState>),
    WasiHttp(ProxyPre<HostState>),
}

/// One immutable version of a handler.
pub struct HandlerVersion {
    pub name: Arc<str>,
    pub version: u64,
    pub sha256: String,
    pub size: usize,
    pub world: World,
    pub uploaded_at: SystemTime,
    pub prepared: Prepared,
    /// This version's Prometheus series.
    pub metrics: VersionMetrics,
}

impl HandlerVersion {
    /// Version `version` of `name`, from a component [`Linkers::prepare`]d
    /// out of bytes whose SHA-256 and size are given (hashing a large
    /// component once is enough).
    pub fn new(
        name: &str,
        version: u64,
        sha256: String,
        size: usize,
        world: World,
        prepared: Prepared,
    ) -> Self {
        HandlerVersion {
            name: name.into(),
            version,
            sha256,
            size,
            world,
            uploaded_at: SystemTime::now(),
            prepared,
            metrics: VersionMetrics::new(name, version),
        }
    }
}

/// The lowercase hex SHA-256 of `bytes`: how versions are identified.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A handler: its limits, its concurrency cap, and the active version.
pub struct HandlerSlot {
    pub name: Arc<str>,
    pub limits: HandlerLimits,
    /// Caps live instances of this handler (`max_instances`).
    pub permits: Arc<Semaphore>,
    active: ArcSwap<HandlerVersion>,
}

impl HandlerSlot {
    /// The version a new request should run on.
    pub fn active(&self) -> Arc<HandlerVersion> {
        self.active.load_full()
    }

    /// Makes `version` the one new requests get; returns the previous one.
    pub fn swap(&self, version: Arc<HandlerVersion>) -> Arc<HandlerVersion> {
        self.active.swap(version)
    }
}

/// Why a component was refused. The message names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("not a WebAssembly component: {0}")]
    Invalid(String),
    #[error(
        "this is precompiled native code (a serialized wasmtime artifact, .cwasm); only WebAssembly components (.wasm) are accepted, and the server compiles them itself"
    )]
    Precompiled,
    #[error(
        "this is a core WebAssembly module, not a component (build for wasm32-wasip2 or run `wasm-tools component new`)"
    )]
    CoreModule,
    #[error(
        "the component exports none of the worlds served here (expected an export of `{HANDLER_EXPORT}`, `{WEBSOCKET_EXPORT}` or `{WASI_HTTP_EXPORT}.x`; found: {0})"
    )]
    UnknownWorld(String),
    #[error("the component's imports cannot be satisfied: {0}")]
    Link(String),
}

/// The engine and one linker per world.
pub struct Linkers {
    pub engine: Engine,
    handler: Linker<HostState>,
    websocket: Linker<HostState>,
    wasi_http: Linker<HostState>,
}

impl Linkers {
    pub fn new(engine: Engine) -> anyhow::Result<Self> {
        let mut handler = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut handler)?;
        HandlerWorld::add_to_linker::<HostState, HasSelf<HostState>>(&mut handler, |s| s)?;
        let mut websocket = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut websocket)?;
        WebsocketWorld::add_to_linker::<HostState, HasSelf<HostState>>(&mut websocket, |s| s)?;
        let mut wasi_http = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut wasi_http)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut wasi_http)?;
        Ok(Linkers {
            engine,
            handler,
            websocket,
            wasi_http,
        })
    }

    /// Compiles (or loads from the compile cache) and links `bytes`. Blocking:
    /// call it off the async runtime.
    pub fn prepare(&self, bytes: &[u8]) -> Result<(World, Prepared), ComponentError> {
        // Native code from a client is never loaded: it would bypass the
        // sandbox's validation. Name it so the sender knows what to send.
        if Engine::detect_precompiled(bytes).is_some() || bytes.starts_with(b"\x7fELF") {
            return Err(ComponentError::Precompiled);
        }
        if bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0] {
            return Err(ComponentError::CoreModule);
        }
        if bytes.len() < 4 || bytes[..4] != *b"\0asm" {
            return Err(ComponentError::Invalid("missing the \\0asm magic number".into()));
        }
        let component = Component::from_binary(&self.engine, bytes)
            .map_err(|e| ComponentError::Invalid(format!("{e:#}")))?;
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let link = |e: wasmtime::Error| ComponentError::Link(format!("{e:#}"));
        if exports.iter().any(|e| e == HANDLER_EXPORT) {
            let pre = self.handler.instantiate_pre(&component).map_err(link)?;
            let pre = HandlerPre::new(pre).map_err(link)?;
            Ok((World::Handler, Prepared::Handler(pre)))
        } else if exports.iter().any(|e| e == WEBSOCKET_EXPORT) {
            let pre = self.websocket.instantiate_pre(&component).map_err(link)?;
            let pre = WebsocketPre::new(pre).map_err(link)?;
            Ok((World::Websocket, Prepared::Websocket(pre)))
        } else if exports.iter().any(|e| e.starts_with(WASI_HTTP_EXPORT)) {
            let pre = self.wasi_http.instantiate_pre(&component).map_err(link)?;
            let pre = ProxyPre::new(pre).map_err(link)?;
            Ok((World::WasiHttp, Prepared::WasiHttp(pre)))
        } else {
            Err(ComponentError::UnknownWorld(if exports.is_empty() {
                "no exports".into()
            } else {
                exports.join(", ")
            }))
        }
    }
}

/// Every handler of the app.
pub struct Registry {
    pub linkers: Linkers,
    slots: RwLock<HashMap<String, Arc<HandlerSlot>>>,
}

impl Registry {
    pub fn new(linkers: Linkers) -> Self {
        Registry {
            linkers,
            slots: RwLock::new(HashMap::new()),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<HandlerSlot>> {
        self.slots.read().expect("registry lock").get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .slots
            .read()
            .expect("registry lock")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Compiles `bytes` as version `version` of `name` (blocking).
    pub fn build_version(
        &self,
        name: &str,
        version: u64,
        bytes: &[u8],
    ) -> Result<HandlerVersion, ComponentError> {
        let (world, prepared) = self.linkers.prepare(bytes)?;
        Ok(HandlerVersion::new(
            name,
            version,
            sha256_hex(bytes),
            bytes.len(),
            world,
            prepared,
        ))
    }

    /// Removes a handler (routes must no longer point at it).
    pub fn remove(&self, name: &str) -> Option<Arc<HandlerSlot>> {
        self.slots.write().expect("registry lock").remove(name)
    }

    /// Adds a handler with its first active version, or activates `version`
    /// on an existing one. Returns the version it replaced.
    pub fn install(
        &self,
        name: &str,
        limits: HandlerLimits,
        version: Arc<HandlerVersion>,
    ) -> Option<Arc<HandlerVersion>> {
        let mut slots = self.slots.write().expect("registry lock");
        if let Some(slot) = slots.get(name) {
            return Some(slot.swap(version));
        }
        let slot = HandlerSlot {
            name: name.into(),
            permits: Arc::new(Semaphore::new(limits.max_instances as usize)),
            limits,
            active: ArcSwap::new(version),
        };
        slots.insert(name.to_owned(), Arc::new(slot));
        None
    }
}
