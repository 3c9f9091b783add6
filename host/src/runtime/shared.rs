//! Shared instances (`concurrency = M` on a wasi:http 0.3 handler): one
//! instance of a version serves up to M requests at the same time, as
//! `wasmtime serve` and Spin do for WASI p3 components, and up to `reuse`
//! requests in all.
//!
//! Each shared instance is a *lane*: a task on the worker thread that
//! admitted it, owning the store (one `max_instances` permit), running the
//! store's `run_concurrent` event loop and taking requests from a channel.
//! A request joins a lane of its own thread that has room and is not busy
//! on the CPU; else it starts a lane (a permit, a fresh instance), or waits
//! for either within its time limit.
//!
//! Time: every request in flight has its deadline. The epoch callback
//! interrupts the guest once the earliest one has passed (CPU), and a timer
//! outside `run_concurrent` (wasmtime#11869: expiry futures inside it may
//! not be polled) stops the lane when one passes while the guest waits. A
//! trap, a memory-limit hit or a deadline stops the whole instance: every
//! request in flight on it that has not answered gets the fault's status.
//! A hot swap retires a version's lanes: they take no new request and end
//! when their requests in flight have.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use http::StatusCode;
use tokio::sync::{Notify, mpsc, oneshot};
use wasmtime::component::Accessor;
use wasmtime_wasi_http::p3::bindings::{Service, ServicePre};

use crate::registry::HandlerSlot;
use crate::runtime::invoke::{Fault, Guest};
use crate::runtime::{HandlerVersion, HostState};

/// One request's work on a shared instance, given the store's accessor and
/// the instance: it resolves when the request is done (its response body
/// read, or dropped), `true` when the instance may serve again.
pub type Job = Box<
    dyn for<'a> FnOnce(
            &'a Accessor<HostState>,
            &'a Service,
        ) -> Pin<Box<dyn Future<Output = wasmtime::Result<bool>> + Send + 'a>>
        + Send,
>;

/// A [`Job`] from a closure (which gets its higher-ranked signature from
/// this bound).
pub fn job<F>(f: F) -> Job
where
    F: for<'a> FnOnce(
            &'a Accessor<HostState>,
            &'a Service,
        ) -> Pin<Box<dyn Future<Output = wasmtime::Result<bool>> + Send + 'a>>
        + Send
        + 'static,
{
    Box::new(f)
}

/// How a request on a shared instance ended: done, or the status of the
/// fault that stopped its instance.
pub type Ended = oneshot::Receiver<Result<(), StatusCode>>;

/// A request handed to a lane.
struct Entry {
    id: u64,
    deadline: Instant,
    job: Job,
    ended: oneshot::Sender<Result<(), StatusCode>>,
}

/// The deadlines of the requests in flight on one shared instance, read by
/// the epoch callback (CPU) and the lane's timer (waiting).
pub struct LaneClock {
    state: Mutex<ClockState>,
    changed: Notify,
    /// Set at every epoch tick the guest was running at, cleared whenever the
    /// event loop gets to the lane (the guest waits): a lane busy on the CPU
    /// takes no new request, which goes to another instance instead.
    cpu_bound: AtomicBool,
}

struct ClockState {
    active: Vec<(u64, Instant)>,
    /// The latest deadline given: work the guest does after its last
    /// request (a task it spawned) is bounded by that request's limit.
    latest: Instant,
}

impl LaneClock {
    fn new(first: Instant) -> Self {
        LaneClock {
            state: Mutex::new(ClockState {
                active: Vec::new(),
                latest: first,
            }),
            changed: Notify::new(),
            cpu_bound: AtomicBool::new(false),
        }
    }

    fn add(&self, id: u64, deadline: Instant) {
        let mut state = self.state.lock().expect("clock lock");
        state.active.push((id, deadline));
        state.latest = state.latest.max(deadline);
        drop(state);
        self.changed.notify_waiters();
    }

    fn remove(&self, id: u64) {
        self.state
            .lock()
            .expect("clock lock")
            .active
            .retain(|(i, _)| *i != id);
        self.changed.notify_waiters();
    }

    fn earliest_active(&self) -> Option<Instant> {
        let state = self.state.lock().expect("clock lock");
        state.active.iter().map(|(_, at)| *at).min()
    }

    /// For the epoch callback: when the guest must stop running. Marks the
    /// lane as busy on the CPU.
    pub(super) fn cpu_deadline(&self) -> Instant {
        self.cpu_bound.store(true, Ordering::Relaxed);
        let state = self.state.lock().expect("clock lock");
        state
            .active
            .iter()
            .map(|(_, at)| *at)
            .min()
            .unwrap_or(state.latest)
    }

    /// Resolves once a request in flight is past its deadline.
    pub(super) async fn expired(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.earliest_active() {
                None => changed.await,
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// The open lanes of one handler version (kept in its [`IdleInstances`]).
///
/// [`IdleInstances`]: super::IdleInstances
#[derive(Default)]
pub struct Lanes {
    open: Mutex<Vec<Lane>>,
    /// A lane has room again (a request on it ended).
    freed: Notify,
    next_id: AtomicU64,
    retired: AtomicBool,
}

/// A shared instance taking requests.
struct Lane {
    id: u64,
    thread: ThreadId,
    tx: mpsc::UnboundedSender<Entry>,
    clock: Arc<LaneClock>,
    in_flight: u32,
    accepted: u32,
}

impl Lanes {
    /// The version is no longer active: its lanes take no new request (each
    /// ends when its requests in flight have).
    pub(super) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.open.lock().expect("lanes lock").clear();
    }

    pub(super) fn reopen(&self) {
        self.retired.store(false, Ordering::Release);
    }

    /// Hands `entry` to a lane of this thread with room, not busy on the
    /// CPU; gives it back when there is none.
    fn join(&self, mut entry: Entry, concurrency: u32, reuse: u32) -> Result<(), Entry> {
        let thread = std::thread::current().id();
        let mut open = self.open.lock().expect("lanes lock");
        loop {
            let Some(index) = open.iter().position(|lane| {
                lane.thread == thread
                    && lane.in_flight < concurrency
                    && !lane.clock.cpu_bound.load(Ordering::Relaxed)
            }) else {
                return Err(entry);
            };
            match open[index].tx.send(entry) {
                Ok(()) => {
                    let lane = &mut open[index];
                    lane.in_flight += 1;
                    lane.accepted += 1;
                    if lane.accepted >= reuse {
                        // Its last request: the lane ends after it.
                        open.swap_remove(index);
                    }
                    return Ok(());
                }
                // The lane ended meanwhile.
                Err(mpsc::error::SendError(back)) => {
                    open.swap_remove(index);
                    entry = back;
                }
            }
        }
    }

    /// A request on lane `id` ended; `clean`: the lane may take more.
    fn finished(&self, id: u64, clean: bool) {
        let mut open = self.open.lock().expect("lanes lock");
        if let Some(index) = open.iter().position(|lane| lane.id == id) {
            if clean {
                open[index].in_flight -= 1;
            } else {
                open.swap_remove(index);
            }
        }
        drop(open);
        self.freed.notify_waiters();
    }

    fn remove(&self, id: u64) {
        self.open.lock().expect("lanes lock").retain(|lane| lane.id != id);
    }
}

/// Runs `job` on a shared instance of `version` (`concurrency` > 1): joins a
/// lane of this thread with room, or starts one with a fresh instance (a
/// permit of `max_instances`), waiting for either within the handler's time
/// limit (else [`Fault::Busy`]). The returned receiver tells how the request
/// ended.
pub async fn run_shared(
    slot: &HandlerSlot<HandlerVersion>,
    version: Arc<HandlerVersion>,
    pre: ServicePre<HostState>,
    request_id: u64,
    job: Job,
) -> Result<Ended, Fault> {
    let limits = &slot.limits;
    let (concurrency, reuse) = (limits.concurrency.max(1), limits.reuse.max(1));
    let deadline = Instant::now() + Duration::from_millis(limits.timeout_ms);
    let lanes = &version.idle.lanes;
    let (ended, ended_rx) = oneshot::channel();
    let mut entry = Entry {
        id: lanes.next_id.fetch_add(1, Ordering::Relaxed),
        deadline,
        job,
        ended,
    };
    let permit = loop {
        let freed = lanes.freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        entry = match lanes.join(entry, concurrency, reuse) {
            Ok(()) => return Ok(ended_rx),
            Err(entry) => entry,
        };
        if let Ok(permit) = slot.permits.clone().try_acquire_owned() {
            break permit;
        }
        tokio::select! {
            permit = slot.permits.clone().acquire_owned() => match permit {
                Ok(permit) => break permit,
                Err(_) => return Err(busy(slot, &version)),
            },
            () = &mut freed => {}
            () = tokio::time::sleep_until(deadline.into()) => return Err(busy(slot, &version)),
        }
    };

    let mut guest = Guest::fresh(slot, version.clone(), request_id, permit);
    let clock = Arc::new(LaneClock::new(deadline));
    guest.store().data_mut().lane = Some(clock.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let id = lanes.next_id.fetch_add(1, Ordering::Relaxed);
    tx.send(entry)
        .unwrap_or_else(|_| unreachable!("the receiver is here"));
    if reuse > 1 && !lanes.retired.load(Ordering::Acquire) {
        lanes.open.lock().expect("lanes lock").push(Lane {
            id,
            thread: std::thread::current().id(),
            tx,
            clock: clock.clone(),
            in_flight: 1,
            accepted: 1,
        });
    }
    tokio::spawn(lane(guest, pre, rx, clock, id));
    Ok(ended_rx)
}

fn busy(slot: &HandlerSlot<HandlerVersion>, version: &HandlerVersion) -> Fault {
    tracing::warn!(handler = %slot.name, version = version.version,
        "every one of the handler's {} instances is busy with {} requests; answering 503",
        slot.limits.max_instances, slot.limits.concurrency);
    Fault::Busy
}

/// One shared instance: instantiates, then serves the requests it is given
/// inside one `run_concurrent` event loop until its channel closes (retired,
/// `reuse` reached, or a request ended badly) and none is in flight, or a
/// fault stops it.
async fn lane(
    mut guest: Guest,
    pre: ServicePre<HostState>,
    mut rx: mpsc::UnboundedReceiver<Entry>,
    clock: Arc<LaneClock>,
    id: u64,
) {
    let version = guest.version().clone();
    let lanes = &version.idle.lanes;
    let mut waiting: HashMap<u64, oneshot::Sender<Result<(), StatusCode>>> = HashMap::new();
    let outcome = guest
        .call_shared("request", &clock, async |store| {
            let service = pre.instantiate_async(&mut *store).await?;
            let service = &service;
            let (rx, waiting, clock) = (&mut rx, &mut waiting, &*clock);
            store
                .run_concurrent(async |accessor| -> wasmtime::Result<()> {
                    let mut running = FuturesUnordered::new();
                    let mut open = true;
                    let serve = async {
                        loop {
                            tokio::select! {
                                Some((entry_id, done)) = running.next() => {
                                    let clean: bool = done?;
                                    clock.remove(entry_id);
                                    if let Some(ended) = waiting.remove(&entry_id) {
                                        let _ = ended.send(Ok(()));
                                    }
                                    lanes.finished(id, clean);
                                }
                                entry = rx.recv(), if open => match entry {
                                    Some(Entry { id: entry_id, deadline, job, ended }) => {
                                        clock.add(entry_id, deadline);
                                        waiting.insert(entry_id, ended);
                                        running.push(async move { (entry_id, job(accessor, service).await) });
                                    }
                                    None => open = false,
                                },
                            }
                            if !open && running.is_empty() {
                                return Ok(());
                            }
                        }
                    };
                    tokio::pin!(serve);
                    // Polled: the guest is not running now (it waits), so
                    // the lane may take another request.
                    std::future::poll_fn(|cx| {
                        if clock.cpu_bound.swap(false, Ordering::Relaxed) {
                            lanes.freed.notify_waiters();
                        }
                        serve.as_mut().poll(cx)
                    })
                    .await
                })
                .await?
        })
        .await;
    lanes.remove(id);
    rx.close();
    let status = match &outcome {
        Ok(()) => StatusCode::INTERNAL_SERVER_ERROR,
        Err(fault) => fault.status(),
    };
    for (_, ended) in waiting.drain() {
        let _ = ended.send(Err(status));
    }
    while let Ok(entry) = rx.try_recv() {
        let _ = entry.ended.send(Err(status));
    }
    drop(guest);
    lanes.freed.notify_waiters();
}
