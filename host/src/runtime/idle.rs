//! Instance reuse (`reuse = N` on a handler of the handler world or a
//! wasi:http 0.3 component): instances of one handler
//! version that finished a request cleanly wait here for the next one, so a
//! runtime that is slow to start (Python, JavaScript: ~1 ms) starts once per
//! N requests. A fault never returns an instance; a hot swap retires a
//! version's idle instances at once, and those still serving after it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::Store;

use wasmtime_wasi_http::p3::bindings::Service;

use crate::metrics::InstanceGuard;
use crate::runtime::shared::Lanes;
use crate::runtime::{HandlerInstance, HostState};

/// Idle instances kept per version at most: enough for every request a
/// worker thread interleaves; each one holds a slot of the engine's pool.
const MAX_IDLE: usize = 64;

/// A live instance's exports, by world: what a reused instance is called through.
#[allow(
    clippy::large_enum_variant,
    reason = "held beside a Store in a short list; boxing would allocate on every recycle"
)]
pub enum Warm {
    Handler(HandlerInstance),
    /// A wasi:http 0.3 (p3) `service`.
    WasiHttp3(Service),
}

impl From<HandlerInstance> for Warm {
    fn from(instance: HandlerInstance) -> Self {
        Warm::Handler(instance)
    }
}

impl From<Service> for Warm {
    fn from(instance: Service) -> Self {
        Warm::WasiHttp3(instance)
    }
}

/// An instance between two requests.
pub(super) struct Idle {
    pub(super) store: Store<HostState>,
    pub(super) instance: Warm,
    /// Requests it has served.
    pub(super) served: u32,
    pub(super) live: InstanceGuard,
}

/// The idle instances of one handler version.
#[derive(Default)]
pub struct IdleInstances {
    idle: Mutex<Vec<Idle>>,
    retired: AtomicBool,
    /// Shared instances taking requests (`concurrency` > 1).
    pub(super) lanes: Lanes,
}

impl IdleInstances {
    pub(super) fn take(&self) -> Option<Idle> {
        self.idle.lock().expect("idle lock").pop()
    }

    /// Keeps `idle` for the next request, unless the version was retired or
    /// enough are waiting already (then it is dropped).
    pub(super) fn put(&self, idle: Idle) {
        if self.retired.load(Ordering::Acquire) {
            return;
        }
        let mut waiting = self.idle.lock().expect("idle lock");
        if waiting.len() < MAX_IDLE {
            waiting.push(idle);
        }
    }

    /// The version is active (again, after a rollback): keep instances.
    pub fn reopen(&self) {
        self.retired.store(false, Ordering::Release);
        self.lanes.reopen();
    }

    /// The version is no longer active: its idle instances go now, and those
    /// serving a request go when it ends.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.idle.lock().expect("idle lock").clear();
        self.lanes.retire();
    }
}
