//! Components: validation, the world a component implements (told by its
//! exports), compiling for the engine that takes it and linking against that
//! engine's linker, built from the capability list,
//! and the compiled, linked result ready to instantiate.

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::capabilities::bindings::{WebsocketPre, WorkerPre};
use crate::metrics::VersionMetrics;
use crate::registry::{World, sha256_hex};
use crate::runtime::idle::IdleInstances;
use crate::runtime::{HandlerPre, HostState, WasmEngine};

const HANDLER_EXPORT: &str = "waterspout:handler/request-handler@0.1.0";
const WEBSOCKET_EXPORT: &str = "waterspout:handler/websocket-handler@0.1.0";
const WORKER_EXPORT: &str = "waterspout:handler/background-worker@0.1.0";
/// Any 0.2.x version of wasi:http's handler export.
const WASI_HTTP_EXPORT: &str = "wasi:http/incoming-handler@0.2";
/// Any 0.3.x version of wasi:http's handler export (WASI p3 `wasi:http/service`).
const WASI_HTTP3_EXPORT: &str = "wasi:http/handler@0.3";

/// From this size on a component's compile is announced in the log before
/// it starts (an interpreter's runtime: Python, JavaScript).
const LARGE_COMPONENT: usize = 4 << 20;

/// A compiled, linked component ready to instantiate.
pub enum Prepared {
    Handler(HandlerPre),
    Websocket(WebsocketPre<HostState>),
    WasiHttp(ProxyPre<HostState>),
    WasiHttp3(ServicePre<HostState>),
    Worker(WorkerPre<HostState>),
}

impl Prepared {
    /// The engine the component was compiled for: its stores are made
    /// there.
    pub fn engine(&self) -> &Engine {
        match self {
            Prepared::Handler(pre) => pre.engine(),
            Prepared::Websocket(pre) => pre.engine(),
            Prepared::WasiHttp(pre) => pre.engine(),
            Prepared::WasiHttp3(pre) => pre.engine(),
            Prepared::Worker(pre) => pre.engine(),
        }
    }
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
    /// Instances waiting for their next request (`reuse = N`).
    pub idle: IdleInstances,
}

impl HandlerVersion {
    /// Version `version` of `name`, from a component [`Components::prepare`]d
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
            idle: IdleInstances::default(),
        }
    }
}

/// A boxed underlying error, kept as the `source` of ours.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

fn source(error: wasmtime::Error) -> Source {
    anyhow::Error::from(error).into()
}

/// Why a component was refused. The message names what is wrong; the
/// underlying wasmtime error is its source.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("not a WebAssembly component: missing the \\0asm magic number")]
    NotWasm,
    #[error("not a WebAssembly component")]
    Invalid(#[source] Source),
    #[error(
        "this is precompiled native code (a serialized wasmtime artifact, .cwasm); only WebAssembly components (.wasm) are accepted, and the server compiles them itself"
    )]
    Precompiled,
    #[error(
        "this is a core WebAssembly module, not a component, and it carries no component type to make one from (build it with wit-bindgen for wasm32-wasip2 or wasm32-unknown-unknown, or run `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("this core WebAssembly module carries a component type, but it cannot be made a component")]
    Componentize(#[source] Source),
    #[error(
        "the component exports none of the worlds served here (expected an export of `{HANDLER_EXPORT}`, `{WEBSOCKET_EXPORT}`, `{WORKER_EXPORT}`, `{WASI_HTTP_EXPORT}.x` or `{WASI_HTTP3_EXPORT}.x`; found: {0})"
    )]
    UnknownWorld(String),
    #[error("the component's imports cannot be satisfied")]
    Link(#[source] Source),
    #[error(
        "this component uses the component model's async ABI (WASI 0.3), and the engine for it cannot be set up: {0}"
    )]
    ConcurrentEngine(String),
}

/// Makes a component of a core module that carries its component type: a
/// guest built with wit-bindgen for `wasm32-unknown-unknown` (the Rust SDK's
/// lean build), whose only imports are the WIT interfaces it calls: no WASI
/// from a standard library, so fewer imports to wire at every instantiation.
/// This is what `wasm-tools component new` does, by the same crate. A core
/// module without a component type (a `wasm32-wasip1` command, a plain
/// module) is refused, named as such.
fn componentize(module: &[u8]) -> Result<Vec<u8>, ComponentError> {
    let carries_type = wasmparser::Parser::new(0).parse_all(module).any(|payload| {
        matches!(payload, Ok(wasmparser::Payload::CustomSection(section))
            if section.name().starts_with("component-type"))
    });
    if !carries_type {
        return Err(ComponentError::CoreModule);
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| ComponentError::Componentize(e.into()))
}

/// The engines and their linkers, built from the capability list.
pub struct Components {
    wasm: WasmEngine,
    /// The main engine's linker: every capability but WASI 0.3.
    linker: Linker<HostState>,
    /// The concurrent engine's linker (WASI 0.3 added), built with it.
    concurrent: OnceLock<Result<Linker<HostState>, String>>,
}

impl Components {
    /// Builds the main engine's linker from the capability list.
    pub fn new(wasm: &WasmEngine) -> wasmtime::Result<Self> {
        let mut linker = Linker::new(&wasm.engine);
        crate::capabilities::add_to_linker(&mut linker)?;
        Ok(Components {
            wasm: wasm.clone(),
            linker,
            concurrent: OnceLock::new(),
        })
    }

    /// The concurrent engine's linker, built (with the engine) on first use.
    fn concurrent_linker(&self) -> Result<&Linker<HostState>, ComponentError> {
        self.concurrent
            .get_or_init(|| {
                let engine = self.wasm.concurrent()?;
                let mut linker = Linker::new(engine);
                crate::capabilities::add_to_linker(&mut linker)
                    .and_then(|()| crate::capabilities::wasi_p3::add_to_linker(&mut linker))
                    .map_err(|e| format!("{e:#}"))?;
                Ok(linker)
            })
            .as_ref()
            .map_err(|e| ComponentError::ConcurrentEngine(e.clone()))
    }

    /// Compiles (or loads from the compile cache) and links `bytes`. Blocking:
    /// call it off the async runtime.
    ///
    /// A component is compiled for the main engine, which has wasmtime's
    /// concurrency support off; one it refuses (the async ABI of a WASI 0.3
    /// component) is compiled for the concurrent engine, whose verdict
    /// stands.
    pub fn prepare(&self, bytes: &[u8]) -> Result<(World, Prepared), ComponentError> {
        // Native code from a client is never loaded: it would bypass the
        // sandbox's validation. Name it so the sender knows what to send.
        if Engine::detect_precompiled(bytes).is_some() || bytes.starts_with(b"\x7fELF") {
            return Err(ComponentError::Precompiled);
        }
        let componentized;
        let bytes = if bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0] {
            componentized = componentize(bytes)?;
            &componentized[..]
        } else {
            bytes
        };
        if bytes.len() < 4 || bytes[..4] != *b"\0asm" {
            return Err(ComponentError::NotWasm);
        }
        let (component, linker) = match Component::from_binary(&self.wasm.engine, bytes) {
            Ok(component) => (component, &self.linker),
            Err(_) => {
                let linker = self.concurrent_linker()?;
                let component = Component::from_binary(linker.engine(), bytes)
                    .map_err(|e| ComponentError::Invalid(source(e)))?;
                (component, linker)
            }
        };
        let exports: Vec<String> = component
            .component_type()
            .exports(component.engine())
            .map(|(name, _)| name.to_owned())
            .collect();
        let link = |e: wasmtime::Error| ComponentError::Link(source(e));
        let pre = |_| linker.instantiate_pre(&component).map_err(link);
        if exports.iter().any(|e| e == HANDLER_EXPORT) {
            let pre = HandlerPre::new(pre(())?).map_err(link)?;
            Ok((World::Handler, Prepared::Handler(pre)))
        } else if exports.iter().any(|e| e == WEBSOCKET_EXPORT) {
            let pre = WebsocketPre::new(pre(())?).map_err(link)?;
            Ok((World::Websocket, Prepared::Websocket(pre)))
        } else if exports.iter().any(|e| e == WORKER_EXPORT) {
            let pre = WorkerPre::new(pre(())?).map_err(link)?;
            Ok((World::Worker, Prepared::Worker(pre)))
        } else if exports.iter().any(|e| e.starts_with(WASI_HTTP_EXPORT)) {
            let pre = ProxyPre::new(pre(())?).map_err(link)?;
            Ok((World::WasiHttp, Prepared::WasiHttp(pre)))
        } else if exports.iter().any(|e| e.starts_with(WASI_HTTP3_EXPORT)) {
            let pre = ServicePre::new(pre(())?).map_err(link)?;
            Ok((World::WasiHttp3, Prepared::WasiHttp3(pre)))
        } else {
            Err(ComponentError::UnknownWorld(if exports.is_empty() {
                "no exports".into()
            } else {
                exports.join(", ")
            }))
        }
    }

    /// [`Components::prepare`] for handler `handler`, said in the log: a
    /// large component (a Python or JavaScript runtime, ~10–20 MB) takes tens
    /// of seconds to compile the first time, so the log says which handler,
    /// how large, that it is compiling, and how long it took. The compile
    /// cache makes the next start quick.
    pub fn prepare_logged(&self, handler: &str, bytes: &[u8]) -> Result<(World, Prepared), ComponentError> {
        let size = bytes.len();
        let mib = size as f64 / f64::from(1u32 << 20);
        let large = size >= LARGE_COMPONENT;
        if large {
            tracing::info!(
                handler,
                "compiling handler {handler:?} ({mib:.1} MiB); a large component takes a while the first time, then comes from the compile cache"
            );
        }
        let start = std::time::Instant::now();
        let prepared = self.prepare(bytes);
        let secs = start.elapsed().as_secs_f64();
        match &prepared {
            Ok(_) if large || secs >= 1.0 => {
                tracing::info!(
                    handler,
                    "compiled handler {handler:?} ({mib:.1} MiB) in {secs:.1} s"
                );
            }
            Ok(_) => tracing::debug!(
                handler,
                "compiled handler {handler:?} ({mib:.1} MiB) in {secs:.3} s"
            ),
            Err(_) => {}
        }
        prepared
    }

    /// Compiles `bytes` as version `version` of `name` (blocking).
    pub fn build_version(
        &self,
        name: &str,
        version: u64,
        bytes: &[u8],
    ) -> Result<HandlerVersion, ComponentError> {
        let (world, prepared) = self.prepare(bytes)?;
        Ok(HandlerVersion::new(
            name,
            version,
            sha256_hex(bytes),
            bytes.len(),
            world,
            prepared,
        ))
    }
}
