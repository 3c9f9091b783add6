//! Queues on Redis: a queue is shared by every node; a worker on any node
//! takes its items.
//!
//! Per queue `NAME`: the list `PREFIX:q:NAME:items`, the counter
//! `PREFIX:q:NAME:unfinished` (items put and not yet marked done: INCR on
//! put, DECR on task_done, so `join` holds across nodes), and per node the
//! list `PREFIX:q:NAME:taken:NODE` of the items it took and has not marked
//! done. `get` moves an item from `items` to the node's `taken` list in one
//! step (LMOVE, in a script); `task_done` removes it. A node whose heartbeat
//! stops (`Redis::dead_nodes`, 5 s) is a crashed node: any other node moves
//! its `taken` items back to the front of `items` (redelivery: at least
//! once), then forgets it.
//!
//! Waiting: each operation is tried at once; when it cannot go on (empty,
//! full, unfinished tasks) it waits for a notice on `PREFIX:n:q:NAME` (one
//! subscriber per node) or 250 ms, whichever comes first, and tries again,
//! until its time is up. A Redis outage during a wait is waited through;
//! `Wait::No` answers `Unavailable` at once. Waiters on different nodes are
//! not served in arrival order (on one node they race for the same notice).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{NODE_TTL, Notice, Redis, RedisError};
use crate::services::queues::{QueueConfig, QueueError, Queues, Wait};

/// Longest pause between two tries of a waiting operation.
const POLL: Duration = Duration::from_millis(250);
/// How often a node looks for dead nodes' items.
const REAP_EVERY: Duration = Duration::from_secs(2);

/// KEYS: items, unfinished. ARGV: item, max size (0: none), channel.
/// 1: put; 0: full.
static PUT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local max = tonumber(ARGV[2])
if max > 0 and redis.call('LLEN', KEYS[1]) >= max then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], 'put')
return 1
",
    )
});

/// KEYS: items, taken. ARGV: channel. The item, or nil when empty.
static GET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
if item then redis.call('PUBLISH', ARGV[1], 'got') end
return item
",
    )
});

/// KEYS: taken, items. ARGV: item. Undoes a GET whose caller went away.
static UNGET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('LREM', KEYS[1], -1, ARGV[1]) > 0 then redis.call('LPUSH', KEYS[2], ARGV[1]) end
return 1
",
    )
});

/// KEYS: unfinished, taken. ARGV: "1" + item, or "0"; channel.
/// The unfinished count left, or -1 when there was none.
static DONE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then return -1 end
if ARGV[1] == '1' then
  if redis.call('LREM', KEYS[2], 1, ARGV[2]) == 0 then redis.call('LPOP', KEYS[2]) end
else
  redis.call('LPOP', KEYS[2])
end
n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('PUBLISH', ARGV[3], 'done') end
return n
",
    )
});

/// KEYS: taken (of a dead node), items. ARGV: channel. Moves every item
/// back to the front, oldest first; returns how many.
static REQUEUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do n = n + 1 end
if n > 0 then redis.call('PUBLISH', ARGV[1], 'put') end
return n
",
    )
});

struct Shared {
    redis: Redis,
    configs: HashMap<String, QueueConfig>,
    /// Bumped on every notice of a queue (and on a resubscription).
    notices: HashMap<String, watch::Sender<u64>>,
}

/// The Redis queues backend.
pub struct RedisQueues {
    shared: Arc<Shared>,
}

impl RedisQueues {
    pub fn new(redis: Redis, configs: impl IntoIterator<Item = QueueConfig>) -> RedisQueues {
        let configs: HashMap<String, QueueConfig> =
            configs.into_iter().map(|c| (c.name.clone(), c)).collect();
        let notices = configs
            .keys()
            .map(|name| (name.clone(), watch::channel(0).0))
            .collect();
        let shared = Arc::new(Shared {
            redis: redis.clone(),
            configs,
            notices,
        });
        if !shared.configs.is_empty() {
            let prefix = redis.key(&["n", "q", ""]);
            let weak = Arc::downgrade(&shared);
            redis.listen(redis.key(&["n", "q", "*"]), move |notice| {
                let Some(shared) = weak.upgrade() else { return };
                let bump = |tx: &watch::Sender<u64>| tx.send_modify(|n| *n = n.wrapping_add(1));
                match notice {
                    Notice::Message { channel, .. } => {
                        if let Some(tx) = channel.strip_prefix(&prefix).and_then(|q| shared.notices.get(q)) {
                            bump(tx);
                        }
                    }
                    Notice::Subscribed => shared.notices.values().for_each(bump),
                }
            });
            let weak = Arc::downgrade(&shared);
            redis.spawn(async move {
                let mut tick = tokio::time::interval(REAP_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(shared) = weak.upgrade() else { return };
                    shared.reap().await;
                }
            });
        }
        RedisQueues { shared }
    }
}

fn unavailable(e: RedisError) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

impl Shared {
    fn config(&self, name: &str) -> Result<&QueueConfig, QueueError> {
        self.configs
            .get(name)
            .ok_or_else(|| QueueError::Unknown(name.to_owned()))
    }

    fn key(&self, name: &str, what: &str) -> String {
        self.redis.key(&["q", name, what])
    }

    fn taken_key(&self, name: &str, node: &str) -> String {
        self.redis.key(&["q", name, "taken", node])
    }

    fn channel(&self, name: &str) -> String {
        self.redis.key(&["n", "q", name])
    }

    /// Runs `attempt` until it gives `Some`, waiting for the queue's notices
    /// between tries, within `wait`. `none` is the answer of `Wait::No`.
    async fn retry<T, F, Fut>(
        &self,
        name: &str,
        wait: Wait,
        none: QueueError,
        mut attempt: F,
    ) -> Result<T, QueueError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, QueueError>>,
    {
        let mut notices = self.notices.get(name).expect("a declared queue").subscribe();
        let deadline = match wait {
            Wait::For(limit) => Some(Instant::now() + limit),
            _ => None,
        };
        loop {
            notices.mark_unchanged();
            match attempt().await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) if wait == Wait::No => return Err(none),
                Err(e) if wait == Wait::No => return Err(e),
                // Empty, full, or Redis down: wait for a notice or the poll.
                Ok(None) | Err(QueueError::Unavailable(_)) => {}
                Err(e) => return Err(e),
            }
            let pause = match deadline {
                Some(deadline) if Instant::now() >= deadline => return Err(QueueError::Timeout),
                Some(deadline) => deadline.min(Instant::now() + POLL),
                None => Instant::now() + POLL,
            };
            let _ = tokio::time::timeout_at(pause, notices.changed()).await;
        }
    }

    async fn put(&self, name: &str, item: Vec<u8>) -> Result<Option<()>, QueueError> {
        let config = self.config(name)?;
        let mut invocation = PUT.prepare_invoke();
        invocation
            .key(self.key(name, "items"))
            .key(self.key(name, "unfinished"))
            .arg(item)
            .arg(config.max_size)
            .arg(self.channel(name));
        let put: i64 = self.redis.script(invocation).await.map_err(unavailable)?;
        Ok((put == 1).then_some(()))
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, QueueError> {
        self.config(name)?;
        let items = self.key(name, "items");
        let taken = self.taken_key(name, self.redis.node());
        let channel = self.channel(name);
        let (tx, rx) = tokio::sync::oneshot::channel();
        // The move runs to its end on the Redis thread even if this caller
        // goes away meanwhile (a worker told to stop, a request timed out):
        // then the item goes back to the front of the queue.
        self.redis
            .run(move |mut connection| async move {
                let mut invocation = GET.prepare_invoke();
                invocation.key(&items).key(&taken).arg(channel);
                let item: Option<Vec<u8>> = invocation.invoke_async(&mut connection).await?;
                if let Err(Some(item)) = tx.send(item) {
                    let mut undo = UNGET.prepare_invoke();
                    undo.key(&taken).key(&items).arg(item);
                    undo.invoke_async::<()>(&mut connection).await?;
                }
                Ok(())
            })
            .await
            .map_err(unavailable)?;
        rx.await
            .map_err(|_| QueueError::Unavailable("the redis call ended without an answer".into()))
    }

    async fn unfinished(&self, name: &str) -> Result<Option<()>, QueueError> {
        self.config(name)?;
        let n: Option<i64> = self
            .redis
            .query(redis::cmd("GET").arg(self.key(name, "unfinished")).clone())
            .await
            .map_err(unavailable)?;
        Ok((n.unwrap_or(0) <= 0).then_some(()))
    }

    /// Moves the items dead nodes took back into their queues. Only while
    /// Redis has answered for a node lifetime: after an outage every
    /// heartbeat is old, and the nodes need time to show they live.
    async fn reap(&self) {
        if self
            .redis
            .up_for()
            .is_none_or(|up| up < NODE_TTL + Duration::from_secs(1))
        {
            return;
        }
        let Ok(dead) = self.redis.dead_nodes().await else {
            return;
        };
        for node in dead.iter().filter(|n| *n != self.redis.node()) {
            let mut moved = 0;
            let mut failed = false;
            for name in self.configs.keys() {
                let mut invocation = REQUEUE.prepare_invoke();
                invocation
                    .key(self.taken_key(name, node))
                    .key(self.key(name, "items"))
                    .arg(self.channel(name));
                match self.redis.script::<i64>(invocation).await {
                    Ok(n) => moved += n,
                    Err(_) => failed = true,
                }
            }
            if failed {
                continue;
            }
            if moved > 0 {
                tracing::warn!(
                    "node {node:?} stopped answering: {moved} unfinished queue items go to other workers"
                );
            }
            let _ = self.redis.forget_node(node).await;
        }
    }
}

impl Queues for RedisQueues {
    fn put<'a>(&'a self, name: &'a str, item: Vec<u8>, wait: Wait) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let max = self.shared.config(name)?.max_item_size;
            if item.len() > max {
                return Err(QueueError::TooLarge(max as u64));
            }
            self.shared
                .retry(name, wait, QueueError::Full, || {
                    self.shared.put(name, item.clone())
                })
                .await
        })
    }

    fn get<'a>(&'a self, name: &'a str, wait: Wait) -> BoxFuture<'a, Result<Vec<u8>, QueueError>> {
        Box::pin(async move {
            self.shared
                .retry(name, wait, QueueError::Empty, || self.shared.get(name))
                .await
        })
    }

    fn task_done<'a>(
        &'a self,
        name: &'a str,
        item: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            self.shared.config(name)?;
            let mut invocation = DONE.prepare_invoke();
            invocation
                .key(self.shared.key(name, "unfinished"))
                .key(self.shared.taken_key(name, self.shared.redis.node()))
                .arg(if item.is_some() { "1" } else { "0" })
                .arg(item.unwrap_or_default())
                .arg(self.shared.channel(name));
            let left: i64 = self.shared.redis.script(invocation).await.map_err(unavailable)?;
            if left < 0 {
                return Err(QueueError::TooManyTaskDone);
            }
            Ok(())
        })
    }

    fn join<'a>(&'a self, name: &'a str, wait: Wait) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let no = match wait {
                Wait::No => QueueError::Timeout,
                _ => QueueError::Timeout,
            };
            self.shared
                .retry(name, wait, no, || self.shared.unfinished(name))
                .await
        })
    }

    fn qsize<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<usize, QueueError>> {
        Box::pin(async move {
            self.shared.config(name)?;
            self.shared
                .redis
                .query(redis::cmd("LLEN").arg(self.shared.key(name, "items")).clone())
                .await
                .map_err(unavailable)
        })
    }

    fn maxsize(&self, name: &str) -> Result<usize, QueueError> {
        Ok(self.shared.config(name)?.max_size)
    }

    fn tracks_items(&self) -> bool {
        true
    }
}
