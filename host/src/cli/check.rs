//! `waterspout check APP`: everything `serve` checks before it listens, without
//! serving. The manifest is parsed by the same parser (its errors name file and
//! line); every handler's component is compiled and linked by the same code as
//! start-up and the admin upload (`runtime::Components::prepare_logged`: the
//! world told by its exports, its imports against its engine's linker); then the
//! app is assembled as `serve` assembles it (`App::with_manifest`, on a
//! throw-away version store), which checks the rest (services, static files,
//! routes). One line per handler; the exit status says whether all is well.

use std::path::Path;

use crate::app::App;
use crate::config::ServerConfig;
use crate::manifest::{Manifest, ManifestError};
use crate::registry::World;
use crate::runtime::{Components, WasmEngine};

pub fn run(app: &Path, build: bool) -> anyhow::Result<()> {
    let manifest = Manifest::load(app)?;
    if build {
        super::build::build_app(&manifest)?;
    }
    let mut config = ServerConfig::default();
    config.engine.cache_dir = Some(manifest.dir.join(".waterspout").join("cache"));
    config.apply_manifest(&manifest)?;
    // As App::with_manifest sizes the engine: the largest handler's memory.
    let max_memory = manifest
        .handlers
        .iter()
        .map(|h| (h.limits.memory_limit_mb as usize) << 20)
        .max()
        .unwrap_or(0);
    let mut engine_config = config.engine.clone();
    engine_config.max_memory_bytes = engine_config.max_memory_bytes.max(max_memory);
    let wasm = WasmEngine::new(&engine_config)?;
    let components = Components::new(&wasm)?;

    let mut problems = 0;
    for spec in &manifest.handlers {
        match check_handler(&manifest, &components, spec) {
            Ok(line) => println!("ok    {line}"),
            Err(e) => {
                problems += 1;
                println!("FAIL  {e}");
            }
        }
    }
    drop(components);
    drop(wasm);
    anyhow::ensure!(
        problems == 0,
        "{problems} of {} handler(s) in {} failed the check",
        manifest.handlers.len(),
        manifest.file.display()
    );

    // Every component is good: assemble the app as `serve` does, on a
    // version store in memory (kv_persist needs a directory: a temporary one).
    let scratch = manifest
        .app
        .kv_persist
        .then(|| std::env::temp_dir().join(format!("waterspout-check-{}", std::process::id())));
    config.store_dir = scratch.clone();
    let file = manifest.file.clone();
    let routes = manifest.routes.len();
    let handlers = manifest.handlers.len();
    let assembled = App::with_manifest(manifest, config);
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    assembled?;
    println!("{}: {handlers} handler(s), {routes} route(s): ok", file.display());
    Ok(())
}

/// One handler: its component compiled and linked, its world fit for what
/// points at it. `Ok` is the line to print; `Err` names file, line, handler
/// and problem.
fn check_handler(
    manifest: &Manifest,
    components: &Components,
    spec: &crate::manifest::HandlerSpec,
) -> Result<String, ManifestError> {
    let fail =
        |message: String| manifest.error(Some(spec.line), format!("handler {:?}: {message}", spec.name));
    let bytes = std::fs::read(&spec.wasm).map_err(|e| {
        fail(format!(
            "cannot read {}: {e}{}",
            spec.wasm.display(),
            if spec.build.is_some() {
                " (run `waterspout build` first, or `check --build`)"
            } else {
                ""
            }
        ))
    })?;
    let (world, _prepared) = components
        .prepare_logged(&spec.name, &bytes)
        .map_err(|e| fail(format!("{}: {}", spec.wasm.display(), crate::text::report(&e))))?;
    let routed = manifest.routes.iter().find(|r| r.handler == spec.name);
    let worker = manifest.workers.iter().find(|w| w.handler == spec.name);
    if let (World::Worker, Some(route)) = (world, routed) {
        return Err(manifest.error(
            Some(route.line),
            format!(
                "route {:?} points at handler {:?}, a background worker (worker world), which serves no requests",
                route.pattern, spec.name
            ),
        ));
    }
    if let Some(worker) = worker.filter(|_| world != World::Worker) {
        return Err(manifest.error(
            Some(worker.line),
            format!(
                "[worker.{}]: handler {:?} implements the {} world, not the worker world",
                worker.name,
                spec.name,
                world.as_str()
            ),
        ));
    }
    let limits = &spec.limits;
    Ok(format!(
        "{name}  {world}  {size}  timeout {timeout} ms, memory {memory} MiB, max_instances {max}  ({file})",
        name = spec.name,
        world = world.as_str(),
        size = if bytes.len() < 1 << 20 {
            format!("{:.1} KiB", bytes.len() as f64 / 1024.0)
        } else {
            format!("{:.1} MiB", bytes.len() as f64 / f64::from(1u32 << 20))
        },
        timeout = limits.timeout_ms,
        memory = limits.memory_limit_mb,
        max = limits.max_instances,
        file = spec.wasm.display(),
    ))
}
