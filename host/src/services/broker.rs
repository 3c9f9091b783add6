//! The broker: pub/sub topics with a bounded history and cursors (long
//! polling), and WebSocket groups (name → member connections). The embedded
//! default ([`MemoryBroker`]) keeps everything in this process's memory; a
//! clustered backend (Redis) implements the same trait.
//!
//! Waiting is cheap: a waiter holds a `watch` receiver of its topic and a
//! timer, nothing else; one publish wakes every waiter of the topic at once.
//! Group delivery goes through [`Member`], which the capability layer
//! implements with the connection's outbound queue, so a broadcast never
//! calls a member's guest.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;

/// One message of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMessage {
    /// Increasing per topic, from 1.
    pub cursor: u64,
    pub data: Arc<str>,
}

/// A message broadcast to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupMessage {
    Text(Arc<str>),
    Binary(Arc<[u8]>),
}

impl GroupMessage {
    pub fn len(&self) -> usize {
        match self {
            GroupMessage::Text(text) => text.len(),
            GroupMessage::Binary(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a broker call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// A bad name, a message too large, too many topics.
    #[error("{0}")]
    Invalid(String),
    /// The backend cannot be reached (never for the embedded one).
    #[error("{0}")]
    Unavailable(String),
}

/// One member connection of a group: where a broadcast is queued.
pub trait Member: Send + Sync {
    /// Queues `message` for the connection; `false` when it is closed or its
    /// write buffer is full (it misses this message).
    fn deliver(&self, message: &GroupMessage) -> bool;
}

/// A member's identity (one per connection), to leave groups by.
pub type MemberId = u64;

/// Pub/sub and groups, app-wide.
pub trait Broker: Send + Sync {
    /// Appends `data` to `topic` and wakes its waiters; returns its cursor.
    fn publish(&self, topic: &str, data: String) -> BoxFuture<'_, Result<u64, BrokerError>>;
    /// The kept messages of `topic` after `after`; when there are none,
    /// waits up to `timeout` for one (an empty list at the timeout). A
    /// cursor newer than the topic's newest (from before a restart)
    /// answers at once with every kept message.
    fn wait(
        &self,
        topic: &str,
        after: u64,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<TopicMessage>, BrokerError>>;
    /// The newest cursor of `topic` (0 before the first publish).
    fn latest(&self, topic: &str) -> BoxFuture<'_, Result<u64, BrokerError>>;

    /// A new member identity for one connection.
    fn member_id(&self) -> MemberId;
    fn join(&self, group: &str, id: MemberId, member: Arc<dyn Member>) -> Result<(), BrokerError>;
    fn leave(&self, group: &str, id: MemberId);
    /// Takes `id` out of every group (its connection ended).
    fn leave_all(&self, id: MemberId);
    /// Queues `message` on every member of `group`; returns how many took it.
    fn broadcast(&self, group: &str, message: GroupMessage) -> BoxFuture<'_, Result<u32, BrokerError>>;
}

/// Limits of the embedded broker.
#[derive(Debug, Clone, Copy)]
pub struct BrokerLimits {
    /// Messages kept per topic (the oldest go first).
    pub history: usize,
    /// Largest message (pub/sub or group), bytes.
    pub max_message_bytes: usize,
    /// Topics alive at once (a topic with history or waiters).
    pub max_topics: usize,
    /// Longest topic or group name, bytes.
    pub max_name_bytes: usize,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        BrokerLimits {
            history: 1000,
            max_message_bytes: 1 << 20,
            max_topics: 100_000,
            max_name_bytes: 256,
        }
    }
}

struct Topic {
    history: VecDeque<TopicMessage>,
    /// The newest cursor, watched by the waiters.
    newest: watch::Sender<u64>,
}

impl Topic {
    fn new() -> Self {
        Topic {
            history: VecDeque::new(),
            newest: watch::channel(0).0,
        }
    }

    fn after(&self, after: u64) -> Vec<TopicMessage> {
        let newest = *self.newest.borrow();
        // A cursor from the future: this process restarted since; all we have.
        let after = if after > newest { 0 } else { after };
        let first = self.history.partition_point(|m| m.cursor <= after);
        self.history.range(first..).cloned().collect()
    }
}

/// One group's member connections.
type Members = HashMap<MemberId, Arc<dyn Member>>;

/// The embedded broker: everything in memory, gone on restart.
pub struct MemoryBroker {
    limits: BrokerLimits,
    topics: Mutex<HashMap<String, Topic>>,
    groups: Mutex<HashMap<String, Members>>,
    next_member: AtomicU64,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        MemoryBroker::new(BrokerLimits::default())
    }
}

impl MemoryBroker {
    pub fn new(limits: BrokerLimits) -> Self {
        MemoryBroker {
            limits,
            topics: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(1),
        }
    }

    fn check_name(&self, what: &str, name: &str) -> Result<(), BrokerError> {
        if name.is_empty() {
            return Err(BrokerError::Invalid(format!("the {what} name is empty")));
        }
        if name.len() > self.limits.max_name_bytes {
            return Err(BrokerError::Invalid(format!(
                "the {what} name is longer than {} bytes",
                self.limits.max_name_bytes
            )));
        }
        Ok(())
    }

    fn check_size(&self, len: usize) -> Result<(), BrokerError> {
        if len > self.limits.max_message_bytes {
            return Err(BrokerError::Invalid(format!(
                "message too large ({len} bytes; at most {})",
                self.limits.max_message_bytes
            )));
        }
        Ok(())
    }

    /// Checks a topic name and a message size as [`Broker::publish`] does
    /// (for a backend keeping its topics elsewhere).
    pub fn check_topic(&self, topic: &str, len: usize) -> Result<(), BrokerError> {
        self.check_name("topic", topic)?;
        self.check_size(len)
    }

    /// Checks a group name and a message size as [`Broker::broadcast`] does.
    pub fn check_group(&self, group: &str, len: usize) -> Result<(), BrokerError> {
        self.check_name("group", group)?;
        self.check_size(len)
    }

    /// Members of `group` now.
    pub fn members(&self, group: &str) -> usize {
        let groups = self.groups.lock().expect("broker lock");
        groups.get(group).map_or(0, HashMap::len)
    }

    /// Runs `f` on `topic`, creating it (within `max_topics`) if needed.
    fn with_topic<R>(&self, topic: &str, f: impl FnOnce(&mut Topic) -> R) -> Result<R, BrokerError> {
        self.check_name("topic", topic)?;
        let mut topics = self.topics.lock().expect("broker lock");
        if let Some(t) = topics.get_mut(topic) {
            return Ok(f(t));
        }
        if topics.len() >= self.limits.max_topics {
            // Forget topics nobody waits on and nothing was kept in.
            topics.retain(|_, t| !t.history.is_empty() || t.newest.receiver_count() > 0);
            if topics.len() >= self.limits.max_topics {
                return Err(BrokerError::Invalid(format!(
                    "too many topics (at most {})",
                    self.limits.max_topics
                )));
            }
        }
        Ok(f(topics.entry(topic.to_owned()).or_insert_with(Topic::new)))
    }

    fn publish_now(&self, topic: &str, data: String) -> Result<u64, BrokerError> {
        self.check_size(data.len())?;
        let history = self.limits.history.max(1);
        self.with_topic(topic, |t| {
            let cursor = *t.newest.borrow() + 1;
            if t.history.len() >= history {
                t.history.pop_front();
            }
            t.history.push_back(TopicMessage {
                cursor,
                data: data.into(),
            });
            t.newest.send_replace(cursor);
            cursor
        })
    }

    async fn wait_now(
        &self,
        topic: &str,
        after: u64,
        timeout: Duration,
    ) -> Result<Vec<TopicMessage>, BrokerError> {
        let mut newest = match self.with_topic(topic, |t| {
            let kept = t.after(after);
            if kept.is_empty() {
                Err(t.newest.subscribe())
            } else {
                Ok(kept)
            }
        })? {
            Ok(kept) => return Ok(kept),
            Err(rx) => rx,
        };
        // (The watch's guard is dropped at once: it holds the value's lock.)
        let woken =
            tokio::time::timeout(timeout, async { newest.wait_for(|&n| n > after).await.is_ok() }).await;
        if woken != Ok(true) {
            return Ok(Vec::new());
        }
        self.with_topic(topic, |t| t.after(after))
    }
}

impl Broker for MemoryBroker {
    fn publish(&self, topic: &str, data: String) -> BoxFuture<'_, Result<u64, BrokerError>> {
        let result = self.publish_now(topic, data);
        Box::pin(std::future::ready(result))
    }

    fn wait(
        &self,
        topic: &str,
        after: u64,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<TopicMessage>, BrokerError>> {
        let topic = topic.to_owned();
        Box::pin(async move { self.wait_now(&topic, after, timeout).await })
    }

    fn latest(&self, topic: &str) -> BoxFuture<'_, Result<u64, BrokerError>> {
        let result = self.with_topic(topic, |t| *t.newest.borrow());
        Box::pin(std::future::ready(result))
    }

    fn member_id(&self) -> MemberId {
        self.next_member.fetch_add(1, Ordering::Relaxed)
    }

    fn join(&self, group: &str, id: MemberId, member: Arc<dyn Member>) -> Result<(), BrokerError> {
        self.check_name("group", group)?;
        let mut groups = self.groups.lock().expect("broker lock");
        groups.entry(group.to_owned()).or_default().insert(id, member);
        Ok(())
    }

    fn leave(&self, group: &str, id: MemberId) {
        let mut groups = self.groups.lock().expect("broker lock");
        if let Some(members) = groups.get_mut(group) {
            members.remove(&id);
            if members.is_empty() {
                groups.remove(group);
            }
        }
    }

    fn leave_all(&self, id: MemberId) {
        let mut groups = self.groups.lock().expect("broker lock");
        groups.retain(|_, members| {
            members.remove(&id);
            !members.is_empty()
        });
    }

    fn broadcast(&self, group: &str, message: GroupMessage) -> BoxFuture<'_, Result<u32, BrokerError>> {
        let result = self
            .check_name("group", group)
            .and_then(|()| self.check_size(message.len()))
            .map(|()| {
                // Deliver outside the lock: copy the member list first.
                let members: Vec<Arc<dyn Member>> = {
                    let groups = self.groups.lock().expect("broker lock");
                    groups
                        .get(group)
                        .map(|m| m.values().cloned().collect())
                        .unwrap_or_default()
                };
                members.iter().filter(|m| m.deliver(&message)).count() as u32
            });
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_is_bounded_and_cursors_increase() {
        let broker = MemoryBroker::new(BrokerLimits {
            history: 3,
            ..Default::default()
        });
        for i in 1..=5 {
            assert_eq!(broker.publish("t", format!("m{i}")).await.unwrap(), i);
        }
        let kept = broker.wait("t", 0, Duration::ZERO).await.unwrap();
        let cursors: Vec<u64> = kept.iter().map(|m| m.cursor).collect();
        assert_eq!(cursors, [3, 4, 5]);
        let after = broker.wait("t", 4, Duration::ZERO).await.unwrap();
        assert_eq!(&*after[0].data, "m5");
        assert_eq!(broker.latest("t").await.unwrap(), 5);
        // A cursor from the future answers with everything kept.
        assert_eq!(broker.wait("t", 99, Duration::ZERO).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn wait_wakes_on_publish_and_times_out() {
        let broker = Arc::new(MemoryBroker::default());
        let waiter = tokio::spawn({
            let broker = broker.clone();
            async move { broker.wait("t", 0, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        broker.publish("t", "hello".into()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(&*got[0].data, "hello");
        let none = broker.wait("t", 1, Duration::from_millis(30)).await.unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn bad_names_and_sizes_are_refused() {
        let broker = MemoryBroker::new(BrokerLimits {
            max_message_bytes: 4,
            ..Default::default()
        });
        assert!(matches!(
            broker.publish("", "x".into()).await,
            Err(BrokerError::Invalid(_))
        ));
        assert!(matches!(
            broker.publish("t", "12345".into()).await,
            Err(BrokerError::Invalid(_))
        ));
    }

    struct Counter(std::sync::atomic::AtomicUsize);
    impl Member for Counter {
        fn deliver(&self, _: &GroupMessage) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed);
            true
        }
    }

    #[tokio::test]
    async fn broadcast_reaches_members_until_they_leave() {
        let broker = MemoryBroker::default();
        let a = Arc::new(Counter(Default::default()));
        let b = Arc::new(Counter(Default::default()));
        let (ia, ib) = (broker.member_id(), broker.member_id());
        broker.join("g", ia, a.clone()).unwrap();
        broker.join("g", ib, b.clone()).unwrap();
        let text = GroupMessage::Text("hi".into());
        assert_eq!(broker.broadcast("g", text.clone()).await.unwrap(), 2);
        broker.leave("g", ia);
        assert_eq!(broker.broadcast("g", text.clone()).await.unwrap(), 1);
        broker.leave_all(ib);
        assert_eq!(broker.broadcast("g", text).await.unwrap(), 0);
        assert_eq!(a.0.load(Ordering::Relaxed), 1);
        assert_eq!(b.0.load(Ordering::Relaxed), 2);
    }
}
