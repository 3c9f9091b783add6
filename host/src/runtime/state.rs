//! Per-instance state: the data of one store (one request, or one WebSocket
//! connection). The capabilities' contexts, plus what the runtime needs to
//! bound the guest: its memory limiter and its deadline.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::capabilities::log::Tag;
use crate::capabilities::{Ctx, HasCtx};
use crate::runtime::shared::LaneClock;

/// Limits one instance's linear memory and tables, and remembers whether the
/// limit was what stopped the guest (so the log can say so).
pub struct Limiter {
    pub memory_limit: usize,
    pub memory_limit_hit: bool,
}

/// Tables (function references) are capped as well; a guest creating
/// elements without end hits this.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> Result<bool> {
        if desired > self.memory_limit {
            self.memory_limit_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of one store.
pub struct HostState {
    /// Every capability's context.
    pub ctx: Ctx,
    pub limiter: Limiter,
    /// The current call's time limit ends here; the epoch callback traps after it.
    pub deadline: Instant,
    pub timed_out: bool,
    /// A shared instance (`concurrency` > 1): the deadlines of its requests
    /// in flight, which replace `deadline`.
    pub lane: Option<Arc<LaneClock>>,
}

impl HostState {
    pub fn new(tag: Tag, memory_limit: usize, deadline: Instant) -> Self {
        HostState {
            ctx: Ctx::new(tag),
            limiter: Limiter {
                memory_limit,
                memory_limit_hit: false,
            },
            deadline,
            timed_out: false,
            lane: None,
        }
    }
}

impl HostState {
    /// When the guest must stop running: the current call's deadline, or on
    /// a shared instance the earliest deadline of its requests in flight.
    pub(super) fn cpu_deadline(&self) -> Instant {
        match &self.lane {
            Some(clock) => clock.cpu_deadline(),
            None => self.deadline,
        }
    }
}

impl HostState {
    /// When the running call's CPU time runs out: a worker's current item's
    /// deadline (its queue item clock), else the call's (or its shared
    /// instance's, [`HostState::cpu_deadline`]).
    pub fn call_deadline(&self) -> Instant {
        self.ctx
            .queue
            .clock()
            .and_then(|clock| clock.deadline())
            .unwrap_or_else(|| self.cpu_deadline())
    }
}

impl HasCtx for HostState {
    fn capabilities(&mut self) -> &mut Ctx {
        &mut self.ctx
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let Ctx { wasi, table, tag, .. } = &mut self.ctx;
        wasi.view(table, tag)
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let Ctx {
            outbound_http, table, ..
        } = &mut self.ctx;
        outbound_http.view(table)
    }
}
