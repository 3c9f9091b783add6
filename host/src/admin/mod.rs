//! Administration: the admin API (upload, activate, roll back, delete,
//! routes, metrics) on its own listener, and — with the `cli` feature — the
//! deploy client the `waterspout` command uses and `serve --watch`.
//!
//! **Rule:** the admin side changes the app only through `deploy/`; it
//! reuses the server's listener code and knows nothing of guests.

mod api;
#[cfg(feature = "cli")]
pub(crate) mod client;
mod console;
#[cfg(feature = "cli")]
pub(crate) mod watch;

pub use self::api::{AdminHandle, start};
