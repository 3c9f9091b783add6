//! Logging into the host's log, tagged there with the handler and request id.
//!
//! Each level has a function taking a `&str` and a macro taking `format!`
//! arguments:
//!
//! ```no_run
//! use waterspout_sdk::log;
//!
//! log::info("starting");
//! let user = "ann";
//! log::warn!("user {user} tried again");
//! ```

use crate::bindings::raw_log::{self, Level};

/// Logs a message at `trace` level.
///
/// ```no_run
/// waterspout_sdk::log::trace("entering parse");
/// ```
pub fn trace(message: &str) {
    raw_log::log(Level::Trace, message);
}

/// Logs a message at `debug` level.
///
/// ```no_run
/// waterspout_sdk::log::debug("cache miss");
/// ```
pub fn debug(message: &str) {
    raw_log::log(Level::Debug, message);
}

/// Logs a message at `info` level.
///
/// ```no_run
/// waterspout_sdk::log::info("user signed in");
/// ```
pub fn info(message: &str) {
    raw_log::log(Level::Info, message);
}

/// Logs a message at `warn` level.
///
/// ```no_run
/// waterspout_sdk::log::warn("slow upstream");
/// ```
pub fn warn(message: &str) {
    raw_log::log(Level::Warn, message);
}

/// Logs a message at `error` level.
///
/// ```no_run
/// waterspout_sdk::log::error("payment failed");
/// ```
pub fn error(message: &str) {
    raw_log::log(Level::Error, message);
}

/// Logs a formatted message at `trace` level.
///
/// ```no_run
/// let step = 3;
/// waterspout_sdk::log::trace!("step {step}");
/// ```
#[doc(inline)]
pub use crate::__waterspout_log_trace as trace;

/// Logs a formatted message at `debug` level.
///
/// ```no_run
/// let key = "k";
/// waterspout_sdk::log::debug!("cache miss for {key}");
/// ```
#[doc(inline)]
pub use crate::__waterspout_log_debug as debug;

/// Logs a formatted message at `info` level.
///
/// ```no_run
/// let user = "ann";
/// waterspout_sdk::log::info!("{user} signed in");
/// ```
#[doc(inline)]
pub use crate::__waterspout_log_info as info;

/// Logs a formatted message at `warn` level.
///
/// ```no_run
/// let ms = 900;
/// waterspout_sdk::log::warn!("upstream took {ms} ms");
/// ```
#[doc(inline)]
pub use crate::__waterspout_log_warn as warn;

/// Logs a formatted message at `error` level.
///
/// ```no_run
/// let code = 502;
/// waterspout_sdk::log::error!("upstream answered {code}");
/// ```
#[doc(inline)]
pub use crate::__waterspout_log_error as error;

#[doc(hidden)]
#[macro_export]
macro_rules! __waterspout_log_trace {
    ($($arg:tt)*) => { $crate::log::trace(&::std::format!($($arg)*)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __waterspout_log_debug {
    ($($arg:tt)*) => { $crate::log::debug(&::std::format!($($arg)*)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __waterspout_log_info {
    ($($arg:tt)*) => { $crate::log::info(&::std::format!($($arg)*)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __waterspout_log_warn {
    ($($arg:tt)*) => { $crate::log::warn(&::std::format!($($arg)*)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __waterspout_log_error {
    ($($arg:tt)*) => { $crate::log::error(&::std::format!($($arg)*)) };
}
