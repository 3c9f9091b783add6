//! Capability `wasi` (WASI 0.2: cli, io, clocks, random, filesystem,
//! sockets) with nothing granted: no files (but the handler's `data_dir`,
//! when its manifest grants one, at `/data`), environment, arguments or
//! sockets. Components built by rustc for wasm32-wasip2 import these even
//! when unused. The guest's stdout and stderr go to the host log.

use std::path::PathBuf;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use crate::capabilities::log::{GuestOutput, Tag};

/// The WASI context of one instance, built on the first WASI call: most
/// requests make none (seeding its random sources and boxing its streams is
/// a tenth of a request).
#[derive(Default)]
pub struct Wasi(Option<WasiCtx>, Option<PathBuf>);

/// Where a granted `data_dir` appears inside the guest.
pub const DATA_DIR_GUEST_PATH: &str = "/data";

impl Wasi {
    /// Nothing granted but `data_dir` (read-write at [`DATA_DIR_GUEST_PATH`]).
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Wasi(None, Some(data_dir))
    }

    /// The view wasmtime-wasi's host functions work through.
    pub fn view<'a>(&'a mut self, table: &'a mut ResourceTable, tag: &Tag) -> WasiCtxView<'a> {
        let data_dir = &self.1;
        WasiCtxView {
            ctx: self
                .0
                .get_or_insert_with(|| nothing_granted(tag, data_dir.as_ref())),
            table,
        }
    }
}

fn nothing_granted(tag: &Tag, data_dir: Option<&PathBuf>) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .stdout(GuestOutput::new(tag.clone(), "stdout"))
        .stderr(GuestOutput::new(tag.clone(), "stderr"))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(dir) = data_dir
        && let Err(e) = builder.preopened_dir(dir, DATA_DIR_GUEST_PATH, FsPerms::ReadWrite)
    {
        tracing::error!(handler = %tag.handler, "data_dir {}: {e}", dir.display());
    }
    builder.build()
}

/// Links every WASI 0.2 interface (wasmtime-wasi's own view pattern: the
/// store's data implements `WasiView` through [`Wasi::view`]).
pub fn add_to_linker<T: WasiView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}
