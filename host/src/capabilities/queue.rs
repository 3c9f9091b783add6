//! Capability `queue`: Tornado's `tornado.queues.Queue` over the app's named
//! queues (`services::queues`). A handler reaches only the queues its
//! manifest section grants (`queues = [...]`); anything else is the error
//! value `not-granted`, never a trap.
//!
//! For a background worker the context also carries the worker's stop
//! signal and its item clock: `get` answers `stopping` (between items,
//! never with an item taken) once the worker must stop, and the time limit
//! of a worker applies per item: it runs from the moment `get` returns
//! until the next `get`, and the wait inside `get` is free.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use wasmtime::component::{HasData, Linker};

use crate::capabilities::bindings::queue::{self, QueueError as WitError};
use crate::services::queues::{QueueError, Queues, Wait};

/// The queue context of one instance: the backend, the queues granted, and
/// (for a worker) its stop signal and item clock.
#[derive(Default)]
pub struct QueueCtx {
    backend: Option<Arc<dyn Queues>>,
    granted: Arc<[String]>,
    worker: Option<WorkerControl>,
    /// Items this instance took and has not marked done, oldest first (only
    /// for a backend that redelivers them: `Queues::tracks_items`).
    taken: VecDeque<(String, Vec<u8>)>,
}

/// Items an instance remembers at most for `task_done` (a handler that
/// never calls it forgets the oldest).
const TAKEN_KEPT: usize = 64;

/// What makes a queue context a worker's.
pub struct WorkerControl {
    /// Becomes `true` when the worker must stop (new version, shutdown).
    pub stop: watch::Receiver<bool>,
    pub clock: ItemClock,
}

/// When the current item's time runs out: set when `get` hands a worker an
/// item, cleared while the worker waits in `get`. The runtime's epoch
/// callback and its wall-clock watchdog read it.
#[derive(Clone)]
pub struct ItemClock {
    limit: Duration,
    deadline: Arc<Mutex<Option<Instant>>>,
}

impl ItemClock {
    /// A clock whose first item (the start of `run`) starts now.
    pub fn new(limit: Duration) -> Self {
        ItemClock {
            limit,
            deadline: Arc::new(Mutex::new(Some(Instant::now() + limit))),
        }
    }

    /// The limit of one item.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// The current item's deadline; `None` while the worker waits for one.
    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().expect("clock lock")
    }

    fn waiting(&self) {
        *self.deadline.lock().expect("clock lock") = None;
    }

    fn start_item(&self) {
        *self.deadline.lock().expect("clock lock") = Some(Instant::now() + self.limit);
    }
}

impl QueueCtx {
    /// The context of a handler instance granted `granted` queues.
    pub fn new(backend: Arc<dyn Queues>, granted: &[String]) -> Self {
        QueueCtx {
            backend: Some(backend),
            granted: granted.into(),
            worker: None,
            taken: VecDeque::new(),
        }
    }

    /// The context of a background worker.
    pub fn for_worker(backend: Arc<dyn Queues>, granted: &[String], control: WorkerControl) -> Self {
        QueueCtx {
            worker: Some(control),
            ..QueueCtx::new(backend, granted)
        }
    }

    /// The worker's item clock (none for a handler).
    pub fn clock(&self) -> Option<&ItemClock> {
        self.worker.as_ref().map(|w| &w.clock)
    }

    /// The backend, if `name` is granted.
    fn granted(&self, name: &str) -> Result<Arc<dyn Queues>, WitError> {
        match &self.backend {
            Some(backend) if self.granted.iter().any(|g| g == name) => Ok(backend.clone()),
            _ => Err(WitError::NotGranted(name.to_owned())),
        }
    }
}

impl QueueCtx {
    fn remember(&mut self, backend: &Arc<dyn Queues>, name: &str, got: &Result<Vec<u8>, WitError>) {
        if let Ok(item) = got
            && backend.tracks_items()
        {
            if self.taken.len() >= TAKEN_KEPT {
                self.taken.pop_front();
            }
            self.taken.push_back((name.to_owned(), item.clone()));
        }
    }
}

fn wit_error(error: QueueError) -> WitError {
    match error {
        QueueError::Unknown(name) => WitError::NotGranted(name),
        QueueError::Timeout => WitError::Timeout,
        QueueError::Full => WitError::Full,
        QueueError::Empty => WitError::Empty,
        QueueError::TooManyTaskDone => WitError::TooManyTaskDone,
        QueueError::TooLarge(max) => WitError::TooLarge(max),
        // The interface has no `unavailable` case: a backend that cannot be
        // reached reads as a wait that ran out (logged and counted by the
        // backend).
        QueueError::Unavailable(_) => WitError::Timeout,
    }
}

struct HasQueue;

impl HasData for HasQueue {
    type Data<'a> = &'a mut QueueCtx;
}

/// Links interface `queue`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut QueueCtx,
) -> wasmtime::Result<()> {
    queue::add_to_linker::<T, HasQueue>(linker, get)
}

type Answer<T> = wasmtime::Result<Result<T, WitError>>;

impl queue::Host for QueueCtx {
    async fn put(&mut self, name: String, item: Vec<u8>, timeout_ms: Option<u32>) -> Answer<()> {
        let backend = match self.granted(&name) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        Ok(backend
            .put(&name, item, Wait::from_millis(timeout_ms))
            .await
            .map_err(wit_error))
    }

    async fn get(&mut self, name: String, timeout_ms: Option<u32>) -> Answer<Vec<u8>> {
        let backend = match self.granted(&name) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        let wait = Wait::from_millis(timeout_ms);
        let Some(worker) = &mut self.worker else {
            let got = backend.get(&name, wait).await.map_err(wit_error);
            self.remember(&backend, &name, &got);
            return Ok(got);
        };
        // Between items: a worker told to stop takes nothing more.
        if *worker.stop.borrow() {
            return Ok(Err(WitError::Stopping));
        }
        worker.clock.waiting();
        let got = tokio::select! {
            biased;
            _ = worker.stop.wait_for(|stop| *stop) => Err(WitError::Stopping),
            got = backend.get(&name, wait) => got.map_err(wit_error),
        };
        worker.clock.start_item();
        self.remember(&backend, &name, &got);
        Ok(got)
    }

    async fn task_done(&mut self, name: String) -> Answer<()> {
        let backend = match self.granted(&name) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        // The item this instance took first and has not marked done yet.
        let item = self
            .taken
            .iter()
            .position(|(queue, _)| *queue == name)
            .map(|i| self.taken.remove(i).map(|(_, item)| item))
            .unwrap_or_default();
        let done = backend.task_done(&name, item.as_deref()).await;
        if let (Err(_), Some(item)) = (&done, item) {
            // Not done after all: keep it for the next task_done.
            self.taken.push_front((name, item));
        }
        Ok(done.map_err(wit_error))
    }

    async fn join(&mut self, name: String, timeout_ms: Option<u32>) -> Answer<()> {
        let backend = match self.granted(&name) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        Ok(backend
            .join(&name, Wait::from_millis(timeout_ms))
            .await
            .map_err(wit_error))
    }

    async fn qsize(&mut self, name: String) -> Answer<u32> {
        let backend = match self.granted(&name) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        Ok(backend
            .qsize(&name)
            .await
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .map_err(wit_error))
    }

    async fn maxsize(&mut self, name: String) -> Answer<u32> {
        Ok(self.granted(&name).and_then(|backend| {
            backend
                .maxsize(&name)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                .map_err(wit_error)
        }))
    }
}
