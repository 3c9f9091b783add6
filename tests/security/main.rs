//! The security corpus (issue 6, docs/SECURITY.md): one test binary, one
//! module per item. The load test (`load.rs`) is a binary of its own: it
//! keeps both cores busy (see Cargo.toml).
//!
//! Tests that measure this process's memory or latency take
//! [`measure_alone`](waterspout_tests::harness::measure_alone) first.

mod admin;
mod crash;
mod fuzz_regressions;
mod guest;
mod http;
mod slow;
mod websocket;
