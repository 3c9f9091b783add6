//! Capability `pubsub`: publish, wait (long polling) and latest over the
//! app's broker (`services::broker`), on the topics the handler's manifest
//! grants (`pubsub_topics`). `wait` suspends only the calling guest; it is
//! bounded by the handler's wait budget and ends with `closed` when the
//! client hangs up ([`super::waiting`]).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasData, Linker};

use super::grants::Grants;
use super::waiting::{Interrupted, Waiting};
use crate::capabilities::bindings::pubsub::{self, Message, PubsubError};
use crate::services::broker::{Broker, BrokerError};

/// The pubsub context of one instance: the broker and the handler's topics.
#[derive(Default)]
pub struct PubsubCtx {
    broker: Option<Arc<dyn Broker>>,
    topics: Grants,
}

impl PubsubCtx {
    pub fn new(broker: Arc<dyn Broker>, topics: Grants) -> Self {
        PubsubCtx {
            broker: Some(broker),
            topics,
        }
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
        let broker = match self.ctx.broker(&topic) {
            Ok(b) => b.clone(),
            Err(e) => return Ok(Err(e)),
        };
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        // The broker's own timeout is the wait's; the budget may cut it shorter.
        let wait = broker.wait(&topic, after, timeout);
        let result = match self.waiting.wait(timeout, wait).await {
            Ok(Ok(messages)) => Ok(messages
                .into_iter()
                .map(|m| Message {
                    cursor: m.cursor,
                    data: m.data.to_string(),
                })
                .collect()),
            Ok(Err(e)) => Err(from_broker(e)),
            Err(Interrupted::TimedOut) => Ok(Vec::new()),
            Err(Interrupted::Closed) => Err(PubsubError::Closed),
        };
        Ok(result)
    }

    async fn latest(&mut self, topic: String) -> wasmtime::Result<Result<u64, PubsubError>> {
        let broker = match self.ctx.broker(&topic) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(broker.latest(&topic).await.map_err(from_broker))
    }
}
