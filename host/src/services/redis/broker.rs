//! Pub/sub and WebSocket groups on Redis.
//!
//! **Topics.** Per topic a counter `PREFIX:topic:NAME:seq` (the cursor:
//! INCR, so cursors are cluster-wide integers from 1) and a stream
//! `PREFIX:topic:NAME:log` whose entry ids are `CURSOR-0`, trimmed to the
//! history (`MAXLEN`). A publish is one Lua script: INCR, XADD, and a
//! PUBLISH of `CURSOR\nDATA` on `PREFIX:n:t:NAME`. Each node has one
//! subscriber connection for those notices: it keeps the last few messages
//! of each topic its waiters watch and wakes them through a `watch`, so a
//! publish costs a node one notice whatever its number of waiters, and a
//! waiter woken finds its messages in memory (Redis is read again only when
//! the notices have a gap, e.g. after a reconnect).
//!
//! **Groups.** Membership stays in this node's memory (a [`MemoryBroker`]);
//! a broadcast is a PUBLISH on `PREFIX:n:g:GROUP` that every node (this one
//! included) delivers to its own members. The count it returns is of this
//! node's members (the others' are not known without a round trip to each).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;

use super::{Notice, Redis, RedisError};
use crate::services::broker::{
    Broker, BrokerError, BrokerLimits, GroupMessage, Member, MemberId, MemoryBroker, TopicMessage,
};

/// Messages of a topic a node keeps from the notices, for its waiters.
const RECENT: usize = 64;

/// What a node knows of a topic its waiters watch.
struct LocalTopic {
    /// The newest cursor seen in a notice (or a read).
    newest: watch::Sender<u64>,
    /// The last notices, consecutive cursors.
    recent: VecDeque<TopicMessage>,
}

impl LocalTopic {
    fn new() -> Self {
        LocalTopic {
            newest: watch::channel(0).0,
            recent: VecDeque::new(),
        }
    }

    /// The messages after `after` if the notices hold all of them.
    fn after(&self, after: u64) -> Option<Vec<TopicMessage>> {
        let first = self.recent.front()?.cursor;
        let last = self.recent.back()?.cursor;
        (first <= after + 1 && last > after)
            .then(|| self.recent.iter().filter(|m| m.cursor > after).cloned().collect())
    }
}

struct Shared {
    redis: Redis,
    limits: BrokerLimits,
    /// Group members on this node; its checks of names and sizes.
    local: MemoryBroker,
    topics: Mutex<HashMap<String, LocalTopic>>,
}

/// The Redis broker.
pub struct RedisBroker {
    shared: Arc<Shared>,
}

/// KEYS: seq, log. ARGV: data, history, channel. Returns the cursor.
static PUBLISH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local c = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], c .. '-0', 'd', ARGV[1])
redis.call('PUBLISH', ARGV[3], c .. '\n' .. ARGV[1])
return c
",
    )
});

/// KEYS: seq, log. ARGV: after. Returns {newest, cursor1, data1, …}: the
/// kept messages after `after` (all of them when `after` is from the future).
static READ: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local newest = redis.call('GET', KEYS[1]) or '0'
local after = tonumber(ARGV[1])
if after > tonumber(newest) then after = 0 end
local out = {newest}
for _, e in ipairs(redis.call('XRANGE', KEYS[2], string.format('%d-1', after), '+')) do
  out[#out + 1] = string.match(e[1], '^(%d+)')
  out[#out + 1] = e[2][2]
end
return out
",
    )
});

fn unavailable(e: RedisError) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}

impl RedisBroker {
    pub fn new(redis: Redis, limits: BrokerLimits) -> RedisBroker {
        let shared = Arc::new(Shared {
            redis: redis.clone(),
            limits,
            local: MemoryBroker::new(limits),
            topics: Mutex::new(HashMap::new()),
        });
        let topic_prefix = redis.key(&["n", "t", ""]);
        let group_prefix = redis.key(&["n", "g", ""]);
        let weak = Arc::downgrade(&shared);
        redis.listen(redis.key(&["n", "*"]), move |notice| {
            let Some(shared) = weak.upgrade() else { return };
            match notice {
                Notice::Message { channel, payload } => {
                    if let Some(topic) = channel.strip_prefix(&topic_prefix) {
                        shared.topic_notice(topic, payload);
                    } else if let Some(group) = channel.strip_prefix(&group_prefix) {
                        shared.group_notice(group, payload);
                    }
                }
                Notice::Subscribed => shared.resync(),
            }
        });
        RedisBroker { shared }
    }
}

impl Shared {
    fn topic_keys(&self, topic: &str) -> (String, String) {
        (
            self.redis.key(&["topic", topic, "seq"]),
            self.redis.key(&["topic", topic, "log"]),
        )
    }

    /// A publish notice: `CURSOR\nDATA`.
    fn topic_notice(&self, topic: &str, payload: &[u8]) {
        let Some(split) = payload.iter().position(|&b| b == b'\n') else {
            return;
        };
        let Some(cursor) = std::str::from_utf8(&payload[..split])
            .ok()
            .and_then(|c| c.parse().ok())
        else {
            return;
        };
        let Ok(data) = std::str::from_utf8(&payload[split + 1..]) else {
            return;
        };
        let mut topics = self.topics.lock().expect("broker lock");
        // Only topics someone on this node waits on are kept.
        let Some(local) = topics.get_mut(topic) else {
            return;
        };
        if local.recent.back().is_some_and(|m| m.cursor + 1 != cursor) {
            local.recent.clear();
        }
        local.recent.push_back(TopicMessage {
            cursor,
            data: data.into(),
        });
        if local.recent.len() > RECENT {
            local.recent.pop_front();
        }
        local.newest.send_if_modified(|n| {
            let newer = cursor > *n;
            *n = (*n).max(cursor);
            newer
        });
    }

    /// The subscriber (re)connected: notices may have been missed. Forget
    /// what was kept and read every watched topic's cursor again.
    fn resync(self: &Arc<Self>) {
        let names: Vec<String> = {
            let mut topics = self.topics.lock().expect("broker lock");
            topics.retain(|_, t| t.newest.receiver_count() > 0);
            topics.values_mut().for_each(|t| t.recent.clear());
            topics.keys().cloned().collect()
        };
        if names.is_empty() {
            return;
        }
        let shared = self.clone();
        tokio::spawn(async move {
            let mut pipe = redis::pipe();
            for name in &names {
                pipe.cmd("GET").arg(shared.topic_keys(name).0);
            }
            let Ok(newest) = shared.redis.pipeline::<Vec<Option<u64>>>(pipe).await else {
                return;
            };
            let topics = shared.topics.lock().expect("broker lock");
            for (name, newest) in names.iter().zip(newest) {
                if let Some(t) = topics.get(name) {
                    t.newest.send_if_modified(|n| {
                        let newer = newest.unwrap_or(0) > *n;
                        *n = (*n).max(newest.unwrap_or(0));
                        newer
                    });
                }
            }
        });
    }

    /// A broadcast notice: `T` or `B`, then the message.
    fn group_notice(&self, group: &str, payload: &[u8]) {
        let message = match payload.split_first() {
            Some((b'T', text)) => match std::str::from_utf8(text) {
                Ok(text) => GroupMessage::Text(text.into()),
                Err(_) => return,
            },
            Some((b'B', bytes)) => GroupMessage::Binary(bytes.into()),
            _ => return,
        };
        // The local broadcast is immediate (no await inside).
        let _ = futures_util::FutureExt::now_or_never(self.local.broadcast(group, message));
    }

    /// Reads the kept messages after `after` from Redis.
    async fn read(&self, topic: &str, after: u64) -> Result<(u64, Vec<TopicMessage>), BrokerError> {
        let (seq, log) = self.topic_keys(topic);
        let mut invocation = READ.prepare_invoke();
        invocation.key(seq).key(log).arg(after);
        let out: Vec<String> = self.redis.script(invocation).await.map_err(unavailable)?;
        let mut out = out.into_iter();
        let newest = out.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut messages = Vec::new();
        while let (Some(cursor), Some(data)) = (out.next(), out.next()) {
            if let Ok(cursor) = cursor.parse() {
                messages.push(TopicMessage {
                    cursor,
                    data: data.into(),
                });
            }
        }
        Ok((newest, messages))
    }

    async fn wait(
        &self,
        topic: &str,
        after: u64,
        timeout: Duration,
    ) -> Result<Vec<TopicMessage>, BrokerError> {
        // Watch before reading: a publish between the two is not missed.
        let mut newest_rx = {
            let mut topics = self.topics.lock().expect("broker lock");
            if topics.len() >= self.limits.max_topics && !topics.contains_key(topic) {
                topics.retain(|_, t| t.newest.receiver_count() > 0);
            }
            topics
                .entry(topic.to_owned())
                .or_insert_with(LocalTopic::new)
                .newest
                .subscribe()
        };
        let (newest, kept) = self.read(topic, after).await?;
        if !kept.is_empty() {
            return Ok(kept);
        }
        // A cursor from the future waits for the first message after 0 (as
        // the embedded broker does: its read answered "all kept", none).
        let after = if after > newest { 0 } else { after };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // (The watch's guard is dropped inside: it holds the value's lock.)
            let woken = tokio::time::timeout_at(deadline, async {
                newest_rx.wait_for(|&n| n > after).await.is_ok()
            })
            .await;
            if woken != Ok(true) {
                return Ok(Vec::new());
            }
            let from_notices = {
                let topics = self.topics.lock().expect("broker lock");
                topics.get(topic).and_then(|t| t.after(after))
            };
            if let Some(messages) = from_notices {
                return Ok(messages);
            }
            let (_, kept) = self.read(topic, after).await?;
            if !kept.is_empty() {
                return Ok(kept);
            }
        }
    }
}

impl Broker for RedisBroker {
    fn publish(&self, topic: &str, data: String) -> BoxFuture<'_, Result<u64, BrokerError>> {
        let topic = topic.to_owned();
        Box::pin(async move {
            self.shared.local.check_topic(&topic, data.len())?;
            let (seq, log) = self.shared.topic_keys(&topic);
            let mut invocation = PUBLISH.prepare_invoke();
            invocation
                .key(seq)
                .key(log)
                .arg(data)
                .arg(self.shared.limits.history.max(1))
                .arg(self.shared.redis.key(&["n", "t", &topic]));
            self.shared.redis.script(invocation).await.map_err(unavailable)
        })
    }

    fn wait(
        &self,
        topic: &str,
        after: u64,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<TopicMessage>, BrokerError>> {
        let topic = topic.to_owned();
        Box::pin(async move {
            self.shared.local.check_topic(&topic, 0)?;
            self.shared.wait(&topic, after, timeout).await
        })
    }

    fn latest(&self, topic: &str) -> BoxFuture<'_, Result<u64, BrokerError>> {
        let topic = topic.to_owned();
        Box::pin(async move {
            self.shared.local.check_topic(&topic, 0)?;
            let seq = self.shared.topic_keys(&topic).0;
            let newest: Option<u64> = self
                .shared
                .redis
                .query(redis::cmd("GET").arg(seq).clone())
                .await
                .map_err(unavailable)?;
            Ok(newest.unwrap_or(0))
        })
    }

    fn member_id(&self) -> MemberId {
        self.shared.local.member_id()
    }

    fn join(&self, group: &str, id: MemberId, member: Arc<dyn Member>) -> Result<(), BrokerError> {
        self.shared.local.join(group, id, member)
    }

    fn leave(&self, group: &str, id: MemberId) {
        self.shared.local.leave(group, id)
    }

    fn leave_all(&self, id: MemberId) {
        self.shared.local.leave_all(id)
    }

    fn broadcast(&self, group: &str, message: GroupMessage) -> BoxFuture<'_, Result<u32, BrokerError>> {
        let group = group.to_owned();
        Box::pin(async move {
            self.shared.local.check_group(&group, message.len())?;
            let mut payload = Vec::with_capacity(message.len() + 1);
            match &message {
                GroupMessage::Text(text) => {
                    payload.push(b'T');
                    payload.extend_from_slice(text.as_bytes());
                }
                GroupMessage::Binary(bytes) => {
                    payload.push(b'B');
                    payload.extend_from_slice(bytes);
                }
            }
            // Every node delivers from the notice, this one included; the
            // count is this node's members now.
            self.shared
                .redis
                .query::<u64>(
                    redis::cmd("PUBLISH")
                        .arg(self.shared.redis.key(&["n", "g", &group]))
                        .arg(payload)
                        .clone(),
                )
                .await
                .map_err(unavailable)?;
            Ok(self.shared.local.members(&group) as u32)
        })
    }
}
