//! Driving `wrk` and reading its summary.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
pub struct WrkResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

pub fn check_installed() -> anyhow::Result<()> {
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => bail!("wrk is not installed: run `make bench` (it installs wrk) or `apt-get install wrk`"),
    }
}

/// Warms up for a second, then measures for `secs`.
pub fn measure(url: &str, connections: u32, secs: u64) -> anyhow::Result<WrkResult> {
    run(url, connections, 1)?;
    let out = run(url, connections, secs)?;
    let rps = field(&out, "Requests/sec:").context("wrk printed no Requests/sec")?;
    let errors = count(&out, "Non-2xx or 3xx responses:") + socket_errors(&out);
    Ok(WrkResult {
        rps,
        p50_ms: latency(&out, "50%").unwrap_or(f64::NAN),
        p99_ms: latency(&out, "99%").unwrap_or(f64::NAN),
        errors,
    })
}

fn run(url: &str, connections: u32, secs: u64) -> anyhow::Result<String> {
    // One wrk thread: the machine has two cores and the server needs the other.
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
            url,
        ])
        .output()
        .context("running wrk")?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn field(out: &str, name: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
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

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n  Latency Distribution\n     50%  312.00us\n     75%  1.10ms\n     90%  2.00ms\n     99%    1.50s\n  1000 requests in 1.00s, 1.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 7\nRequests/sec:  51234.56\n";

    #[test]
    fn parses_wrk_output() {
        assert_eq!(field(SAMPLE, "Requests/sec:"), Some(51234.56));
        assert_eq!(latency(SAMPLE, "50%"), Some(0.312));
        assert_eq!(latency(SAMPLE, "99%"), Some(1500.0));
        assert_eq!(
            count(SAMPLE, "Non-2xx or 3xx responses:") + socket_errors(SAMPLE),
            12
        );
    }
}
