//! Services: the app-wide backends capabilities use (kv, broker, queues,
//! scheduler), each behind a trait so a second backend (Redis, when
//! clustered) can be added without touching the capabilities.
//!
//! **Rule:** no wasmtime, no hyper, no `App`: plain async Rust over tokio.
//! A service imports nothing above it.

pub mod broker;

use std::sync::Arc;

/// The app's backends, one `Arc<dyn Trait>` each; the `App` holds one and
/// the handler drivers hand each capability its backend.
#[derive(Clone)]
pub struct Services {
    /// Pub/sub (long polling) and WebSocket groups.
    pub broker: Arc<dyn broker::Broker>,
}

impl Default for Services {
    /// The embedded backends.
    fn default() -> Self {
        Services {
            broker: Arc::new(broker::MemoryBroker::default()),
        }
    }
}
