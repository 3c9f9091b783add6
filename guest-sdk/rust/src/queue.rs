//! Tornado's `tornado.queues.Queue` over the app's named queues.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::raw_queue::{self, QueueError as RawError};

/// Why a queue call failed (Tornado raises `QueueFull`, `QueueEmpty`,
/// `TimeoutError` or `ValueError` for these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// The queue is not declared in `waterspout.toml`, or not in the
    /// handler's `queues = [...]`.
    NotGranted(String),
    /// The wait ran out (`tornado.util.TimeoutError`).
    Timeout,
    /// `put_nowait` on a full queue (`QueueFull`).
    Full,
    /// `get_nowait` on an empty queue (`QueueEmpty`).
    Empty,
    /// `task_done` called more often than items were put.
    TooManyTaskDone,
    /// The item is larger than the queue's `max_item_size` (bytes).
    TooLarge(u64),
    /// A background worker must stop (new version or shutdown): return from `run`.
    Stopping,
    /// An item was not the JSON the caller expected.
    Json(String),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::NotGranted(name) => write!(f, "queue {name:?} is not granted to this handler"),
            QueueError::Timeout => f.write_str("timed out"),
            QueueError::Full => f.write_str("the queue is full"),
            QueueError::Empty => f.write_str("the queue is empty"),
            QueueError::TooManyTaskDone => f.write_str("task_done() called too many times"),
            QueueError::TooLarge(max) => write!(f, "the item is larger than the queue's {max} bytes"),
            QueueError::Stopping => f.write_str("the worker is stopping"),
            QueueError::Json(e) => write!(f, "the item is not the expected JSON: {e}"),
        }
    }
}

impl std::error::Error for QueueError {}

impl From<RawError> for QueueError {
    fn from(e: RawError) -> Self {
        match e {
            RawError::NotGranted(name) => QueueError::NotGranted(name),
            RawError::Timeout => QueueError::Timeout,
            RawError::Full => QueueError::Full,
            RawError::Empty => QueueError::Empty,
            RawError::TooManyTaskDone => QueueError::TooManyTaskDone,
            RawError::TooLarge(max) => QueueError::TooLarge(max),
            RawError::Stopping => QueueError::Stopping,
        }
    }
}

fn millis(timeout: Duration) -> Option<u32> {
    // 0 means "do not wait" to the host: a positive timeout waits at least 1 ms.
    Some(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX).max(1))
}

/// A named queue declared in `waterspout.toml` (`[queue.NAME] max_size = N`)
/// and granted to the handler (`queues = ["NAME"]`): Tornado's
/// `tornado.queues.Queue`, shared by every handler and worker of the app.
///
/// ```no_run
/// use waterspout_sdk::Queue;
///
/// let q = Queue::new("jobs");
/// q.put("https://example.com/")?;          // waits while the queue is full
/// let item = q.get()?;                     // waits while it is empty
/// q.task_done()?;
/// q.join()?;                               // every item put is done
/// # Ok::<(), waterspout_sdk::QueueError>(())
/// ```
///
/// Items are bytes; `put_json` / `get_json` carry any serde value. A wait
/// without a timeout lasts at most the handler's `timeout_ms` (a worker's
/// `get` waits as long as it takes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    name: String,
}

impl Queue {
    /// The queue named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Queue { name: name.into() }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Puts an item, waiting while the queue is full.
    pub fn put(&self, item: impl AsRef<[u8]>) -> Result<(), QueueError> {
        Ok(raw_queue::put(&self.name, item.as_ref(), None)?)
    }

    /// Puts an item, waiting up to `timeout` (then [`QueueError::Timeout`]).
    pub fn put_timeout(&self, item: impl AsRef<[u8]>, timeout: Duration) -> Result<(), QueueError> {
        Ok(raw_queue::put(&self.name, item.as_ref(), millis(timeout))?)
    }

    /// Puts an item without waiting ([`QueueError::Full`] when full).
    pub fn put_nowait(&self, item: impl AsRef<[u8]>) -> Result<(), QueueError> {
        Ok(raw_queue::put(&self.name, item.as_ref(), Some(0))?)
    }

    /// Puts `value` as JSON.
    pub fn put_json<T: Serialize>(&self, value: &T) -> Result<(), QueueError> {
        let item = serde_json::to_vec(value).map_err(|e| QueueError::Json(e.to_string()))?;
        self.put(item)
    }

    /// Takes the first item, waiting while the queue is empty.
    pub fn get(&self) -> Result<Vec<u8>, QueueError> {
        Ok(raw_queue::get(&self.name, None)?)
    }

    /// Takes the first item, waiting up to `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<u8>, QueueError> {
        Ok(raw_queue::get(&self.name, millis(timeout))?)
    }

    /// Takes the first item without waiting ([`QueueError::Empty`] when empty).
    pub fn get_nowait(&self) -> Result<Vec<u8>, QueueError> {
        Ok(raw_queue::get(&self.name, Some(0))?)
    }

    /// Takes the first item as JSON.
    pub fn get_json<T: DeserializeOwned>(&self) -> Result<T, QueueError> {
        let item = self.get()?;
        serde_json::from_slice(&item).map_err(|e| QueueError::Json(e.to_string()))
    }

    /// The last item taken is processed (counts down [`Queue::join`]).
    pub fn task_done(&self) -> Result<(), QueueError> {
        Ok(raw_queue::task_done(&self.name)?)
    }

    /// Waits until every item put has been marked done.
    pub fn join(&self) -> Result<(), QueueError> {
        Ok(raw_queue::join(&self.name, None)?)
    }

    /// [`Queue::join`], waiting up to `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), QueueError> {
        Ok(raw_queue::join(&self.name, millis(timeout))?)
    }

    /// Items in the queue now.
    pub fn qsize(&self) -> Result<usize, QueueError> {
        Ok(raw_queue::qsize(&self.name)? as usize)
    }

    /// The queue's bound (0: unbounded).
    pub fn maxsize(&self) -> Result<usize, QueueError> {
        Ok(raw_queue::maxsize(&self.name)? as usize)
    }

    /// Whether the queue holds no item.
    pub fn empty(&self) -> Result<bool, QueueError> {
        Ok(self.qsize()? == 0)
    }

    /// Whether the queue holds `maxsize` items.
    pub fn full(&self) -> Result<bool, QueueError> {
        let max = self.maxsize()?;
        Ok(max > 0 && self.qsize()? >= max)
    }

    /// The items, as a worker takes them (Tornado's `async for item in q`):
    /// waits for each; ends when the worker must stop. Call
    /// [`Queue::task_done`] after each.
    ///
    /// ```no_run
    /// # use waterspout_sdk::Queue;
    /// let q = Queue::new("jobs");
    /// for item in q.items() {
    ///     let item = item?;
    ///     // … work on item …
    ///     q.task_done()?;
    /// }
    /// # Ok::<(), waterspout_sdk::QueueError>(())
    /// ```
    pub fn items(&self) -> QueueItems<'_> {
        QueueItems { queue: self }
    }
}

/// The iterator of [`Queue::items`].
pub struct QueueItems<'a> {
    queue: &'a Queue,
}

impl Iterator for QueueItems<'_> {
    type Item = Result<Vec<u8>, QueueError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.queue.get() {
            Err(QueueError::Stopping) => None,
            other => Some(other),
        }
    }
}
