//! The wasmtime engines: component model, pooling allocator, epoch
//! interruption (advanced by `ticker.rs`), and the on-disk compile cache.
//!
//! There are two. [`WasmEngine::engine`] serves every component that does
//! not use the component model's async ABI (the handler, WebSocket and
//! worker worlds, wasi:http 0.2) with wasmtime's concurrency support off:
//! a call is then a plain call on a fiber, not a task of the store's
//! concurrent event loop (~10% of a fresh hello request's CPU). The
//! concurrent engine serves WASI 0.3 components (async lifts, streams,
//! futures); it is built the first time such a component is compiled, so
//! a server without one reserves no second pool.

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::EngineConfig;
use crate::runtime::ticker::ticker;

/// Linear-memory slots in the main engine's pool at most. The pool reserves
/// them in one mapping, ~4 GiB of address space each (not resident), and
/// the largest hole in a process's 128 TiB (below the binary) is ~85 TiB:
/// 20,480 slots take ~81 TiB and map; 24,576 (97 TiB) fail.
const MAX_MEMORIES: u32 = 20_480;

/// Instances in the concurrent engine's pool at most (WASI 0.3 components
/// alive at once), beside the main pool's `max_instances`. Its memories
/// (two an instance: 16 TiB of address space) fit in the ~41 TiB hole above
/// the binary when the main pool has taken the one below; its stacks (two
/// mappings each, with the guard page) stay well inside the kernel's 65,530
/// mappings a process when the main pool has 20,000 of its own.
const MAX_CONCURRENT_INSTANCES: u32 = 2_048;

/// The engines, their epoch advanced by the process's ticker
/// (`ticker.rs`) while they live. Cloning is cheap (the concurrent engine
/// is shared).
#[derive(Clone)]
pub struct WasmEngine {
    /// Concurrency support off: every component without the async ABI.
    pub engine: Engine,
    shared: Arc<Shared>,
}

struct Shared {
    config: EngineConfig,
    /// Built on first use; an error is kept (it is the machine's, and the
    /// next component would meet it again).
    concurrent: OnceLock<Result<Engine, String>>,
}

impl WasmEngine {
    pub fn new(cfg: &EngineConfig) -> anyhow::Result<Self> {
        let engine = build(cfg, false)?;
        ticker().map_err(anyhow::Error::msg)?.register(&engine);
        let shared = Arc::new(Shared {
            config: cfg.clone(),
            concurrent: OnceLock::new(),
        });
        Ok(WasmEngine { engine, shared })
    }

    /// The engine with wasmtime's concurrency support on (WASI 0.3
    /// components), built on first use.
    pub fn concurrent(&self) -> Result<&Engine, &str> {
        self.shared
            .concurrent
            .get_or_init(|| {
                let engine = build(&self.shared.config, true).map_err(|e| format!("{e:#}"))?;
                ticker()?.register(&engine);
                Ok(engine)
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// One engine. `concurrent` turns on the component model's async ABI and
/// wasmtime's concurrency support, and caps the pool at
/// [`MAX_CONCURRENT_INSTANCES`].
fn build(cfg: &EngineConfig, concurrent: bool) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // WASI 0.3 (p3) components: async lifts and lowers, streams, futures.
    // Off, `call_async` is a plain call on a fiber: no guest task, no
    // waitable set, no concurrent state in the store.
    config.concurrency_support(concurrent);
    config.wasm_component_model_async(concurrent);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);

    let mut pool = PoolingAllocationConfig::default();
    let n = if concurrent {
        cfg.max_instances.min(MAX_CONCURRENT_INSTANCES)
    } else {
        cfg.max_instances
    };
    pool.total_component_instances(n);
    // `max_instances` counts component instances of any language. A Rust
    // component has a few core instances and one memory; a
    // componentize-py one has ~14 core instances (its runtime, libc and
    // the WASI adapters) and as many tables. Core-instance and table
    // slots are small (metadata, a table's elements), so there is room
    // for 16 each; memories are what reserve address space, so 2.
    pool.total_core_instances(n.saturating_mul(16));
    // Each memory slot reserves ~4 GiB of address space (bounds checks
    // elided): past ~10,000 instances two memories each no longer fit
    // and the engine would not start. Capped, the pool still holds one
    // memory per instance up to the cap (a Rust component has one).
    pool.total_memories(n.saturating_mul(2).min(MAX_MEMORIES));
    pool.total_tables(n.saturating_mul(16));
    pool.total_stacks(n);
    pool.max_memory_size(cfg.max_memory_bytes);
    // Reusing a slot must not cost page faults and TLB shootdowns (every
    // `madvise` on a 2-core VM is an IPI). With PAGEMAP_SCAN (Linux 6.7+)
    // wasmtime finds the pages a request dirtied and resets just those with
    // memset, up to this many bytes; older kernels fall back to madvise.
    // 2 MiB covers what a small handler dirties and bounds what an idle
    // slot keeps resident (1000 slots × 2 MiB; 8 MiB allowed 8 GiB).
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    pool.linear_memory_keep_resident(2 << 20);
    pool.table_keep_resident(1 << 20);
    // A freed slot stays affine to its module (its memory image stays
    // mapped) until a request of another module needs it. wasmtime's
    // default keeps only 100 such slots across all its shards (50 a
    // core here), so an app of 100 handlers kept re-imaging slots:
    // an `mmap` and TLB-shootdown IPIs a request (72 µs of server CPU
    // against 25 for one handler, scenario a). With the whole pool as
    // budget a never-used slot is taken before an affine one is
    // evicted; resident memory is still bounded by what the slots
    // dirtied, up to `linear_memory_keep_resident` each.
    pool.max_unused_warm_slots(n);
    // What still needs decommitting goes in batches: fewer IPIs.
    pool.decommit_batch_size(32);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    if let Some(dir) = &cfg.cache_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the compile cache {}", dir.display()))?;
        // wasmtime wants an absolute cache path.
        let dir = std::path::absolute(dir)?;
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(wasmtime::Cache::new(cache)?));
    }

    Ok(Engine::new(&config)?)
}
