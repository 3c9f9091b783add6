//! Version B of the test worker: the same code, built under another crate
//! name (so its results say `queue-worker-b`).

include!("../../queue-worker/src/echo.rs");
