//! Scenario d: hot swap. Requests/sec and errors under load while the
//! handler is swapped every 100 ms, against the same load without swapping;
//! then the upload-to-visible and restart times of [`swap_bench`].

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::{swap_bench, wrk};

pub fn scenario_d(runtime: &tokio::runtime::Runtime, root: &Path, secs: u64) -> anyhow::Result<String> {
    let versions = ["version_a", "version_b"]
        .map(|v| root.join(format!("tests/guests/target/wasm32-wasip2/release/{v}.wasm")));
    let bytes: Vec<Vec<u8>> = versions
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {} (build the test guests)", p.display())))
        .collect::<Result<_, _>>()?;

    let token = "bench-token";
    let config = waterspout::ServerConfig {
        admin_listen: "127.0.0.1:0".parse()?,
        admin_token: waterspout::AdminToken::new(token),
        ..waterspout::ServerConfig::default()
    };
    let app = waterspout::App::load(&root.join("examples/hello"), config)?;
    let server = runtime.block_on(waterspout::server::start(app.clone(), "127.0.0.1:0".parse()?))?;
    let admin = runtime
        .block_on(waterspout::admin::start(app.clone()))?
        .context("admin API did not start")?;
    let url = format!("http://{}/", server.local_addr());
    let upload = format!("http://{}/handlers/hello/versions", admin.local_addr());

    let still = wrk::measure(&url, 64, secs)?;
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let failed_swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps, failed_swaps) = (stop.clone(), swaps.clone(), failed_swaps.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let ok = client
                    .post(&upload)
                    .bearer_auth(token)
                    .body(bytes[i % 2].clone())
                    .send()
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    swaps.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed_swaps.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let swapping = wrk::measure(&url, 64, secs);
    stop.store(true, Ordering::Relaxed);
    let _ = swapper.join();
    let swapping = swapping?;
    runtime.block_on(server.shutdown());
    runtime.block_on(admin.shutdown());
    drop(app);
    let timings = runtime.block_on(swap_bench::run(root));

    let mut out = String::from("## d. Hot swap\n\n");
    writeln!(
        out,
        "Load: wrk, 64 connections, {secs} s on `examples/hello`; \"swapping\" uploads `version-a` / `version-b` through the admin API every 100 ms during the run (each upload validates, compiles or loads from cache, swaps).\n"
    )?;
    writeln!(
        out,
        "| run | req/s | errors | swaps | vs no swapping |\n| --- | --- | --- | --- | --- |"
    )?;
    writeln!(
        out,
        "| no swapping | {:.0} | {} | 0 | 100% |",
        still.rps, still.errors
    )?;
    writeln!(
        out,
        "| swapping every 100 ms | {:.0} | {} | {} ({} refused) | {:.0}% |\n",
        swapping.rps,
        swapping.errors,
        swaps.load(Ordering::Relaxed),
        failed_swaps.load(Ordering::Relaxed),
        100.0 * swapping.rps / still.rps
    )?;
    match timings {
        Ok(text) => {
            // Its markdown has its own top heading; nest it.
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("# ") {
                    writeln!(out, "### {rest}")?;
                } else if let Some(rest) = line.strip_prefix("## ") {
                    writeln!(out, "#### {rest}")?;
                } else {
                    writeln!(out, "{line}")?;
                }
            }
        }
        Err(e) => writeln!(out, "_swap_bench failed: {e:#}_")?,
    }
    out.push('\n');
    Ok(out)
}
