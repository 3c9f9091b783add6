//! Timers: Tornado's `gen.sleep`.

use std::time::Duration;

use crate::bindings::raw_timers;

/// Waits `duration`. Only this request waits: its instance is suspended and
/// the server serves others meanwhile. The wait counts against the
/// handler's `timeout_ms`.
///
/// ```no_run
/// waterspout_sdk::timers::sleep(std::time::Duration::from_millis(100));
/// ```
pub fn sleep(duration: Duration) {
    raw_timers::sleep(duration.as_millis().min(u64::MAX as u128) as u64);
}
