//! Capability `wasi-p3` (WASI 0.3: cli, clocks, random, filesystem,
//! sockets; wasi:http 0.3 `types` and `client`, from wasmtime-wasi and
//! wasmtime-wasi-http's `p3` modules): what a WASI p3 component such as a
//! `wasi:http/service` imports. The same contexts as WASI 0.2 serve it:
//! nothing granted ([`super::wasi`]), and outbound requests go through the
//! handler's policy ([`super::outbound_http`]: denied unless
//! `allowed_outbound_hosts` lists the host), so a p3 guest gets exactly
//! what a p2 guest gets. wasmtime marks p3 experimental: the versions are
//! pinned exactly and the tests cover what is relied on.

use wasmtime::component::Linker;
use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::WasiHttpView;

/// Links every WASI 0.3 interface and wasi:http 0.3 (their versions differ
/// from WASI 0.2's, so both live in the concurrent engine's linker; the
/// main engine, without concurrency support, cannot link these).
pub fn add_to_linker<T: WasiView + WasiHttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p3::add_to_linker(linker)?;
    wasmtime_wasi_http::p3::add_to_linker(linker)
}
