//! `waterspout-c-adapter OUT.wasm`: writes the WASI preview1 reactor adapter
//! (for a wasmtime 48 host) to OUT.wasm.

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .expect("usage: waterspout-c-adapter OUT.wasm");
    std::fs::write(&out, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.to_string_lossy()));
}
