//! The one place that runs a guest: a permit from the handler's
//! `max_instances`, a fresh `Store` with the memory limiter and the epoch
//! callback, a deadline armed per call, the call itself, and — when it ends
//! badly — the fault told apart (trap, memory limit, timeout, full pool),
//! logged once and counted once, with the status the client gets.
//!
//! The handler drivers (`handlers/`) decide *which* guest calls to make and
//! what to answer; they never build a store or classify a fault themselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Store, UpdateDeadline};

use crate::capabilities::Ctx;
use crate::capabilities::log::Tag;
use crate::capabilities::outbound_http::{OutboundHttp, OutboundPolicy};
use crate::capabilities::pubsub::Parked;
use crate::capabilities::waiting::Waiting;
use crate::metrics::InstanceGuard;
use crate::registry::HandlerSlot;
use crate::runtime::idle::{Idle, Warm};
use crate::runtime::shared::LaneClock;
use crate::runtime::{HandlerVersion, HostState, Running};

/// How a guest run ended, when it did not end well.
#[derive(Debug)]
pub enum Fault {
    /// Every one of the handler's `max_instances` is busy.
    Busy,
    /// No free slot in the engine's instance pool (`--max-instances`).
    PoolFull,
    /// The call ran (or waited) past the handler's time limit.
    Timeout,
    /// The guest grew its memory past `memory_limit_mb` and then trapped.
    MemoryLimit(wasmtime::Error),
    /// The guest trapped.
    Trap(wasmtime::Error),
    /// Not a fault: a pub/sub `wait` parked the request (`park_waits`).
    /// The instance is gone; the HTTP driver waits in the host and runs
    /// the request again.
    Parked(Parked),
}

impl Fault {
    /// What the client gets: the server is busy or the guest too slow (503),
    /// or the guest failed (500). Never the trap's text.
    pub fn status(&self) -> StatusCode {
        match self {
            Fault::Busy | Fault::PoolFull | Fault::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Fault::MemoryLimit(_) | Fault::Trap(_) => StatusCode::INTERNAL_SERVER_ERROR,
            // Only a driver that allows parking gets it, and answers later.
            Fault::Parked(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Whether a guest waits for a free instance or is refused at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Wait for a permit, within the handler's time limit (HTTP requests).
    Wait,
    /// Refuse when none is free (WebSocket handshakes: a connection would
    /// hold the permit for its whole life).
    NoWait,
}

/// The outbound-http capability of a new request: any world may import
/// wasi:http (componentize-js links `fetch` by default), and every guest gets
/// its handler's `allowed_outbound_hosts` (none by default).
fn outbound_http(allowed_hosts: &[String]) -> OutboundHttp {
    OutboundHttp::new(OutboundPolicy::new(allowed_hosts))
}

/// One guest instance's store, under its handler's limits, holding one of
/// the handler's permits and counted as a live instance until dropped.
pub struct Guest {
    store: Store<HostState>,
    version: Arc<HandlerVersion>,
    timeout: Duration,
    memory_limit_mb: u64,
    /// Requests this instance served before the current one (reuse).
    served: u32,
    live: InstanceGuard,
    _permit: OwnedSemaphorePermit,
}

impl Guest {
    /// Takes a permit from `slot` and builds a fresh store for one request
    /// (or connection) of `version`. The driver then gives the capabilities
    /// what its kind of guest needs ([`Guest::ctx`]: its response, its
    /// connection, its outbound policy).
    pub async fn admit(
        slot: &HandlerSlot<HandlerVersion>,
        version: Arc<HandlerVersion>,
        request_id: u64,
        admission: Admission,
    ) -> Result<Guest, Fault> {
        let permit = permit(slot, &version, admission).await?;
        Ok(Guest::fresh(slot, version, request_id, permit))
    }

    /// A fresh store for a guest that holds `permit`.
    pub(super) fn fresh(
        slot: &HandlerSlot<HandlerVersion>,
        version: Arc<HandlerVersion>,
        request_id: u64,
        permit: OwnedSemaphorePermit,
    ) -> Guest {
        let limits = &slot.limits;
        let timeout = Duration::from_millis(limits.timeout_ms);
        let tag = Tag {
            handler: version.name.clone(),
            version: version.version,
            request_id,
        };
        let state = HostState::new(
            tag,
            (limits.memory_limit_mb as usize) << 20,
            Instant::now() + timeout,
        );
        // The engine the component was compiled for (see `engine.rs`).
        let mut store = Store::new(version.prepared.engine(), state);
        configure_store(&mut store);
        store.data_mut().ctx.outbound_http = outbound_http(&limits.allowed_outbound_hosts);
        store.data_mut().ctx.waiting = Waiting::new(limits.wait_timeout());
        Guest {
            store,
            live: version.metrics.instance_started(),
            version,
            timeout,
            memory_limit_mb: limits.memory_limit_mb,
            served: 0,
            _permit: permit,
        }
    }

    /// [`Guest::admit`] for a request of a world whose instances may serve
    /// again (the handler world, wasi:http 0.3): with `reuse` set on the
    /// handler, an idle instance of the version is taken when there is one
    /// (returned beside the guest; `None`: instantiate a fresh one).
    pub async fn admit_reusing(
        slot: &HandlerSlot<HandlerVersion>,
        version: Arc<HandlerVersion>,
        request_id: u64,
    ) -> Result<(Guest, Option<Warm>), Fault> {
        let permit = permit(slot, &version, Admission::Wait).await?;
        if slot.limits.reuse > 1
            && let Some(idle) = version.idle.take()
        {
            let Idle {
                mut store,
                instance,
                served,
                live,
            } = idle;
            store.data_mut().ctx.tag.request_id = request_id;
            store.data_mut().ctx.outbound_http = outbound_http(&slot.limits.allowed_outbound_hosts);
            store.data_mut().ctx.waiting = Waiting::new(slot.limits.wait_timeout());
            let guest = Guest {
                store,
                live,
                version,
                timeout: Duration::from_millis(slot.limits.timeout_ms),
                memory_limit_mb: slot.limits.memory_limit_mb,
                served,
                _permit: permit,
            };
            return Ok((guest, Some(instance)));
        }

        // One permit either way: a fresh instance takes the one waited for.
        Ok((Guest::fresh(slot, version, request_id, permit), None))
    }

    /// The request ended well: `instance` waits for the next request of its
    /// version, unless it has served `reuse` requests or the version was
    /// swapped out (then it is dropped). The per-request contexts are reset;
    /// what the guest keeps in its own memory stays.
    pub fn recycle(mut self, instance: impl Into<Warm>, reuse: u32) {
        let served = self.served + 1;
        if served >= reuse {
            return;
        }
        let data = self.store.data_mut();
        data.ctx.response = Default::default();
        data.ctx.websocket_connection = Default::default();
        data.ctx.outbound_http = Default::default();
        data.ctx.kv = Default::default();
        data.ctx.waiting = Default::default();
        data.ctx.pubsub = Default::default();
        data.ctx.groups = Default::default();
        data.ctx.queue = Default::default();
        data.ctx.http_client = Default::default();
        data.limiter.memory_limit_hit = false;
        let version = self.version.clone();
        version.idle.put(Idle {
            store: self.store,
            instance: instance.into(),
            served,
            live: self.live,
        });
    }

    pub fn store(&mut self) -> &mut Store<HostState> {
        &mut self.store
    }

    /// The capabilities' contexts (the response, the connection…).
    pub fn ctx(&mut self) -> &mut Ctx {
        &mut self.store.data_mut().ctx
    }

    pub fn tag(&self) -> &Tag {
        &self.store.data().ctx.tag
    }

    pub fn version(&self) -> &Arc<HandlerVersion> {
        &self.version
    }

    /// Runs `call` (one guest call, or several that share one time limit)
    /// under a fresh deadline: the epoch deadline bounds CPU time, a
    /// wall-clock timeout bounds waiting in host calls. Time spent in
    /// [`Waiting`] (long polls) moves the deadline and has a budget of its
    /// own (`wait_timeout_ms`), so the wall clock allows both. A fault is
    /// classified, logged and counted here, once; `what` names the call in
    /// the log ("request", "websocket on-message", …).
    pub async fn call<T>(
        &mut self,
        what: &str,
        call: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, Fault> {
        let data = self.store.data_mut();
        data.deadline = Instant::now() + self.timeout;
        data.timed_out = false;
        data.ctx.waiting.reset();
        let wall = self.timeout + data.ctx.waiting.limit();
        self.store.set_epoch_deadline(1);
        let _running = Running::enter();
        let result = tokio::time::timeout(wall, call(&mut self.store)).await;
        self.classify(what, result.map_err(|_elapsed| ()))
    }

    /// [`Guest::call`] for a shared instance (`concurrency` > 1), whose
    /// requests come and go during the call, each with its own deadline
    /// (`clock`): the epoch callback interrupts the guest past the earliest,
    /// and the call is stopped from out here when one passes while the
    /// guest waits (wasmtime#11869: timers inside `run_concurrent` may not
    /// be polled).
    pub(super) async fn call_shared<T>(
        &mut self,
        what: &str,
        clock: &LaneClock,
        call: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, Fault> {
        self.store.data_mut().timed_out = false;
        self.store.set_epoch_deadline(1);
        let _running = Running::enter();
        let result = tokio::select! {
            biased;
            result = call(&mut self.store) => Ok(result),
            () = clock.expired() => Err(()),
        };
        self.classify(what, result)
    }

    /// Runs a background worker's `call` (its whole loop): the time limit
    /// applies per item, as the queue capability's item clock says (set
    /// when `queue.get` hands over an item, cleared while the worker waits
    /// in `get`), to CPU time through the epoch callback and to wall time
    /// through a watchdog. The guest's context must be a worker's
    /// (`QueueCtx::for_worker`).
    pub async fn call_worker<T>(
        &mut self,
        what: &str,
        call: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, Fault> {
        let clock = self
            .ctx()
            .queue
            .clock()
            .cloned()
            .expect("call_worker needs a worker's queue context");
        let data = self.store.data_mut();
        // The item clock decides; this only bounds a clock that is never set.
        data.deadline = Instant::now() + Duration::from_secs(10 * 365 * 86_400);
        data.timed_out = false;
        self.store.set_epoch_deadline(1);
        let _running = Running::enter();
        let watchdog = async {
            loop {
                match clock.deadline() {
                    None => tokio::time::sleep(clock.limit()).await,
                    Some(deadline) if Instant::now() >= deadline => break,
                    Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                }
            }
        };
        let result = tokio::select! {
            result = call(&mut self.store) => Ok(result),
            () = watchdog => Err(()),
        };
        self.classify(what, result)
    }

    /// A call's result, its fault told apart, logged and counted (`Err(())`:
    /// stopped at its wall-clock deadline).
    fn classify<T>(&self, what: &str, result: Result<wasmtime::Result<T>, ()>) -> Result<T, Fault> {
        let fault = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(_)) if self.store.data().timed_out => Fault::Timeout,
            Ok(Err(e)) if e.is::<Parked>() => match e.downcast::<Parked>() {
                Ok(parked) => return Err(Fault::Parked(parked)),
                Err(e) => Fault::Trap(e),
            },
            Ok(Err(e)) if pool_full(&e) => Fault::PoolFull,
            Ok(Err(e)) if self.store.data().limiter.memory_limit_hit => Fault::MemoryLimit(e),
            Ok(Err(e)) => Fault::Trap(e),
            Err(()) => Fault::Timeout,
        };
        self.log(what, &fault);
        Err(fault)
    }

    fn log(&self, what: &str, fault: &Fault) {
        let tag = self.tag();
        let (handler, version, request) = (&*tag.handler, tag.version, tag.request_id);
        match fault {
            Fault::Busy | Fault::Parked(_) => {}
            Fault::PoolFull => tracing::warn!(
                handler,
                version,
                request,
                "no free instance slot in the pool (--max-instances); answering 503"
            ),
            Fault::Timeout => {
                self.version.metrics.timeout();
                tracing::error!(
                    handler,
                    version,
                    request,
                    "{what} exceeded the handler's time limit of {} ms",
                    self.timeout.as_millis()
                );
            }
            Fault::MemoryLimit(trap) => {
                self.version.metrics.trap();
                tracing::error!(
                    handler,
                    version,
                    request,
                    "{what} trapped: memory limit of {} MiB reached; {trap:#}",
                    self.memory_limit_mb
                );
            }
            Fault::Trap(trap) => {
                self.version.metrics.trap();
                tracing::error!(handler, version, request, "{what} trapped: {trap:#}");
            }
        }
    }
}

/// A permit to run one more instance of `slot`. Waiting for one (HTTP)
/// counts against the time limit; the timer is only armed when there is a wait.
async fn permit(
    slot: &HandlerSlot<HandlerVersion>,
    version: &HandlerVersion,
    admission: Admission,
) -> Result<OwnedSemaphorePermit, Fault> {
    let permit = match slot.permits.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) if admission == Admission::Wait => {
            let timeout = Duration::from_millis(slot.limits.timeout_ms);
            tokio::time::timeout(timeout, slot.permits.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        }
        Err(_) => None,
    };
    permit.ok_or_else(|| {
        tracing::warn!(handler = %slot.name, version = version.version,
            "every one of the handler's {} instances is busy; answering 503", slot.limits.max_instances);
        Fault::Busy
    })
}

/// Whether `error` is wasmtime's pooling allocator refusing one more
/// instance (all `--max-instances` slots in use): the server is busy (503),
/// the guest is not at fault.
fn pool_full(error: &wasmtime::Error) -> bool {
    error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
}

/// Epoch deadline: every tick the guest yields to the event loop; after the
/// current call's time limit it traps.
#[doc(hidden)]
pub fn configure_store(store: &mut Store<HostState>) {
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        // Time the guest spent waiting on the host does not count.
        let data = ctx.data();
        if Instant::now() >= data.call_deadline() + data.ctx.waiting.waited() {
            ctx.data_mut().timed_out = true;
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
    });
}
