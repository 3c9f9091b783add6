//! Background workers (Tornado's `for _ in range(concurrency): worker()`):
//! each `[worker.NAME]` section of the manifest runs `concurrency`
//! long-lived instances of its handler (a component of the worker world),
//! started with the server, each under its handler's limits (a permit of
//! `max_instances`, `memory_limit_mb`, and `timeout_ms` per item: see
//! `Guest::call_worker`).
//!
//! A worker that traps, returns an error or returns unasked is logged and
//! restarted with exponential backoff (100 ms doubling to 30 s; back to
//! 100 ms after a run of a minute). When a new version of its handler is
//! activated, or the server shuts down, the worker's next `queue.get`
//! answers `stopping` (the item in hand is finished first); the SDK's loop
//! returns, and the supervisor starts the new version (or stops).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::capabilities::queue::{ItemClock, QueueCtx, WorkerControl};
use crate::manifest::WorkerSpec;
use crate::registry::HandlerSlot;
use crate::runtime::{Admission, Guest, HandlerVersion, Prepared};

/// The first restart waits this long; each failure in a row doubles it.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run that lasted this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// The setting naming the worker section, and the one giving the index.
pub const WORKER_SETTING: &str = "waterspout:worker";
pub const WORKER_INDEX_SETTING: &str = "waterspout:worker-index";

/// The app's running workers.
pub(crate) struct Workers {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts every worker the manifest declares (on the current runtime).
pub(crate) fn start(app: &Arc<App>) -> Workers {
    let shutdown = watch::channel(false).0;
    let mut tasks = Vec::new();
    for spec in &app.deployer().manifest().workers {
        let Some(slot) = app.deployer().registry().get(&spec.handler) else {
            tracing::error!(worker = %spec.name, "worker {:?}: handler {:?} is not loaded", spec.name, spec.handler);
            continue;
        };
        tracing::info!(worker = %spec.name, "starting {} worker(s) {:?} of handler {:?}",
            spec.concurrency, spec.name, spec.handler);
        for index in 0..spec.concurrency {
            let worker = Supervisor {
                app: app.clone(),
                slot: slot.clone(),
                spec: spec.clone(),
                index,
                shutdown: shutdown.subscribe(),
            };
            tasks.push(tokio::spawn(worker.run()));
        }
    }
    Workers { shutdown, tasks }
}

impl Workers {
    /// Tells every worker to stop after its current item and waits for them,
    /// up to `grace`; those still running then are dropped.
    pub(crate) async fn stop(self, grace: Duration) {
        if self.tasks.is_empty() {
            return;
        }
        self.shutdown.send_replace(true);
        let count = self.tasks.len();
        let aborts: Vec<_> = self.tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("background workers still running after {grace:?}; dropping them");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        } else {
            tracing::info!("{count} background worker(s) stopped");
        }
    }
}

/// How one run of a worker instance ended.
enum Ended {
    /// Asked to stop (new version or shutdown), it returned.
    Stopped,
    /// It failed (the reason is logged) or returned unasked: restart later.
    Failed,
}

/// Keeps worker `index` of `spec` running.
struct Supervisor {
    app: Arc<App>,
    slot: Arc<HandlerSlot<HandlerVersion>>,
    spec: WorkerSpec,
    index: u32,
    shutdown: watch::Receiver<bool>,
}

impl Supervisor {
    async fn run(mut self) {
        let mut failures = 0u32;
        while !*self.shutdown.borrow() {
            // Subscribed before reading the version: a swap in between stops
            // the new run at once, and the next one takes the new version.
            let mut swaps = self.slot.swaps();
            swaps.mark_unchanged();
            let version = self.slot.active();
            let started = Instant::now();
            match self.run_once(version, swaps).await {
                Ended::Stopped => failures = 0,
                Ended::Failed => {
                    if started.elapsed() >= HEALTHY_RUN {
                        failures = 0;
                    }
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(2u32.saturating_pow(failures))
                        .min(MAX_BACKOFF);
                    failures = failures.saturating_add(1);
                    tracing::warn!(worker = %self.spec.name, index = self.index,
                        "worker {:?} #{} restarts in {} ms", self.spec.name, self.index, backoff.as_millis());
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = self.shutdown.wait_for(|stop| *stop) => {}
                    }
                }
            }
        }
        tracing::debug!(worker = %self.spec.name, index = self.index, "worker stopped");
    }

    /// One instance of `version`, from instantiation until `run` returns.
    async fn run_once(&mut self, version: Arc<HandlerVersion>, mut swaps: watch::Receiver<()>) -> Ended {
        let (name, index) = (self.spec.name.clone(), self.index);
        let Prepared::Worker(pre) = &version.prepared else {
            tracing::error!(worker = %name, "worker {name:?}: handler {:?} (version {}) is a {} component, not a worker",
                self.spec.handler, version.version, version.world.as_str());
            return Ended::Failed;
        };
        let pre = pre.clone();
        let admitted = Guest::admit(
            &self.slot,
            version.clone(),
            self.app.next_request_id(),
            Admission::Wait,
        )
        .await;
        let mut guest = match admitted {
            Ok(guest) => guest,
            Err(_) => return Ended::Failed,
        };
        let (stop_tx, stop) = watch::channel(false);
        let limits = &self.slot.limits;
        let clock = ItemClock::new(Duration::from_millis(limits.timeout_ms));
        // The other services (kv, pub/sub, timers, …) as for any handler.
        super::services::grant(&self.app, limits, guest.ctx(), None);
        guest.ctx().queue = QueueCtx::for_worker(
            self.app.services().queues.clone(),
            &limits.queues,
            WorkerControl { stop, clock },
        );
        let mut settings = vec![
            (WORKER_SETTING.to_owned(), name.clone()),
            (WORKER_INDEX_SETTING.to_owned(), index.to_string()),
        ];
        settings.extend(self.spec.settings.iter().cloned());

        let call = guest.call_worker("worker run", async |store| {
            let instance = pre.instantiate_async(&mut *store).await?;
            instance
                .waterspout_handler_background_worker()
                .call_run(&mut *store, &settings)
                .await
        });
        let shutdown = &mut self.shutdown;
        let signal = async {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => {}
                _ = swaps.changed() => {}
            }
            stop_tx.send_replace(true);
            std::future::pending::<()>().await
        };
        let outcome = tokio::select! {
            outcome = call => outcome,
            () = signal => unreachable!("the stop signal never ends"),
        };
        let asked = *stop_tx.borrow();
        let (handler, version) = (&*version.name, version.version);
        match outcome {
            Ok(Ok(())) if asked => {
                tracing::info!(worker = %name, index, handler, version, "worker {name:?} #{index} stopped (version {version})");
                Ended::Stopped
            }
            Ok(Ok(())) => {
                tracing::warn!(worker = %name, index, handler, version,
                    "worker {name:?} #{index} returned without being asked to stop");
                Ended::Failed
            }
            Ok(Err(error)) => {
                tracing::error!(worker = %name, index, handler, version,
                    "worker {name:?} #{index} failed: {}", crate::text::sanitize(&error));
                Ended::Failed
            }
            Err(fault) => {
                // Guest::call_worker logged the trap or timeout with the handler's tag.
                tracing::error!(worker = %name, index, handler, version,
                    "worker {name:?} #{index} crashed ({})", fault_kind(&fault));
                Ended::Failed
            }
        }
    }
}

fn fault_kind(fault: &crate::runtime::Fault) -> &'static str {
    use crate::runtime::Fault;
    match fault {
        Fault::Busy => "every instance of its handler is busy",
        Fault::PoolFull => "the instance pool is full",
        Fault::Timeout => "an item exceeded the handler's time limit",
        Fault::MemoryLimit(_) => "memory limit reached",
        Fault::Trap(_) => "trapped",
        // Workers never get a response, so their waits never park.
        Fault::Parked(_) => "parked a wait",
    }
}
