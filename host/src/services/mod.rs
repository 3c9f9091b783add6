//! Services: the app-wide backends capabilities use (kv, broker, queues,
//! scheduler), each behind a trait so a second backend (Redis, when
//! clustered) can be added without touching the capabilities.
//!
//! **Rule:** no wasmtime, no hyper, no `App`: plain async Rust over tokio.
//! A service imports nothing above it.
//!
//! [`Services`] is the set of backends one app holds; the handler drivers
//! hand each capability its backend when they admit an instance.

pub mod broker;
pub mod http_client;
pub mod kv;
mod kv_log;
pub mod queues;
pub mod redis;
pub mod web;

use std::path::Path;
use std::sync::Arc;

pub use self::http_client::{AllowedHosts, HttpClient, ReqwestClient};
pub use self::kv::{EmbeddedKv, Kv};

/// The app's service backends, shared by every instance of every handler.
#[derive(Clone)]
pub struct Services {
    pub kv: Arc<dyn Kv>,
    /// Pub/sub (long polling) and WebSocket groups.
    pub broker: Arc<dyn broker::Broker>,
    /// Named queues (`[queue.NAME]`).
    pub queues: Arc<dyn queues::Queues>,
    pub http_client: Arc<dyn HttpClient>,
    /// The node's Redis handle when the app runs as a cluster (`[cluster]`).
    pub cluster: Option<redis::Redis>,
}

/// Options of the embedded backends (from the manifest's `[app]`).
#[derive(Debug, Clone, Default)]
pub struct ServiceOptions<'a> {
    /// The app's queues (`[queue.NAME]`).
    pub queues: Vec<queues::QueueConfig>,
    /// Where the kv log lives; `None` keeps kv data in memory only.
    pub kv_dir: Option<&'a Path>,
}

impl Services {
    /// The embedded backends.
    pub fn embedded(options: ServiceOptions<'_>) -> Result<Services, ServiceError> {
        let kv: Arc<dyn Kv> = match options.kv_dir {
            Some(dir) => {
                Arc::new(EmbeddedKv::persistent(dir).map_err(|e| ServiceError::Kv(dir.to_owned(), e))?)
            }
            None => Arc::new(EmbeddedKv::in_memory()),
        };
        Ok(Services {
            kv,
            broker: Arc::new(broker::MemoryBroker::default()),
            queues: Arc::new(queues::EmbeddedQueues::new(options.queues)),
            http_client: Arc::new(ReqwestClient::default()),
            cluster: None,
        })
    }
}

impl Services {
    /// These services with the cluster's backends on Redis in place of the
    /// embedded ones (kv, broker, queues); the http client stays.
    pub fn clustered(
        mut self,
        config: &crate::manifest::ClusterConfig,
        queues: Vec<queues::QueueConfig>,
    ) -> Result<Services, ServiceError> {
        let handle = redis::Redis::start(config).map_err(ServiceError::Redis)?;
        self.kv = Arc::new(redis::kv::RedisKv::new(handle.clone()));
        self.broker = Arc::new(redis::broker::RedisBroker::new(
            handle.clone(),
            broker::BrokerLimits::default(),
        ));
        self.queues = Arc::new(redis::queues::RedisQueues::new(handle.clone(), queues));
        self.cluster = Some(handle);
        Ok(self)
    }
}

/// Why a backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot start the cluster's redis connection")]
    Redis(#[source] redis::RedisError),
    #[error("cannot open the kv data in {}", .0.display())]
    Kv(std::path::PathBuf, #[source] std::io::Error),
}
