//! Services: the app-wide backends capabilities use (kv, broker, queues,
//! scheduler), each behind a trait so a second backend (Redis, when
//! clustered) can be added without touching the capabilities.
//!
//! **Rule:** no wasmtime, no hyper, no `App`: plain async Rust over tokio.
//! A service imports nothing above it.

pub mod queues;

use std::sync::Arc;

/// The app's backends, one per service; `App` holds one and the handler
/// drivers give each instance's capabilities a handle.
#[derive(Clone)]
pub struct Services {
    /// Named queues (`[queue.NAME]`).
    pub queues: Arc<dyn queues::Queues>,
}

impl Services {
    /// The embedded default of every service, from the app's manifest.
    pub fn embedded(manifest: &crate::manifest::Manifest) -> Self {
        Services {
            queues: Arc::new(queues::EmbeddedQueues::new(manifest.queues.iter().map(|q| {
                queues::QueueConfig {
                    name: q.name.clone(),
                    max_size: q.max_size,
                    max_item_size: q.max_item_size,
                }
            }))),
        }
    }
}
