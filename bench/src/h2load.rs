//! Driving `h2load` (Debian's nghttp2-client) and reading its summary, as
//! wrk.rs does for wrk: a warm-up run, then the measured one with the
//! server's CPU time per request (crate::procstat).

use std::process::Command;

use anyhow::{Context, bail};

use crate::procstat;
use crate::wrk::duration_ms;

/// What one h2load run measured.
#[derive(Debug, Clone)]
pub struct H2loadResult {
    pub rps: f64,
    /// Mean time for a request (h2load prints no percentiles), ms.
    pub mean_ms: f64,
    /// Failed, errored or timed out requests, and non-2xx answers.
    pub errors: u64,
    /// The server's CPU time per request, µs.
    pub cpu_us: f64,
    /// The protocol ALPN chose (`h2`, `http/1.1`).
    pub protocol: String,
}

pub fn check_installed() -> anyhow::Result<()> {
    match Command::new("h2load").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => bail!(
            "h2load is not installed: run `make bench` (it installs it) or `apt-get install nghttp2-client`"
        ),
    }
}

/// `clients` connections with up to `streams` requests in flight on each
/// (`h1`: HTTP/1.1 by ALPN, one request at a time), one h2load thread,
/// a second of warm-up, then `secs` measured with the server `server`'s CPU time.
pub fn measure(
    url: &str,
    clients: u32,
    streams: u32,
    h1: bool,
    secs: u64,
    server: u32,
) -> anyhow::Result<H2loadResult> {
    run(url, clients, streams, h1, 1)?;
    let pids = procstat::tree(server);
    let cpu_before = procstat::cpu_seconds(&pids);
    let out = run(url, clients, streams, h1, secs)?;
    let cpu = procstat::cpu_seconds(&pids) - cpu_before;
    let rps = out
        .lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|rest| rest.split(", ").nth(1)?.strip_suffix(" req/s")?.parse().ok())
        .with_context(|| format!("h2load printed no req/s:\n{out}"))?;
    let requests = counts(&out, "requests:");
    let succeeded = requests.get("succeeded").copied().unwrap_or(0);
    let statuses = counts(&out, "status codes:");
    let errors = ["failed", "errored", "timeout"]
        .iter()
        .map(|k| requests.get(*k).copied().unwrap_or(0))
        .sum::<u64>()
        + ["3xx", "4xx", "5xx"]
            .iter()
            .map(|k| statuses.get(*k).copied().unwrap_or(0))
            .sum::<u64>();
    let mean_ms = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("time for request:"))
        .and_then(|rest| duration_ms(rest.split_whitespace().nth(2)?))
        .unwrap_or(f64::NAN);
    let protocol = out
        .lines()
        .find_map(|l| l.strip_prefix("Application protocol: "))
        .unwrap_or("?")
        .trim()
        .to_owned();
    Ok(H2loadResult {
        rps,
        mean_ms,
        errors,
        cpu_us: if succeeded == 0 {
            f64::NAN
        } else {
            cpu * 1e6 / succeeded as f64
        },
        protocol,
    })
}

fn run(url: &str, clients: u32, streams: u32, h1: bool, secs: u64) -> anyhow::Result<String> {
    let mut h2load = Command::new("h2load");
    h2load.args([
        &format!("-c{clients}"),
        &format!("-m{streams}"),
        &format!("-D{secs}"),
    ]);
    if h1 {
        h2load.arg("--h1");
    }
    let out = h2load.arg(url).output().context("running h2load")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("h2load failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    Ok(stdout)
}

/// `requests: 10 total, 10 started, 10 done, 9 succeeded, 1 failed` → by name.
fn counts(out: &str, line: &str) -> std::collections::HashMap<String, u64> {
    out.lines()
        .find_map(|l| l.strip_prefix(line))
        .map(|rest| {
            rest.split(',')
                .filter_map(|part| {
                    let (n, name) = part.trim().split_once(' ')?;
                    Some((name.to_owned(), n.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "TLS Protocol: TLSv1.3\nApplication protocol: h2\n\nfinished in 2.01s, 1000.00 req/s, 1.10MB/s\nrequests: 2006 total, 2006 started, 2006 done, 2000 succeeded, 6 failed, 6 errored, 0 timeout\nstatus codes: 2000 2xx, 0 3xx, 1 4xx, 0 5xx\n                     min         max         mean         sd        +/- sd\ntime for request:       32us       405us       142us        54us    72.25%\n";

    #[test]
    fn parses_h2load_output() {
        let requests = counts(SAMPLE, "requests:");
        assert_eq!(requests["succeeded"], 2000);
        assert_eq!(requests["errored"], 6);
        assert_eq!(counts(SAMPLE, "status codes:")["4xx"], 1);
        assert_eq!(duration_ms("142us"), Some(0.142));
        assert_eq!(duration_ms("4.56ms"), Some(4.56));
    }
}
