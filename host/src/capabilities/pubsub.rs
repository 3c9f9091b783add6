//! Capability `pubsub`: publish, wait (long polling) and latest over the
//! app's broker (`services::broker`), on the topics the handler's manifest
//! grants (`pubsub_topics`). `wait` suspends only the calling guest; it is
//! bounded by the handler's wait budget and ends with `closed` when the
//! client hangs up ([`super::waiting`]).
//!
//! Parking (`park_waits`): when the HTTP driver allows it, a `wait` that
//! would block does not suspend the guest; it ends the run with [`Parked`]
//! (a trap the driver recognises), the driver drops the instance, waits on
//! the broker itself and runs the request again, handing the outcome to the
//! new instance ([`Woke`]), whose same `wait` then answers at once.
//! `wait-or-park` parks without the trap: it answers `none` and the SDK
//! returns from the handler, so the instance may serve again.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasData, Linker};

use super::grants::Grants;
use super::waiting::{Interrupted, Waiting};
use crate::capabilities::bindings::pubsub::{self, Message, PubsubError};
use crate::services::broker::{Broker, BrokerError, TopicMessage};

/// The pubsub context of one instance: the broker and the handler's topics.
#[derive(Default)]
pub struct PubsubCtx {
    broker: Option<Arc<dyn Broker>>,
    topics: Grants,
    /// `Some` when a blocking `wait` may park the request (an HTTP request
    /// of a `park_waits` handler); holds what the parked wait got, if this
    /// run follows one.
    park: Option<Option<Woke>>,
    /// The wait a `wait-or-park` call parked on in this run.
    parked: Option<Parked>,
}

/// A run ended by a `wait` that parked: what the driver waits for.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the request parked on topic {topic:?} after cursor {after} (park_waits)")]
pub struct Parked {
    pub topic: String,
    pub after: u64,
    /// The wait's time: its own timeout, within the request's wait budget.
    pub timeout: Duration,
}

/// What a parked wait got, for the `wait` of the run that follows.
#[derive(Debug, Clone)]
pub struct Woke {
    pub topic: String,
    pub after: u64,
    /// The messages (none: the wait's time ran out), or the broker's error.
    pub outcome: Result<Vec<TopicMessage>, BrokerError>,
}

impl PubsubCtx {
    pub fn new(broker: Arc<dyn Broker>, topics: Grants) -> Self {
        PubsubCtx {
            broker: Some(broker),
            topics,
            park: None,
            parked: None,
        }
    }

    /// A blocking `wait` parks the request instead of suspending the guest;
    /// `woke` is what the wait the previous run parked on got.
    pub fn allow_parking(&mut self, woke: Option<Woke>) {
        self.park = Some(woke);
    }

    /// The wait a `wait-or-park` parked on in this run (the guest returned
    /// from its handler at once), if any.
    pub fn take_parked(&mut self) -> Option<Parked> {
        self.parked.take()
    }

    /// Whether a `wait-or-park` parked in this run.
    pub fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    fn broker(&self, topic: &str) -> Result<&Arc<dyn Broker>, PubsubError> {
        let broker = self
            .broker
            .as_ref()
            .ok_or_else(|| PubsubError::Unavailable("pub/sub is not available here".into()))?;
        if !self.topics.allows(topic) {
            return Err(PubsubError::Denied(format!(
                "topic {topic:?} is not granted to this handler (pubsub_topics in waterspout.toml)"
            )));
        }
        Ok(broker)
    }
}

/// What `pubsub` reaches in the store: its context and the instance's waiting budget.
pub struct PubsubView<'a> {
    pub ctx: &'a mut PubsubCtx,
    pub waiting: &'a mut Waiting,
    /// Whether the response has not started (a request that flushed cannot
    /// run again, so it does not park).
    pub unanswered: bool,
}

struct HasPubsub;

impl HasData for HasPubsub {
    type Data<'a> = PubsubView<'a>;
}

/// Links interface `pubsub`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> PubsubView<'_>,
) -> wasmtime::Result<()> {
    pubsub::add_to_linker::<T, HasPubsub>(linker, get)
}

fn from_broker(error: BrokerError) -> PubsubError {
    match error {
        BrokerError::Invalid(m) => PubsubError::Invalid(m),
        BrokerError::Unavailable(m) => PubsubError::Unavailable(m),
    }
}

/// How a wait ended: its messages (none at the timeout), or the request parks.
enum Waited {
    Messages(Vec<Message>),
    Park(Parked),
}

impl PubsubView<'_> {
    async fn wait_or_park_now(
        &mut self,
        topic: String,
        after: u64,
        timeout_ms: u32,
    ) -> Result<Waited, PubsubError> {
        let broker = self.ctx.broker(&topic)?.clone();
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        if let Some(park) = &mut self.ctx.park {
            // The run after a parked wait: that wait's answer, at once.
            if let Some(woke) = park.take_if(|w| w.topic == topic && w.after == after) {
                return woke
                    .outcome
                    .map(|kept| Waited::Messages(messages(kept)))
                    .map_err(from_broker);
            }
            let timeout = timeout.min(self.waiting.remaining());
            if self.unanswered && !self.waiting.is_closed() && !timeout.is_zero() {
                // Whatever is kept answers now; otherwise the request parks.
                let kept = broker
                    .wait(&topic, after, Duration::ZERO)
                    .await
                    .map_err(from_broker)?;
                return Ok(if kept.is_empty() {
                    Waited::Park(Parked {
                        topic,
                        after,
                        timeout,
                    })
                } else {
                    Waited::Messages(messages(kept))
                });
            }
        }
        // The broker's own timeout is the wait's; the budget may cut it shorter.
        let wait = broker.wait(&topic, after, timeout);
        match self.waiting.wait(timeout, wait).await {
            Ok(Ok(kept)) => Ok(Waited::Messages(messages(kept))),
            Ok(Err(e)) => Err(from_broker(e)),
            Err(Interrupted::TimedOut) => Ok(Waited::Messages(Vec::new())),
            Err(Interrupted::Closed) => Err(PubsubError::Closed),
        }
    }
}

fn messages(kept: Vec<TopicMessage>) -> Vec<Message> {
    kept.into_iter()
        .map(|m| Message {
            cursor: m.cursor,
            data: m.data.to_string(),
        })
        .collect()
}

impl pubsub::Host for PubsubView<'_> {
    async fn publish(&mut self, topic: String, data: String) -> wasmtime::Result<Result<u64, PubsubError>> {
        let broker = match self.ctx.broker(&topic) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(broker.publish(&topic, data).await.map_err(from_broker))
    }

    async fn wait(
        &mut self,
        topic: String,
        after: u64,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<Message>, PubsubError>> {
        Ok(match self.wait_or_park_now(topic, after, timeout_ms).await {
            Ok(Waited::Messages(messages)) => Ok(messages),
            Ok(Waited::Park(parked)) => return Err(wasmtime::Error::new(parked)),
            Err(e) => Err(e),
        })
    }

    async fn wait_or_park(
        &mut self,
        topic: String,
        after: u64,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<Vec<Message>>, PubsubError>> {
        Ok(match self.wait_or_park_now(topic, after, timeout_ms).await {
            Ok(Waited::Messages(messages)) => Ok(Some(messages)),
            Ok(Waited::Park(parked)) => {
                self.ctx.parked = Some(parked);
                Ok(None)
            }
            Err(e) => Err(e),
        })
    }

    async fn latest(&mut self, topic: String) -> wasmtime::Result<Result<u64, PubsubError>> {
        let broker = match self.ctx.broker(&topic) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(broker.latest(&topic).await.map_err(from_broker))
    }
}
