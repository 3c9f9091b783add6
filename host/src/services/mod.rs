//! Services: the app-wide backends capabilities use (kv, broker, queues,
//! scheduler), each behind a trait so a second backend (Redis, when
//! clustered) can be added without touching the capabilities.
//!
//! **Rule:** no wasmtime, no hyper, no `App`: plain async Rust over tokio.
//! A service imports nothing above it.
//!
//! Empty for now: the services issue brings the first ones.

pub mod web;
