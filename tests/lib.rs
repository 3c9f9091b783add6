//! Integration tests: the real server on 127.0.0.1:0 with real clients.
//!
//! `build.rs` builds every guest component first; [`guests`] names them.
//! [`harness`] is what the test binaries share.

/// Paths of the guest components and app directories `build.rs` built:
/// `HELLO_WASM`, `HELLO_APP`, `FAULTS_WASM`, `VERSION_A_WASM`, … plus
/// [`ALL_WASM`](guests::ALL_WASM) and [`ALL_APPS`](guests::ALL_APPS).
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

pub mod harness;
