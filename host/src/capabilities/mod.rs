//! Capabilities: one module per WIT interface the host implements, each
//! owning its per-instance context and exposing `add_to_linker(linker, getter)`
//! in wasmtime-wasi's "view" style.
//!
//! **Rule:** a capability knows its interface, its context and the
//! app-wide backends in `services/`; never the runtime, the handler drivers,
//! the server or `App`. Adding a host interface = one module here, its
//! context as one field of [`Ctx`], and one line in [`add_to_linker`].

pub mod bindings;
pub mod grants;
pub mod groups;
pub mod http_client;
pub mod kv;
pub mod log;
pub mod outbound_http;
pub mod pubsub;
pub mod queue;
pub mod request;
pub mod response;
pub mod timers;
pub mod waiting;
pub mod wasi;
pub mod wasi_p3;
pub mod web;
pub mod websocket_connection;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::WasiHttpView;

use self::log::Tag;

/// Host resources (streams, pollables, wasi:http fields, requests…) one
/// instance may hold at once. wasmtime's default (1,000,000) would let one
/// guest that never drops its handles hold hundreds of MiB of host memory.
pub const MAX_RESOURCES: usize = 10_000;

/// What one guest instance may touch: the context of every capability.
pub struct Ctx {
    /// Who the instance is (handler, version, request): `log` tags lines with it.
    pub tag: Tag,
    /// The instance's host resources: requests, WASI streams, wasi:http bodies.
    pub table: ResourceTable,
    pub wasi: wasi::Wasi,
    pub outbound_http: outbound_http::OutboundHttp,
    pub response: response::ResponseCtx,
    pub websocket_connection: websocket_connection::ConnectionCtx,
    pub kv: kv::KvCtx,
    pub http_client: http_client::HttpClientCtx,
    pub timers: timers::Timers,
    pub web: web::WebCtx,
    /// The waiting budget and hang-up signal host calls that wait share.
    pub waiting: waiting::Waiting,
    pub pubsub: pubsub::PubsubCtx,
    pub groups: groups::GroupsCtx,
    pub queue: queue::QueueCtx,
}

impl Ctx {
    /// Every capability's default context: nothing granted, no response, no
    /// connection. The handler driver fills in what its kind of guest needs.
    pub fn new(tag: Tag) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Ctx {
            tag,
            table,
            wasi: Default::default(),
            outbound_http: Default::default(),
            response: Default::default(),
            websocket_connection: Default::default(),
            kv: Default::default(),
            http_client: Default::default(),
            timers: Default::default(),
            web: Default::default(),
            waiting: Default::default(),
            pubsub: Default::default(),
            groups: Default::default(),
            queue: Default::default(),
        }
    }
}

/// A store's data that holds a [`Ctx`] (the runtime's per-instance state).
/// WASI and wasi:http find their views through their own traits.
pub trait HasCtx: WasiView + WasiHttpView + Send + 'static {
    fn capabilities(&mut self) -> &mut Ctx;
}

/// The capability list: every host interface, linked once for every
/// component whatever its world (a component that imports an interface its
/// kind of instance does not serve gets an error value or a trap from it).
/// WASI 0.3 ([`wasi_p3`]) is not in it: its host functions need wasmtime's
/// concurrency support, which only the engine of WASI 0.3 components has;
/// that engine's linker adds it.
pub fn add_to_linker<T: HasCtx>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasi::add_to_linker(linker)?;
    outbound_http::add_to_linker(linker)?;
    request::add_to_linker(linker, |t| request::RequestView(&mut t.capabilities().table))?;
    log::add_to_linker(linker, |t| &mut t.capabilities().tag)?;
    response::add_to_linker(linker, |t| &mut t.capabilities().response)?;
    websocket_connection::add_to_linker(linker, |t| &mut t.capabilities().websocket_connection)?;
    kv::add_to_linker(linker, |t| &mut t.capabilities().kv)?;
    timers::add_to_linker(linker, |t| &mut t.capabilities().timers)?;
    web::add_to_linker(linker, |t| {
        let ctx = t.capabilities();
        web::WebView {
            web: &mut ctx.web,
            response: &mut ctx.response,
        }
    })?;
    pubsub::add_to_linker(linker, |t| {
        let Ctx {
            pubsub,
            waiting,
            response,
            ..
        } = t.capabilities();
        let unanswered = response.get().is_some_and(|r| !r.headers_sent());
        pubsub::PubsubView {
            ctx: pubsub,
            waiting,
            unanswered,
        }
    })?;
    groups::add_to_linker(linker, |t| &mut t.capabilities().groups)?;
    queue::add_to_linker(linker, |t| &mut t.capabilities().queue)?;
    http_client::add_to_linker(linker, |t| &mut t.capabilities().http_client)?;
    Ok(())
}
