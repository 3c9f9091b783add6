//! Queues: named, bounded FIFO queues shared by every handler and worker of
//! the app, with the semantics of Tornado's `tornado.queues.Queue`: `put`
//! waits while the queue is full, `get` while it is empty (each with an
//! optional timeout, or not at all: `put_nowait` / `get_nowait`), and every
//! item put counts as an unfinished task until `task_done`; `join` waits
//! until none is left.
//!
//! [`Queues`] is the backend trait; [`EmbeddedQueues`] the in-memory default
//! (tokio semaphores: waiters are served first come, first served, and a
//! wait that is cancelled takes nothing).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{Semaphore, watch};

/// A queue as the manifest declares it (`[queue.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: String,
    /// Items the queue holds at most; 0: unbounded (Tornado's `maxsize`).
    pub max_size: usize,
    /// Bytes one item may have at most.
    pub max_item_size: usize,
}

/// How long an operation may wait (Tornado's `timeout` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// As long as it takes (the caller bounds it: a request's time limit).
    Forever,
    /// Not at all: `put_nowait`, `get_nowait`.
    No,
    /// Up to this long, then [`QueueError::Timeout`].
    For(Duration),
}

impl Wait {
    /// Tornado's reading of a timeout in milliseconds: none waits, 0 does not.
    pub fn from_millis(timeout_ms: Option<u32>) -> Wait {
        match timeout_ms {
            None => Wait::Forever,
            Some(0) => Wait::No,
            Some(ms) => Wait::For(Duration::from_millis(ms.into())),
        }
    }
}

/// Why a queue operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("no queue named {0:?} is declared")]
    Unknown(String),
    #[error("timed out")]
    Timeout,
    #[error("the queue is full")]
    Full,
    #[error("the queue is empty")]
    Empty,
    #[error("task_done() called too many times")]
    TooManyTaskDone,
    #[error("the item is larger than the queue's max_item_size of {0} bytes")]
    TooLarge(u64),
    /// The backend cannot be reached (never for the embedded one).
    #[error("{0}")]
    Unavailable(String),
}

/// The app's queues, by name.
pub trait Queues: Send + Sync {
    /// Appends `item`, waiting (up to `wait`) while the queue is full.
    fn put<'a>(&'a self, name: &'a str, item: Vec<u8>, wait: Wait) -> BoxFuture<'a, Result<(), QueueError>>;
    /// Takes the first item, waiting (up to `wait`) while the queue is empty.
    fn get<'a>(&'a self, name: &'a str, wait: Wait) -> BoxFuture<'a, Result<Vec<u8>, QueueError>>;
    /// One item taken earlier is done: `item`, when the caller knows which
    /// (a clustered backend forgets it; it would redeliver it if this node died).
    fn task_done<'a>(
        &'a self,
        name: &'a str,
        item: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
    /// Waits (up to `wait`) until every item put has been marked done.
    fn join<'a>(&'a self, name: &'a str, wait: Wait) -> BoxFuture<'a, Result<(), QueueError>>;
    /// Items waiting now.
    fn qsize<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<usize, QueueError>>;
    /// The queue's bound (0: unbounded).
    fn maxsize(&self, name: &str) -> Result<usize, QueueError>;
    /// Whether `task_done` wants the item (the caller keeps the items it took).
    fn tracks_items(&self) -> bool {
        false
    }
}

/// One queue of the embedded backend.
struct Queue {
    config: QueueConfig,
    items: Mutex<VecDeque<Vec<u8>>>,
    /// One permit per item in `items` not yet claimed by a `get`.
    available: Semaphore,
    /// One permit per free place (bounded queues only).
    space: Option<Semaphore>,
    /// Items put and not yet marked done (Tornado's `_unfinished_tasks`).
    unfinished: watch::Sender<u64>,
}

/// Waits for a permit of `semaphore` within `wait`; the permit is consumed
/// (the caller moves one item or one place at once, with no await between).
async fn take(semaphore: &Semaphore, wait: Wait, none: QueueError) -> Result<(), QueueError> {
    let permit = match wait {
        Wait::No => semaphore.try_acquire().map_err(|_| none)?,
        Wait::Forever => semaphore
            .acquire()
            .await
            .expect("queue semaphores are never closed"),
        Wait::For(limit) => tokio::time::timeout(limit, semaphore.acquire())
            .await
            .map_err(|_| QueueError::Timeout)?
            .expect("queue semaphores are never closed"),
    };
    permit.forget();
    Ok(())
}

impl Queue {
    fn new(config: QueueConfig) -> Self {
        Queue {
            space: (config.max_size > 0).then(|| Semaphore::new(config.max_size)),
            config,
            items: Mutex::new(VecDeque::new()),
            available: Semaphore::new(0),
            unfinished: watch::channel(0).0,
        }
    }

    async fn put(&self, item: Vec<u8>, wait: Wait) -> Result<(), QueueError> {
        if item.len() > self.config.max_item_size {
            return Err(QueueError::TooLarge(self.config.max_item_size as u64));
        }
        if let Some(space) = &self.space {
            take(space, wait, QueueError::Full).await?;
        }
        self.items.lock().expect("queue lock").push_back(item);
        self.unfinished.send_modify(|n| *n += 1);
        self.available.add_permits(1);
        Ok(())
    }

    async fn get(&self, wait: Wait) -> Result<Vec<u8>, QueueError> {
        take(&self.available, wait, QueueError::Empty).await?;
        let item = self
            .items
            .lock()
            .expect("queue lock")
            .pop_front()
            .expect("a permit of `available` stands for an item");
        if let Some(space) = &self.space {
            space.add_permits(1);
        }
        Ok(item)
    }

    fn task_done(&self) -> Result<(), QueueError> {
        let mut result = Ok(());
        self.unfinished.send_if_modified(|n| {
            if *n == 0 {
                result = Err(QueueError::TooManyTaskDone);
                return false;
            }
            *n -= 1;
            true
        });
        result
    }

    async fn join(&self, wait: Wait) -> Result<(), QueueError> {
        let mut unfinished = self.unfinished.subscribe();
        let done = unfinished.wait_for(|n| *n == 0);
        match wait {
            Wait::Forever => {
                done.await.expect("the sender lives in the queue");
            }
            Wait::No if *self.unfinished.borrow() == 0 => {}
            Wait::No => return Err(QueueError::Timeout),
            Wait::For(limit) => {
                tokio::time::timeout(limit, done)
                    .await
                    .map_err(|_| QueueError::Timeout)?
                    .expect("the sender lives in the queue");
            }
        }
        Ok(())
    }
}

/// The in-memory backend: the queues the manifest declares, for the life of
/// the process (items are lost on restart, as with Tornado's queues).
pub struct EmbeddedQueues {
    queues: HashMap<String, Queue>,
}

impl EmbeddedQueues {
    pub fn new(configs: impl IntoIterator<Item = QueueConfig>) -> Self {
        EmbeddedQueues {
            queues: configs
                .into_iter()
                .map(|config| (config.name.clone(), Queue::new(config)))
                .collect(),
        }
    }

    fn queue(&self, name: &str) -> Result<&Queue, QueueError> {
        self.queues
            .get(name)
            .ok_or_else(|| QueueError::Unknown(name.to_owned()))
    }
}

impl Queues for EmbeddedQueues {
    fn put<'a>(&'a self, name: &'a str, item: Vec<u8>, wait: Wait) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move { self.queue(name)?.put(item, wait).await })
    }

    fn get<'a>(&'a self, name: &'a str, wait: Wait) -> BoxFuture<'a, Result<Vec<u8>, QueueError>> {
        Box::pin(async move { self.queue(name)?.get(wait).await })
    }

    fn task_done<'a>(
        &'a self,
        name: &'a str,
        _item: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(std::future::ready(self.queue(name).and_then(Queue::task_done)))
    }

    fn join<'a>(&'a self, name: &'a str, wait: Wait) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move { self.queue(name)?.join(wait).await })
    }

    fn qsize<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<usize, QueueError>> {
        let size = self
            .queue(name)
            .map(|q| q.items.lock().expect("queue lock").len());
        Box::pin(std::future::ready(size))
    }

    fn maxsize(&self, name: &str) -> Result<usize, QueueError> {
        Ok(self.queue(name)?.config.max_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(max_size: usize) -> EmbeddedQueues {
        EmbeddedQueues::new([QueueConfig {
            name: "q".into(),
            max_size,
            max_item_size: 16,
        }])
    }

    const SHORT: Wait = Wait::For(Duration::from_millis(20));

    #[tokio::test]
    async fn fifo_and_nowait_errors() {
        let q = queues(2);
        q.put("q", b"a".to_vec(), Wait::No).await.unwrap();
        q.put("q", b"b".to_vec(), Wait::No).await.unwrap();
        assert_eq!(q.put("q", b"c".to_vec(), Wait::No).await, Err(QueueError::Full));
        assert_eq!(q.put("q", b"c".to_vec(), SHORT).await, Err(QueueError::Timeout));
        assert_eq!(q.qsize("q").await, Ok(2));
        assert_eq!(q.get("q", Wait::No).await.unwrap(), b"a");
        assert_eq!(q.get("q", Wait::No).await.unwrap(), b"b");
        assert_eq!(q.get("q", Wait::No).await, Err(QueueError::Empty));
        assert_eq!(q.get("q", SHORT).await, Err(QueueError::Timeout));
        assert_eq!(
            q.get("nope", Wait::No).await,
            Err(QueueError::Unknown("nope".into()))
        );
        assert_eq!(
            q.put("q", vec![0; 17], Wait::No).await,
            Err(QueueError::TooLarge(16))
        );
    }

    #[tokio::test]
    async fn a_cancelled_get_takes_nothing() {
        let q = queues(0);
        assert_eq!(q.get("q", SHORT).await, Err(QueueError::Timeout));
        q.put("q", b"x".to_vec(), Wait::No).await.unwrap();
        assert_eq!(q.get("q", Wait::No).await.unwrap(), b"x");
    }

    #[tokio::test]
    async fn join_waits_for_every_task_done() {
        let q = queues(0);
        q.join("q", Wait::No).await.unwrap();
        q.put("q", b"1".to_vec(), Wait::No).await.unwrap();
        q.put("q", b"2".to_vec(), Wait::No).await.unwrap();
        assert_eq!(q.join("q", SHORT).await, Err(QueueError::Timeout));
        q.get("q", Wait::No).await.unwrap();
        q.task_done("q", None).await.unwrap();
        assert_eq!(q.join("q", Wait::No).await, Err(QueueError::Timeout));
        q.get("q", Wait::No).await.unwrap();
        q.task_done("q", None).await.unwrap();
        q.join("q", Wait::No).await.unwrap();
        assert_eq!(q.task_done("q", None).await, Err(QueueError::TooManyTaskDone));
    }
}
