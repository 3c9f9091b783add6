//! Driving `wrk` and reading its summary; with the server's pid, also what
//! the server spent (CPU per request, RSS while loaded) during the run.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::procstat;

use anyhow::{Context, bail};

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
pub struct WrkResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// Requests completed in the measured run.
    pub requests: u64,
    /// The server's CPU time (user + system, all its threads and child
    /// processes) per request, µs; NaN when the server was not watched.
    pub cpu_us: f64,
    /// The server's largest RSS sampled during the run (every 200 ms),
    /// MiB; NaN when not watched.
    pub rss_mib: f64,
    /// For a server of several processes (Tornado's `fork_processes`), the
    /// busiest one's share of the CPU they used over the run
    /// ([`procstat::busiest_share`]); NaN for one process.
    pub busiest_share: f64,
}

impl WrkResult {
    /// [`WrkResult::busiest_share`] as a percentage ("52%"); none for a
    /// server of one process.
    pub fn busiest_percent(&self) -> Option<String> {
        (!self.busiest_share.is_nan()).then(|| format!("{:.0}%", self.busiest_share * 100.0))
    }
}

pub fn check_installed() -> anyhow::Result<()> {
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => bail!("wrk is not installed: run `make bench` (it installs wrk) or `apt-get install wrk`"),
    }
}

/// Warms up for a second, then measures for `secs`.
pub fn measure(url: &str, connections: u32, secs: u64) -> anyhow::Result<WrkResult> {
    measure_server(url, connections, secs, None, None)
}

/// [`measure`], with a wrk Lua `script` (a POST body, paths spread over
/// handlers) and the server process `server` watched: its CPU time over
/// the measured run (not the warm-up) and its RSS while loaded.
pub fn measure_server(
    url: &str,
    connections: u32,
    secs: u64,
    script: Option<&Path>,
    server: Option<u32>,
) -> anyhow::Result<WrkResult> {
    measure_on(url, connections, secs, script, server, None)
}

/// [`measure_server`] with wrk on the cores `cpus` (a `taskset -c` list)
/// when given.
pub fn measure_on(
    url: &str,
    connections: u32,
    secs: u64,
    script: Option<&Path>,
    server: Option<u32>,
    cpus: Option<&str>,
) -> anyhow::Result<WrkResult> {
    run(url, connections, 1, script, cpus)?;
    let pids = server.map(procstat::tree).unwrap_or_default();
    let cpu_before = procstat::cpu_seconds_each(&pids);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pids, stop) = (pids.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut max = f64::NAN;
            while !pids.is_empty() && !stop.load(Ordering::Relaxed) {
                max = f64::max(max, procstat::rss_mib(&pids));
                std::thread::sleep(Duration::from_millis(200));
            }
            max
        })
    };
    let out = run(url, connections, secs, script, cpus);
    let used: Vec<f64> = procstat::cpu_seconds_each(&pids)
        .iter()
        .zip(&cpu_before)
        .map(|(after, before)| after - before)
        .collect();
    let cpu: f64 = used.iter().sum();
    stop.store(true, Ordering::Relaxed);
    let rss_mib = sampler.join().unwrap_or(f64::NAN);
    let out = out?;
    let rps = field(&out, "Requests/sec:").context("wrk printed no Requests/sec")?;
    let errors = count(&out, "Non-2xx or 3xx responses:") + socket_errors(&out);
    let requests = requests(&out).unwrap_or(0);
    Ok(WrkResult {
        rps,
        p50_ms: latency(&out, "50%").unwrap_or(f64::NAN),
        p99_ms: latency(&out, "99%").unwrap_or(f64::NAN),
        errors,
        requests,
        cpu_us: if pids.is_empty() || requests == 0 {
            f64::NAN
        } else {
            cpu * 1e6 / requests as f64
        },
        rss_mib,
        busiest_share: procstat::busiest_share(&used),
    })
}

fn run(
    url: &str,
    connections: u32,
    secs: u64,
    script: Option<&Path>,
    cpus: Option<&str>,
) -> anyhow::Result<String> {
    // One wrk thread: the machine has two cores and the server needs the other.
    let mut wrk = on_cpus("wrk", cpus);
    wrk.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(script) = script {
        wrk.arg("-s").arg(script);
    }
    let out = wrk.arg(url).output().context("running wrk")?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `program`, on the cores `cpus` (a `taskset -c` list) when given:
/// `taskset` execs it, so the child's pid is the program's.
pub fn on_cpus(program: impl AsRef<std::ffi::OsStr>, cpus: Option<&str>) -> Command {
    match cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.args(["-c", cpus]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn field(out: &str, name: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

/// `  1000 requests in 1.00s, 1.00MB read`
fn requests(out: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
}

fn count(out: &str, name: &str) -> u64 {
    field(out, name).map(|v| v as u64).unwrap_or(0)
}

/// `Socket errors: connect 0, read 0, write 0, timeout 0`
fn socket_errors(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// wrk prints latency percentiles as `50%  1.23ms` (or us / s).
fn latency(out: &str, pct: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.trim_start().starts_with(pct))?;
    duration_ms(line.split_whitespace().nth(1)?)
}

/// `142us`, `4.56ms`, `1.2s` (as wrk and h2load print them) → ms.
pub fn duration_ms(value: &str) -> Option<f64> {
    let (num, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic())?);
    let num: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => num / 1000.0,
        "ms" => num,
        "s" => num * 1000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n  Latency Distribution\n     50%  312.00us\n     75%  1.10ms\n     90%  2.00ms\n     99%    1.50s\n  1000 requests in 1.00s, 1.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 7\nRequests/sec:  51234.56\n";

    #[test]
    fn parses_wrk_output() {
        assert_eq!(field(SAMPLE, "Requests/sec:"), Some(51234.56));
        assert_eq!(latency(SAMPLE, "50%"), Some(0.312));
        assert_eq!(latency(SAMPLE, "99%"), Some(1500.0));
        assert_eq!(requests(SAMPLE), Some(1000));
        assert_eq!(
            count(SAMPLE, "Non-2xx or 3xx responses:") + socket_errors(SAMPLE),
            12
        );
    }
}
