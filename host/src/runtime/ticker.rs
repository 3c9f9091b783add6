//! The thread that advances every engine's epoch, and sleeps while no guest
//! runs.
//!
//! A running guest yields to the event loop at every tick and traps past its
//! time limit (the epoch callback, `invoke.rs`), so the epoch must advance
//! whenever guest code may run. Between requests nothing needs it: an idle
//! server woke 500 times a second for nothing, on a core some other process
//! (a load generator, the next server of a benchmark) was using. Every guest
//! call holds a [`Running`] guard; after [`IDLE`] with no call entered and
//! none in progress the thread parks, and the next call to enter wakes it.
//! A call in progress — an endless loop, a guest waiting on the host —
//! keeps it ticking.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::{Engine, EngineWeak};

/// How often the epoch advances. A running guest yields to the event loop at
/// every tick, so a CPU-bound handler never holds a worker thread longer.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// How long the ticker goes on with no guest call before it parks: long
/// enough that a server under any load (a request every 100 ms) never
/// parks it, so calls do not pay for waking it.
pub const IDLE: Duration = Duration::from_millis(100);

/// One for the process: engines register, calls enter.
pub(crate) struct Ticker {
    /// The engines whose epoch advances; dropped ones are forgotten at the
    /// next tick.
    engines: Mutex<Vec<EngineWeak>>,
    /// Guest calls in progress, in any engine.
    running: AtomicUsize,
    /// Guest calls entered so far: with `running`, tells an idle tick.
    entered: AtomicU64,
    /// Set while the thread is parked (or about to park): the next call to
    /// enter unparks it.
    parked: AtomicBool,
    thread: Thread,
}

/// A failure to start the thread is kept: the next engine would meet it
/// again.
static TICKER: OnceLock<Result<Ticker, String>> = OnceLock::new();

/// The ticker, started on first use.
pub(crate) fn ticker() -> Result<&'static Ticker, &'static str> {
    TICKER
        .get_or_init(|| {
            // The thread waits for this initialisation to end.
            let handle = std::thread::Builder::new()
                .name("waterspout-epoch".into())
                .spawn(|| {
                    if let Ok(ticker) = TICKER.wait() {
                        run(ticker);
                    }
                })
                .map_err(|e| format!("starting the epoch ticker thread: {e}"))?;
            Ok(Ticker {
                engines: Mutex::new(Vec::new()),
                running: AtomicUsize::new(0),
                entered: AtomicU64::new(0),
                parked: AtomicBool::new(false),
                thread: handle.thread().clone(),
            })
        })
        .as_ref()
        .map_err(String::as_str)
}

impl Ticker {
    /// `engine`'s epoch advances from now on, while it lives.
    pub(crate) fn register(&self, engine: &Engine) {
        self.lock().push(engine.weak());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<EngineWeak>> {
        self.engines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tick(&self) {
        self.lock().retain(|weak| match weak.upgrade() {
            Some(engine) => {
                engine.increment_epoch();
                true
            }
            None => false,
        });
    }

    /// Whether a call entered since `seen` calls had, or one is in progress.
    fn busy(&self, seen: u64) -> bool {
        self.running.load(Ordering::SeqCst) > 0 || self.entered.load(Ordering::SeqCst) != seen
    }
}

fn run(ticker: &Ticker) {
    let idle_ticks = (IDLE.as_millis() / EPOCH_TICK.as_millis()) as u32;
    let mut seen = 0;
    let mut idle = 0;
    loop {
        std::thread::sleep(EPOCH_TICK);
        ticker.tick();
        if ticker.busy(seen) {
            seen = ticker.entered.load(Ordering::SeqCst);
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < idle_ticks {
            continue;
        }
        // A call entering from here on either sees `parked` and unparks
        // the thread (`park` then returns at once), or is seen by `busy`.
        ticker.parked.store(true, Ordering::SeqCst);
        while !ticker.busy(seen) {
            std::thread::park();
        }
        ticker.parked.store(false, Ordering::SeqCst);
        idle = 0;
    }
}

/// Held for the whole of a guest call (instantiation included): the epoch
/// advances meanwhile.
pub struct Running(Option<&'static Ticker>);

impl Running {
    pub fn enter() -> Running {
        let ticker = TICKER.get().and_then(|started| started.as_ref().ok());
        if let Some(ticker) = ticker {
            ticker.entered.fetch_add(1, Ordering::SeqCst);
            ticker.running.fetch_add(1, Ordering::SeqCst);
            if ticker.parked.load(Ordering::SeqCst) {
                ticker.thread.unpark();
            }
        }
        Running(ticker)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(ticker) = self.0 {
            ticker.running.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
