//! `waterspout-bench`: starts each server itself on loopback, drives it with
//! `wrk`, and prints requests/sec with ratios measured in the same run.
//!
//! Run: `make bench` (release build, installs wrk with apt if missing), or
//! `cargo run --release -p waterspout-bench -- --quick` for one short pass.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

mod baseline;

#[derive(Debug, Parser)]
struct Args {
    /// One short pass (CI smoke test): 1 s per server, concurrency 64 only.
    #[arg(long)]
    quick: bool,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrency levels (open connections).
    #[arg(long, value_delimiter = ',', default_value = "1,64,256")]
    connections: Vec<u32>,
    /// Write the results as markdown to this file as well.
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
}

/// One measurement: a server at a concurrency.
#[derive(Debug, Clone)]
struct Sample {
    server: &'static str,
    connections: u32,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.duration = 1;
        args.connections = vec![64];
    }
    which_wrk()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let hello_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello");

    let mut samples = Vec::new();
    // The physical limit: plain hyper answering "Hello, world".
    {
        let (addr, stop) = runtime.block_on(baseline::start())?;
        for &c in &args.connections {
            samples.push(measure("hyper", addr, "/", c, args.duration)?);
        }
        let _ = stop.send(());
    }
    // Waterspout with the Rust hello guest, a fresh instance per request.
    {
        let app = waterspout::App::load(&hello_dir, waterspout::ServerConfig::default())
            .with_context(|| format!("loading {} (build it with `make serve` or `cargo test` first)", hello_dir.display()))?;
        let server = runtime.block_on(waterspout::server::start(app, "127.0.0.1:0".parse()?))?;
        let addr = server.local_addr();
        for &c in &args.connections {
            samples.push(measure("waterspout", addr, "/", c, args.duration)?);
        }
        runtime.block_on(server.shutdown());
    }

    let report = render(&samples);
    println!("{report}");
    if let Some(path) = args.markdown {
        std::fs::write(&path, &report)?;
    }
    Ok(())
}

fn which_wrk() -> anyhow::Result<()> {
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => bail!("wrk is not installed: run `make bench` (it installs wrk) or `apt-get install wrk`"),
    }
}

/// Runs wrk against `addr` and parses its summary.
fn measure(server: &'static str, addr: SocketAddr, path: &str, connections: u32, secs: u64) -> anyhow::Result<Sample> {
    let url = format!("http://{addr}{path}");
    // Warm up: fills the pooling allocator's slots and the connection pool.
    run_wrk(&url, connections, 1)?;
    let out = run_wrk(&url, connections, secs)?;
    let rps = field(&out, "Requests/sec:").context("wrk printed no Requests/sec")?;
    let p50_ms = latency(&out, "50%").unwrap_or(f64::NAN);
    let p99_ms = latency(&out, "99%").unwrap_or(f64::NAN);
    let errors = out.contains("Non-2xx") || out.contains("Socket errors");
    if errors {
        eprintln!("warning: {server} c={connections}: wrk reported errors:\n{out}");
    }
    eprintln!("{server:>12} c={connections:<4} {rps:>10.0} req/s  p50 {p50_ms:.3} ms  p99 {p99_ms:.3} ms");
    Ok(Sample {
        server,
        connections,
        rps,
        p50_ms,
        p99_ms,
    })
}

fn run_wrk(url: &str, connections: u32, secs: u64) -> anyhow::Result<String> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s"), "--latency", url])
        .output()
        .context("running wrk")?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::thread::sleep(Duration::from_millis(200));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn field(out: &str, name: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

/// wrk prints latency percentiles as `50%  1.23ms` (or us / s).
fn latency(out: &str, pct: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.trim_start().starts_with(pct))?;
    let value = line.split_whitespace().nth(1)?;
    let (num, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic())?);
    let num: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => num / 1000.0,
        "ms" => num,
        "s" => num * 1000.0,
        _ => return None,
    })
}

fn render(samples: &[Sample]) -> String {
    let mut out = String::from(
        "| server | connections | req/s | p50 ms | p99 ms | vs hyper |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for s in samples {
        let base = samples
            .iter()
            .find(|b| b.server == "hyper" && b.connections == s.connections)
            .map(|b| b.rps)
            .unwrap_or(f64::NAN);
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {:.0}% |\n",
            s.server,
            s.connections,
            s.rps,
            s.p50_ms,
            s.p99_ms,
            100.0 * s.rps / base
        ));
    }
    out
}
