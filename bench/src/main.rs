//! `waterspout-bench`: one command that starts every server itself on
//! loopback, warms up, measures with `wrk` (or its own WebSocket client),
//! stops them, and writes BENCHMARKS.md and bench/chart.svg — ratios are
//! always to baselines measured in the same run.
//!
//! Run: `make bench` (release build; installs wrk with apt and, on first use,
//! wasmtime-cli 48.0.8 and Tornado 6 into target/bench-tools), or
//! `make bench-quick` for one short pass of scenario a (the CI smoke test).
//!
//! Scenarios: a (http.rs: HTTP, every server a process of its own with its
//! CPU µs per request and RSS: the hello at 1–1024 connections vs hyper,
//! wasmtime serve, Tornado in one process and one per core, Waterspout's
//! access log on and off; 4 KiB and 64 KiB responses, a 16 KiB form POST,
//! 200 regex routes; 1/10/100 handlers), b (request
//! path µs, criterion), c (WebSocket echo vs tokio-tungstenite; RSS with
//! 10,000 idle WebSockets), d (hot swap; its upload-to-visible and restart
//! timings alone: `--swap-bench`), h (three nodes on Redis vs one node:
//! publish-to-wake across nodes, deploy to all nodes), e (the guest languages: Python,
//! JavaScript and C hellos fresh and with instance reuse, the wasi:http 0.3
//! hello vs `wasmtime serve`, all vs Tornado), f (pub/sub on the chat
//! example: 10,000 suspended long polls, a broadcast to 10,000 WebSocket
//! group members), g (kv calls from a Rust and a Python guest vs their
//! hellos), i (edge.rs: static files, full TLS handshakes per second and
//! HTTP/2 streams, against Debian's nginx on the same files and
//! certificate), j (spread.rs: 100,000 waiting connections over the nodes
//! of one cluster on Redis: group members, held and parked long polls).
//! A scenario is a function
//! returning markdown; new ones slot into `main`. A run replaces only the
//! sections of the scenarios it ran (`--scenarios e` keeps the others),
//! and writes the report after each scenario.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

mod baseline;
mod chart;
mod clients;
mod cluster;
mod edge;
mod h2load;
mod handshakes;
mod http;
mod kv;
mod languages;
mod peers;
mod procstat;
mod pubsub;
mod report;
mod spread;
mod swap;
mod swap_bench;
mod variants;
mod wrk;
mod ws;

/// The scenarios, in the order of the report.
const SCENARIOS: [&str; 10] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];

#[derive(Debug, Parser)]
struct Args {
    /// One short pass of scenario a (CI smoke test): 2 s, 64 connections,
    /// in-process servers only; writes nothing.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run.
    #[arg(long, value_delimiter = ',', default_value = "a,b,c,d,e,f,g,h,i,j")]
    scenarios: Vec<String>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrency levels for scenario a's hello.
    #[arg(long, value_delimiter = ',', default_value = "1,64,256,1024")]
    connections: Vec<u32>,
    /// Scenario a: the handler counts of "cost as handlers grow".
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    handlers: Vec<usize>,
    /// Scenario a without the bigger requests (4 KiB, 64 KiB, form POST, 200 routes).
    #[arg(long)]
    no_bigger: bool,
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
    /// Scenarios c and f at N connections: the idle WebSockets, and the
    /// Rust guests' long polls (held and parked), group members and the
    /// Python chat's parked polls (not its members: a CPython instance
    /// each). N is bounded by the open-files hard limit (every connection
    /// is a socket in the server and one in this process).
    #[arg(long, value_name = "N")]
    many: Option<usize>,
    /// Scenario j: connections spread over the nodes of one cluster (as
    /// many nodes as this machine's per-process limits ask for).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    spread: usize,
    /// Skip the peers that must be installed (wasmtime serve, Tornado).
    #[arg(long)]
    no_peers: bool,
    /// Only the hot-swap timings of scenario d (upload to visible, restart
    /// to serving): printed, and written to --out when it is given.
    #[arg(long)]
    swap_bench: bool,
    /// Where to write the report (default: BENCHMARKS.md at the root, its
    /// chart bench/chart.svg); the chart goes beside it, named after it
    /// (`--out /tmp/run.md` → /tmp/run.svg).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Internal: serve the plain hyper baseline on ADDR until killed
    /// (scenario a runs it as a process of its own).
    #[arg(long, hide = true, value_name = "ADDR")]
    serve_baseline: Option<String>,
    /// Internal: be one of scenario j's client processes (its orders in JSON).
    #[arg(long, hide = true, value_name = "JSON")]
    clients: Option<String>,
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
    if let Some(addr) = &args.serve_baseline {
        let (_addr, _stop) = baseline::start(addr)?;
        loop {
            std::thread::park();
        }
    }
    if let Some(spec) = &args.clients {
        return spread::clients(spec);
    }
    if args.quick {
        args.duration = 2;
        args.connections = vec![64];
        args.scenarios = vec!["a".into()];
        args.no_peers = true;
        args.handlers = vec![];
        args.no_bigger = true;
    }
    let root = root();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(n) = args.many {
        args.idle_websockets = n;
        args.long_polls = n;
        args.group_members = n;
        args.python_polls = n;
    }
    if args.swap_bench {
        let report = runtime.block_on(swap_bench::run(&root))?;
        println!("{report}");
        if let Some(out) = &args.out {
            std::fs::write(out, &report)?;
            eprintln!("written to {}", out.display());
        }
        return Ok(());
    }
    // A misspelt scenario is refused before an hour of measuring, not after.
    check_scenarios(&args.scenarios)?;
    let (header, date, commit) = header(&root)?;
    let (out, svg) = match &args.out {
        Some(out) => (out.clone(), out.with_extension("svg")),
        None => (root.join("BENCHMARKS.md"), root.join("bench/chart.svg")),
    };
    // The chart's link, relative to the report.
    let chart_link = report::relative_link(&out, &svg);
    // What profiling found and what was tried: kept by hand in bench/NOTES.md.
    let notes = std::fs::read_to_string(root.join("bench/NOTES.md")).unwrap_or_default();
    // The sections of the scenarios not run this time stay as they were.
    let old = std::fs::read_to_string(&out).ok();
    let mut http_results: Option<http::Results> = None;
    let mut sections = Vec::new();
    for scenario in &args.scenarios {
        let section = match scenario.as_str() {
            "a" => {
                let (results, notes) = http::run(
                    &root,
                    &args.connections,
                    args.duration,
                    args.no_peers,
                    &args.handlers,
                    !args.no_bigger,
                )?;
                let section = http::section(&results, &notes, args.duration)?;
                http_results = Some(results);
                section
            }
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
            "i" => edge::scenario_i(&runtime, &root, args.duration)?,
            "j" => spread::scenario_j(&root, args.spread)?,
            other => unreachable!("scenario {other:?} was checked above"),
        };
        println!("{section}");
        sections.push((scenario.clone(), report::stamped(&section, &date, &commit)));
        if args.quick {
            continue;
        }
        // Written after every scenario: one that fails later (or a run cut
        // short) keeps what was measured before it.
        if scenario == "a"
            && let Some(results) = &http_results
        {
            chart::http_chart(results, &svg)?;
            eprintln!("chart written to {}", svg.display());
        }
        let report = report::merge(old.as_deref(), &header, &sections, &notes, &chart_link);
        std::fs::write(&out, report)?;
        eprintln!("{} written to {}", section_title(&section), out.display());
    }
    if args.quick {
        // A smoke test: it must have measured something, and nothing failed.
        let http = http_results.as_ref().map_or(&[][..], |r| &r.hello[..]);
        // The rounds with wrk on a core of its own, when the machine has two.
        let pinned = http_results
            .as_ref()
            .and_then(|r| r.pinned.as_ref())
            .map_or(&[][..], |p| &p.rounds[..]);
        let results: Vec<&wrk::WrkResult> = http
            .iter()
            .map(|s| &s.result)
            .chain(pinned.iter().flat_map(|(hyper, hello)| [hyper, hello]))
            .collect();
        let errors: u64 = results.iter().map(|r| r.errors).sum();
        anyhow::ensure!(
            !http.is_empty() && results.iter().all(|r| r.rps > 0.0 && r.cpu_us > 0.0),
            "a server answered nothing, or its CPU time was not read"
        );
        anyhow::ensure!(errors == 0, "{errors} failed requests");
        println!("bench: 1 passed, 0 failed");
        return Ok(());
    }
    Ok(())
}

/// Every name one of [`SCENARIOS`].
fn check_scenarios(names: &[String]) -> anyhow::Result<()> {
    match names.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
        Some(other) => anyhow::bail!("unknown scenario {other:?} (one of {})", SCENARIOS.join(", ")),
        None => Ok(()),
    }
}

/// A section's heading without its `## `.
fn section_title(section: &str) -> &str {
    section.lines().next().unwrap_or("").trim_start_matches("## ")
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

pub fn command_output(cmd: &str, args: &[&str]) -> String {
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
                "Idle: {} WebSockets open to `waterspout serve` on the echo component (a separate process), opened one after another in {:.1} s: RSS {:.0} MiB before, {:.0} MiB with all open — {:.1} KiB per connection (host + guest instance).\n",
                idle.connections,
                idle.open_all.as_secs_f64(),
                idle.rss_before_mib,
                idle.rss_after_mib,
                (idle.rss_after_mib - idle.rss_before_mib) * 1024.0 / idle.connections as f64
            )?;
        }
        Err(e) => writeln!(out, "Idle WebSockets: failed: {e:#}\n")?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_scenario_is_refused_by_name_and_the_default_run_is_every_scenario() {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let err = check_scenarios(&names(&["a", "e", "k"])).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown scenario \"k\" (one of a, b, c, d, e, f, g, h, i, j)"
        );
        let default = Args::parse_from(["waterspout-bench"]).scenarios;
        assert_eq!(default, names(&SCENARIOS));
        check_scenarios(&default).unwrap();
    }
}
