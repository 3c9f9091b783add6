//! Background workers (Tornado's `for _ in range(concurrency): worker()`).

use std::marker::PhantomData;

use crate::Settings;
use crate::bindings::raw_worker;

/// A background worker: the manifest's `[worker.NAME]` section runs
/// `concurrency` instances, each calling [`Worker::run`] once. `run` loops
/// over a queue and returns when the queue says the worker must stop
/// ([`QueueError::Stopping`](crate::QueueError::Stopping), which
/// [`Queue::items`](crate::Queue::items) turns into the end of the loop):
/// a new version was uploaded (the host starts it next) or the server
/// shuts down. An error or a panic is logged and the worker restarted
/// with backoff.
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct Crawler;
///
/// impl Worker for Crawler {
///     fn run(&mut self, _settings: &Settings) -> std::result::Result<(), String> {
///         let q = Queue::new("urls");
///         for url in q.items() {
///             let url = url.map_err(|e| e.to_string())?;
///             // … fetch url …
///             q.task_done().map_err(|e| e.to_string())?;
///         }
///         Ok(())
///     }
/// }
///
/// export_worker!(Crawler);
/// ```
///
/// `settings` holds the section's `[worker.NAME.settings]`, plus
/// `waterspout:worker` (the section's name) and `waterspout:worker-index`.
pub trait Worker: Default + 'static {
    /// The worker loop.
    fn run(&mut self, settings: &Settings) -> Result<(), String>;
}

/// Exports a [`Worker`] as the component's `worker` interface.
#[macro_export]
macro_rules! export_worker {
    ($worker:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            type __WaterspoutWorker = $crate::__private::WorkerExport<$worker>;
            $crate::bindings::worker::export_worker_world!(
                __WaterspoutWorker with_types_in $crate::bindings::worker
            );
        };
    };
}

/// The `worker` export implemented for any [`Worker`].
#[doc(hidden)]
pub struct WorkerExport<T>(PhantomData<T>);

impl<T: Worker> raw_worker::Guest for WorkerExport<T> {
    fn run(settings: Vec<(String, String)>) -> Result<(), String> {
        T::default().run(&Settings::new(settings))
    }
}
