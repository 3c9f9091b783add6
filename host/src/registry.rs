//! Handlers by name, each with its active version behind an atomic pointer:
//! a request takes the version that is active when it starts and keeps it,
//! so swapping never disturbs requests already running.
//!
//! The registry does not know what a version holds (the runtime's compiled
//! component); it only keeps, swaps and hands out `Arc<V>`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, watch};

use crate::manifest::HandlerLimits;

/// Which contract a component implements, told by its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// `waterspout:handler/handler`: a Tornado RequestHandler.
    Handler,
    /// `waterspout:handler/websocket`: a Tornado WebSocketHandler.
    Websocket,
    /// `wasi:http/proxy`: a standard wasi:http 0.2 component, served unchanged.
    WasiHttp,
    /// `wasi:http/service`: a standard wasi:http 0.3 (WASI p3) component,
    /// served unchanged.
    WasiHttp3,
    /// `waterspout:handler/worker`: a background worker (`[worker.NAME]`),
    /// never routed.
    Worker,
}

impl World {
    pub fn as_str(self) -> &'static str {
        match self {
            World::Handler => "handler",
            World::Websocket => "websocket",
            World::WasiHttp => "wasi-http",
            World::WasiHttp3 => "wasi-http3",
            World::Worker => "worker",
        }
    }
}

/// The lowercase hex SHA-256 of `bytes`: how versions are identified.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A handler: its limits, its concurrency cap, and the active version.
pub struct HandlerSlot<V> {
    pub name: Arc<str>,
    pub limits: HandlerLimits,
    /// Caps live instances of this handler (`max_instances`).
    pub permits: Arc<Semaphore>,
    active: ArcSwap<V>,
    /// Ticks on every swap (background workers watch it to change versions).
    swapped: watch::Sender<()>,
}

impl<V> HandlerSlot<V> {
    /// The version a new request should run on.
    pub fn active(&self) -> Arc<V> {
        self.active.load_full()
    }

    /// Makes `version` the one new requests get; returns the previous one.
    pub fn swap(&self, version: Arc<V>) -> Arc<V> {
        let old = self.active.swap(version);
        self.swapped.send_modify(|_| {});
        old
    }

    /// A receiver that sees a change after every later [`HandlerSlot::swap`].
    pub fn swaps(&self) -> watch::Receiver<()> {
        self.swapped.subscribe()
    }
}

/// Every handler of the app.
pub struct Registry<V> {
    slots: RwLock<HashMap<String, Arc<HandlerSlot<V>>>>,
}

impl<V> Default for Registry<V> {
    fn default() -> Self {
        Registry {
            slots: RwLock::new(HashMap::new()),
        }
    }
}

impl<V> Registry<V> {
    pub fn get(&self, name: &str) -> Option<Arc<HandlerSlot<V>>> {
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

    /// Removes a handler (routes must no longer point at it).
    pub fn remove(&self, name: &str) -> Option<Arc<HandlerSlot<V>>> {
        self.slots.write().expect("registry lock").remove(name)
    }

    /// Adds a handler with its first active version, or activates `version`
    /// on an existing one. Returns the version it replaced.
    pub fn install(&self, name: &str, limits: HandlerLimits, version: Arc<V>) -> Option<Arc<V>> {
        let mut slots = self.slots.write().expect("registry lock");
        if let Some(slot) = slots.get(name) {
            return Some(slot.swap(version));
        }
        let slot = HandlerSlot {
            name: name.into(),
            permits: Arc::new(Semaphore::new(limits.max_instances as usize)),
            limits,
            active: ArcSwap::new(version),
            swapped: watch::channel(()).0,
        };
        slots.insert(name.to_owned(), Arc::new(slot));
        None
    }
}
