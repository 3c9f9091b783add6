//! Capability `wasi` (WASI 0.2: cli, io, clocks, random, filesystem,
//! sockets) with nothing granted: no files, environment, arguments or
//! sockets. Components built by rustc for wasm32-wasip2 import these even
//! when unused. The guest's stdout and stderr go to the host log.

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capabilities::log::{GuestOutput, Tag};

/// The WASI context of one instance, built on the first WASI call: most
/// requests make none (seeding its random sources and boxing its streams is
/// a tenth of a request).
#[derive(Default)]
pub struct Wasi(Option<WasiCtx>);

impl Wasi {
    /// The view wasmtime-wasi's host functions work through.
    pub fn view<'a>(&'a mut self, table: &'a mut ResourceTable, tag: &Tag) -> WasiCtxView<'a> {
        WasiCtxView {
            ctx: self.0.get_or_insert_with(|| nothing_granted(tag)),
            table,
        }
    }
}

fn nothing_granted(tag: &Tag) -> WasiCtx {
    WasiCtx::builder()
        .stdout(GuestOutput::new(tag.clone(), "stdout"))
        .stderr(GuestOutput::new(tag.clone(), "stderr"))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

/// Links every WASI 0.2 interface (wasmtime-wasi's own view pattern: the
/// store's data implements `WasiView` through [`Wasi::view`]).
pub fn add_to_linker<T: WasiView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}
