//! Capability `timers` (WIT interface `timers`): `sleep` suspends the
//! calling guest only. The guest's fiber waits on a tokio timer, holding no
//! worker thread; while it waits no wasm runs, so the epoch (CPU) deadline
//! does not tick for it, and the wait is bounded by the wall-clock limit
//! `runtime::invoke` puts around every call (the handler's `timeout_ms`).

use std::time::Duration;

use wasmtime::component::{HasData, Linker};

use crate::capabilities::bindings::timers;

/// Timers need no per-instance state; the field keeps the view pattern.
#[derive(Debug, Default)]
pub struct Timers;

struct HasTimers;

impl HasData for HasTimers {
    type Data<'a> = &'a mut Timers;
}

/// Links interface `timers`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut Timers,
) -> wasmtime::Result<()> {
    timers::add_to_linker::<T, HasTimers>(linker, get)
}

impl timers::Host for Timers {
    async fn sleep(&mut self, ms: u64) -> wasmtime::Result<()> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(())
    }
}
