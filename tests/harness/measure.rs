//! Measuring this process: its resident memory, and a turn to measure alone.

use tokio::sync::{Mutex, MutexGuard};

static MEASURING: Mutex<()> = Mutex::const_new(());

/// Taken first by a test that measures this process (resident memory, the
/// latency of its requests): the tests of one binary run in parallel, and
/// two such tests side by side would move each other's numbers.
pub async fn measure_alone() -> MutexGuard<'static, ()> {
    MEASURING.lock().await
}

/// Resident memory of this process in KiB (in-process test servers run in
/// it); 0 if it cannot be read.
pub fn own_rss_kib() -> u64 {
    rss_kib("self")
}

/// Resident memory of a process in KiB, from `/proc/PID/status`; 0 if it
/// cannot be read.
pub(super) fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
