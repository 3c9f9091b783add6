//! `waterspout-bench`: one command that starts every server itself on
//! loopback, warms up, measures with `wrk` (or its own WebSocket client),
//! stops them, and writes BENCHMARKS.md and bench/chart.svg — ratios are
//! always to baselines measured in the same run.
//!
//! Run: `make bench` (release build; installs wrk with apt and, on first use,
//! wasmtime-cli 48.0.8 and Tornado 6 into target/bench-tools), or
//! `make bench-quick` for one short pass of scenario a (the CI smoke test).
//!
//! Scenarios: a (HTTP hello vs hyper, wasmtime serve, Tornado), b (request
//! path µs, criterion), c (WebSocket echo vs tokio-tungstenite; RSS with
//! 10,000 idle WebSockets), d (hot swap; its upload-to-visible and restart
//! timings alone: `--swap-bench`), h (three nodes on Redis vs one node:
//! publish-to-wake across nodes, deploy to all nodes), e (the guest languages: Python,
//! JavaScript and C hellos fresh and with instance reuse, the wasi:http 0.3
//! hello vs `wasmtime serve`, all vs Tornado), f (pub/sub on the chat
//! example: 10,000 suspended long polls, a broadcast to 10,000 WebSocket
//! group members), g (kv calls from a Rust and a Python guest vs their
//! hellos). A scenario is a function
//! returning markdown; new ones slot into `main`. A run replaces only the
//! sections of the scenarios it ran (`--scenarios e` keeps a–d).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

mod baseline;
mod chart;
mod cluster;
mod kv;
mod languages;
mod peers;
mod pubsub;
mod report;
mod swap;
mod swap_bench;
mod variants;
mod wrk;
mod ws;

#[derive(Debug, Parser)]
struct Args {
    /// One short pass of scenario a (CI smoke test): 2 s, 64 connections,
    /// in-process servers only; writes nothing.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run.
    #[arg(long, value_delimiter = ',', default_value = "a,b,c,d,e")]
    scenarios: Vec<String>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrency levels for scenario a.
    #[arg(long, value_delimiter = ',', default_value = "1,64,256")]
    connections: Vec<u32>,
    /// Concurrency levels for scenarios e (languages) and g (kv).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    language_connections: Vec<u32>,
    /// Scenario e: requests an instance serves with reuse (the `reuse` rows).
    #[arg(long, default_value_t = 1000)]
    reuse: u32,
    /// Idle WebSockets for scenario c.
    #[arg(long, default_value_t = 10_000)]
    idle_websockets: usize,
    /// Suspended long polls for scenario f (pub/sub on the chat example).
    #[arg(long, default_value_t = 10_000)]
    long_polls: usize,
    /// WebSocket group members for scenario f.
    #[arg(long, default_value_t = 10_000)]
    group_members: usize,
    /// Scenario f: long polls on the Python chat example (parked: no
    /// instance while they wait).
    #[arg(long, default_value_t = 10_000)]
    python_polls: usize,
    /// Scenario f: WebSocket group members on the Python chat example (each
    /// holds a CPython instance of several MiB: see BENCHMARKS.md).
    #[arg(long, default_value_t = 200)]
    python_waiters: usize,
    /// Skip the peers that must be installed (wasmtime serve, Tornado).
    #[arg(long)]
    no_peers: bool,
    /// Only the hot-swap timings of scenario d (upload to visible, restart
    /// to serving): printed, and written to --out when it is given.
    #[arg(long)]
    swap_bench: bool,
    /// Where to write the report (default: BENCHMARKS.md at the root).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One scenario-a measurement.
#[derive(Debug, Clone)]
pub struct HttpSample {
    pub server: String,
    pub connections: u32,
    pub result: wrk::WrkResult,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The directory this binary was built into (`target/release`, or
/// `target/debug`; under `$CARGO_TARGET_DIR` if set). `make bench` builds
/// the `waterspout` binary and the host's examples there in the same cargo
/// command, so every scenario runs one build.
pub fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the waterspout-bench binary")?;
    exe.parent()
        .map(Path::to_owned)
        .context("the waterspout-bench binary has no directory")
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.duration = 2;
        args.connections = vec![64];
        args.scenarios = vec!["a".into()];
        args.no_peers = true;
    }
    let root = root();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.swap_bench {
        let report = runtime.block_on(swap_bench::run(&root))?;
        println!("{report}");
        if let Some(out) = &args.out {
            std::fs::write(out, &report)?;
            eprintln!("written to {}", out.display());
        }
        return Ok(());
    }
    let (header, date, commit) = header(&root)?;
    let mut http = Vec::new();
    let mut sections = Vec::new();
    for scenario in &args.scenarios {
        let section = match scenario.as_str() {
            "a" => scenario_a(&runtime, &root, &args, &mut http)?,
            "b" => scenario_b(&root)?,
            "c" => scenario_c(&runtime, &root, &args)?,
            "d" => swap::scenario_d(&runtime, &root, args.duration)?,
            "e" => languages::scenario_e(
                &runtime,
                &root,
                args.duration,
                &args.language_connections,
                args.reuse,
                args.no_peers,
            )?,
            "f" => pubsub::scenario_f(
                &root,
                args.long_polls,
                args.group_members,
                args.python_polls,
                args.python_waiters,
            )?,
            "g" => kv::scenario_g(&runtime, &root, args.duration, &args.language_connections)?,
            "h" => cluster::scenario_h(&runtime, &root)?,
            other => anyhow::bail!("unknown scenario {other:?} (a, b, c, d, e, f, g, h)"),
        };
        println!("{section}");
        sections.push((scenario.clone(), report::stamped(&section, &date, &commit)));
    }
    if args.quick {
        // A smoke test: it must have measured something, and nothing failed.
        let errors: u64 = http.iter().map(|s| s.result.errors).sum();
        anyhow::ensure!(
            http.iter().all(|s| s.result.rps > 0.0),
            "a server answered nothing"
        );
        anyhow::ensure!(errors == 0, "{errors} failed requests");
        println!("bench: 1 passed, 0 failed");
        return Ok(());
    }
    let out = args.out.unwrap_or_else(|| root.join("BENCHMARKS.md"));
    if !http.is_empty() {
        let svg = root.join("bench/chart.svg");
        chart::http_chart(&http, &svg)?;
    }
    // What profiling found and what was tried: kept by hand in bench/NOTES.md.
    let notes = std::fs::read_to_string(root.join("bench/NOTES.md")).unwrap_or_default();
    // The sections of the scenarios not run this time stay as they were.
    let old = std::fs::read_to_string(&out).ok();
    let report = report::merge(old.as_deref(), &header, &sections, &notes);
    std::fs::write(&out, report)?;
    eprintln!("written to {}", out.display());
    Ok(())
}

/// The report's header (machine, toolchain, last run), and this run's date
/// and commit for the sections' stamps.
fn header(root: &Path) -> anyhow::Result<(String, String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split(':')
                    .nth(1)
                    .map(|m| m.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let kernel = command_output("uname", &["-r"]);
    let rustc = command_output("rustc", &["--version"]);
    let wrk = command_output("wrk", &["--version"])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let commit = command_output(
        "git",
        &["-C", &root.display().to_string(), "rev-parse", "--short", "HEAD"],
    );
    let mut out = String::new();
    writeln!(out, "# Benchmarks\n")?;
    writeln!(
        out,
        "Written by `make bench` (the release build of `waterspout-bench`). Every server is started by the tool on loopback, warmed up for 1 s, then measured; every ratio compares numbers taken in the same run, because these machines are noisy. A run of some scenarios (`--scenarios e`) rewrites only their sections; each section says when it was measured, the table below describes the latest run.\n"
    )?;
    writeln!(out, "| | |\n| --- | --- |")?;
    writeln!(out, "| date (latest run) | {date} |")?;
    writeln!(out, "| commit | {commit} |")?;
    writeln!(
        out,
        "| machine | {cpu}, {cores} cores, {:.1} GiB, Linux {kernel} |",
        mem as f64 / 1048576.0
    )?;
    writeln!(out, "| toolchain | {rustc}; wasmtime 48.0.8; release profile |")?;
    writeln!(
        out,
        "| load generator | {wrk}, one thread (`wrk -t1 -cN -dDs --latency`) on the same 2 cores |\n"
    )?;
    Ok((out, date, commit))
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn load_app(root: &Path, example: &str) -> anyhow::Result<std::sync::Arc<waterspout::App>> {
    let dir = root.join("examples").join(example);
    waterspout::App::load(&dir, waterspout::ServerConfig::default()).with_context(|| {
        format!(
            "loading {} (build the examples first: `make bench` does)",
            dir.display()
        )
    })
}

/// Scenario a: HTTP hello at each concurrency for every server.
fn scenario_a(
    runtime: &tokio::runtime::Runtime,
    root: &Path,
    args: &Args,
    samples: &mut Vec<HttpSample>,
) -> anyhow::Result<String> {
    wrk::check_installed()?;
    // Every server is started first and left idle while the others are
    // measured; then, concurrency by concurrency, the servers are measured
    // back to back, so the numbers a ratio compares are seconds apart and
    // not minutes (this VM's speed drifts).
    let mut servers: Vec<(String, String)> = Vec::new();
    let (baseline_addr, baseline_stop) = baseline::start()?;
    servers.push(("hyper (baseline)".into(), format!("http://{baseline_addr}/")));
    let mut waterspouts = Vec::new();
    for (label, example) in [
        ("waterspout (Rust guest)", "hello"),
        ("waterspout (wasi:http)", "wasi-hello"),
    ] {
        let app = load_app(root, example)?;
        let server = runtime.block_on(waterspout::server::start(app, "127.0.0.1:0".parse()?))?;
        servers.push((label.into(), format!("http://{}/", server.local_addr())));
        waterspouts.push(server);
    }
    let mut notes = Vec::new();
    let mut peers = Vec::new();
    if !args.no_peers {
        let component = root.join("examples/target/wasm32-wasip2/release/wasi_hello.wasm");
        match peers::wasmtime_serve(root, &component) {
            Ok(peer) => {
                servers.push(("wasmtime serve 48".into(), format!("http://{}/", peer.addr)));
                peers.push(peer);
            }
            Err(e) => notes.push(format!("wasmtime serve skipped: {e:#}")),
        }
        match peers::tornado(root) {
            Ok((peer, version)) => {
                servers.push((format!("Tornado {version}"), format!("http://{}/", peer.addr)));
                peers.push(peer);
            }
            Err(e) => notes.push(format!("Tornado skipped: {e:#}")),
        }
    }
    for &c in &args.connections {
        for (server, url) in &servers {
            let result = wrk::measure(url, c, args.duration)?;
            eprintln!(
                "{server:>22} c={c:<4} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {}",
                result.rps, result.p50_ms, result.p99_ms, result.errors
            );
            samples.push(HttpSample {
                server: server.clone(),
                connections: c,
                result,
            });
        }
    }
    let _ = baseline_stop.send(true);
    for server in waterspouts {
        runtime.block_on(server.shutdown());
    }
    drop(peers);
    // Rows grouped by server, in the order they were started.
    let order = |name: &str| servers.iter().position(|(s, _)| s == name);
    samples.sort_by_key(|s| (order(&s.server), s.connections));
    let mut out = String::from("## a. HTTP hello\n\n");
    writeln!(
        out,
        "`GET /` → `Hello, world`. Waterspout makes a fresh instance per request. `wasmtime serve` runs the very same wasi:http component as the wasi:http row; Tornado runs the seed's hello world (one process). All servers are started first; at each concurrency they are measured back to back (the others idle), so a ratio compares numbers taken seconds apart. Waterspout and the hyper baseline run a thread per core (2 here).\n"
    )?;
    writeln!(
        out,
        "| server | connections | req/s | p50 ms | p99 ms | errors | vs hyper | vs wasmtime serve | vs Tornado |"
    )?;
    writeln!(out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")?;
    for s in samples.iter() {
        let base = |prefix: &str| {
            samples
                .iter()
                .find(|b| b.server.starts_with(prefix) && b.connections == s.connections)
                .map(|b| b.result.rps)
        };
        let ratio = |b: Option<f64>| {
            b.map(|b| format!("{:.2}×", s.result.rps / b))
                .unwrap_or_else(|| "–".into())
        };
        writeln!(
            out,
            "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {:.0}% | {} | {} |",
            s.server,
            s.connections,
            s.result.rps,
            s.result.p50_ms,
            s.result.p99_ms,
            s.result.errors,
            100.0 * s.result.rps / base("hyper").unwrap_or(f64::NAN),
            ratio(base("wasmtime serve")),
            ratio(base("Tornado")),
        )?;
    }
    for note in notes {
        writeln!(out, "\n_{note}_")?;
    }
    out.push('\n');
    Ok(out)
}

/// Scenario b: the criterion microbenchmark of the request path.
fn scenario_b(root: &Path) -> anyhow::Result<String> {
    let status = Command::new("cargo")
        .current_dir(root)
        // --workspace, like the Makefile's builds: the same features, so
        // cargo reuses the release build of every dependency.
        .args([
            "bench",
            "--workspace",
            "--bench",
            "request_path",
            "--",
            "--warm-up-time",
            "2",
            "--measurement-time",
            "5",
        ])
        .status()
        .context("running cargo bench")?;
    anyhow::ensure!(status.success(), "cargo bench failed");
    let built = profile_dir()?;
    let target_dir = built.parent().unwrap_or(&built);
    let mut out = String::from("## b. Per-request overhead (no sockets)\n\n");
    writeln!(
        out,
        "Criterion (`cargo bench -p waterspout-bench --bench request_path`), current-thread runtime, one request at a time through `dispatch::handle`.\n"
    )?;
    writeln!(out, "| what | mean µs | 95% CI µs |\n| --- | --- | --- |")?;
    for (name, what) in [
        (
            "instantiate",
            "new Store (WASI ctx, limits, epoch callback) + instantiate",
        ),
        (
            "hello",
            "whole request, Rust guest: route, instantiate, initialize, prepare, get, finish, on-finish, body",
        ),
        (
            "wasi-hello",
            "whole request, wasi:http guest: route, instantiate, handle, body",
        ),
    ] {
        // criterion writes into the target directory, beside the profiles.
        let path = target_dir.join(format!("criterion/request_path/{name}/new/estimates.json"));
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let mean = &json["mean"];
        let us = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN) / 1000.0;
        writeln!(
            out,
            "| {what} | {:.2} | {:.2}–{:.2} |",
            us(&mean["point_estimate"]),
            us(&mean["confidence_interval"]["lower_bound"]),
            us(&mean["confidence_interval"]["upper_bound"])
        )?;
    }
    out.push('\n');
    Ok(out)
}

/// Scenario c: WebSocket echo rate and idle-connection memory.
fn scenario_c(runtime: &tokio::runtime::Runtime, root: &Path, args: &Args) -> anyhow::Result<String> {
    let connections = 64;
    let (addr, task) = runtime.block_on(ws::baseline_echo())?;
    let baseline = ws::echo_rate(format!("ws://{addr}/"), connections, args.duration)?;
    task.abort();
    eprintln!("tokio-tungstenite echo: {baseline:.0} msgs/s");
    let app = load_app(root, "echo")?;
    let server = runtime.block_on(waterspout::server::start(app, "127.0.0.1:0".parse()?))?;
    let ours = ws::echo_rate(
        format!("ws://{}/echo", server.local_addr()),
        connections,
        args.duration,
    )?;
    runtime.block_on(server.shutdown());
    eprintln!("waterspout echo: {ours:.0} msgs/s");
    std::thread::sleep(Duration::from_millis(500));
    let idle = ws::idle_rss(root, args.idle_websockets);

    let mut out = String::from("## c. WebSockets\n\n");
    writeln!(
        out,
        "Echo: {connections} connections, each sending a 32-byte text message and waiting for the echo (round trips/s), client on its own thread in the same process.\n"
    )?;
    writeln!(
        out,
        "| server | msgs/s | vs tokio-tungstenite |\n| --- | --- | --- |"
    )?;
    writeln!(
        out,
        "| tokio-tungstenite echo (baseline) | {baseline:.0} | 100% |"
    )?;
    writeln!(
        out,
        "| waterspout `examples/echo` (one instance per connection) | {ours:.0} | {:.0}% |\n",
        100.0 * ours / baseline
    )?;
    match idle {
        Ok(idle) => {
            writeln!(
                out,
                "Idle: {} WebSockets open to `waterspout serve` on the echo component (a separate process): RSS {:.0} MiB before, {:.0} MiB with all open — {:.1} KiB per connection (host + guest instance).\n",
                idle.connections,
                idle.rss_before_mib,
                idle.rss_after_mib,
                (idle.rss_after_mib - idle.rss_before_mib) * 1024.0 / idle.connections as f64
            )?;
        }
        Err(e) => writeln!(out, "Idle WebSockets: failed: {e:#}\n")?,
    }
    Ok(out)
}
