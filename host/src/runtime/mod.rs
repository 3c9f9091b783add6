//! The runtime: the wasmtime engines, components (validation, the world they
//! implement, linking against the linkers the capability list builds),
//! per-instance state, and [`invoke`], the one place that runs a guest.
//!
//! **Rule:** the runtime knows wasmtime and the capabilities; never hyper,
//! the handler drivers, the server or `App`.

mod component;
mod engine;
mod handler_exports;
mod idle;
mod invoke;
mod shared;
mod state;
mod ticker;

pub use self::component::{ComponentError, Components, HandlerVersion, Prepared};
pub use self::engine::WasmEngine;
pub use self::handler_exports::{HandlerInstance, HandlerPre};
pub use self::idle::{IdleInstances, Warm};
pub use self::invoke::{Admission, Fault, Guest, configure_store};
pub use self::shared::{Ended, Job, job, run_shared};
pub use self::state::{HostState, Limiter};
pub use self::ticker::EPOCH_TICK;
pub(crate) use self::ticker::Running;
