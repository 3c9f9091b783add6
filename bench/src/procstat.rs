//! What a server process costs, read from `/proc`: CPU time (utime + stime
//! of `/proc/PID/stat`) and resident memory (`VmRSS`), summed over the
//! process and its descendants (Tornado's `fork_processes` serves from
//! children).

use std::process::Command;
use std::sync::OnceLock;

/// Clock ticks per second of `/proc/PID/stat`'s times (`getconf CLK_TCK`,
/// 100 on Linux unless configured otherwise).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of `/proc/PID/stat` after the command name (which may hold
/// spaces and parentheses): field 3 (state) is index 0.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// `pid` and every process below it.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // Field 4, the parent's pid.
            if let Some(ppid) = stat_fields(p).and_then(|f| f.get(1)?.parse().ok()) {
                parents.push((p, ppid));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// Seconds of CPU (user + system) the processes have used so far.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    cpu_seconds_each(pids).iter().sum()
}

/// [`cpu_seconds`] of each process in `pids`, in order (0 for one that is
/// gone).
pub fn cpu_seconds_each(pids: &[u32]) -> Vec<f64> {
    pids.iter()
        .map(|&pid| {
            stat_fields(pid)
                .and_then(|f| {
                    // Fields 14 and 15: utime, stime.
                    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
                })
                .unwrap_or(0) as f64
                / ticks_per_second()
        })
        .collect()
}

/// The busiest process's share of the CPU the processes used (`used`: each
/// one's seconds over a run): 0.5 when two split the work evenly, 1 when
/// one did it all. NaN for a server that is one process, or that used no
/// CPU at all.
pub fn busiest_share(used: &[f64]) -> f64 {
    let total: f64 = used.iter().sum();
    if used.len() < 2 || total <= 0.0 {
        return f64::NAN;
    }
    used.iter().copied().fold(0.0, f64::max) / total
}

/// Resident memory of the processes, MiB.
pub fn rss_mib(pids: &[u32]) -> f64 {
    let kib: u64 = pids
        .iter()
        .filter_map(|&pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .sum();
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_uses_cpu_and_memory() {
        let me = std::process::id();
        let before = cpu_seconds(&[me]);
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(100) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(cpu_seconds(&[me]) > before, "no CPU time counted");
        assert!(rss_mib(&[me]) > 0.0);
        assert!(tree(me).contains(&me));
        assert_eq!(cpu_seconds_each(&[me, u32::MAX]).len(), 2);
        assert_eq!(
            cpu_seconds_each(&[u32::MAX]),
            vec![0.0],
            "a process that is gone used nothing"
        );
    }

    #[test]
    fn the_busiest_share_tells_an_even_split_from_one_process_doing_it_all() {
        // Tornado's `fork_processes`: the parent waits, its children serve.
        assert_eq!(busiest_share(&[0.0, 2.0, 2.0]), 0.5);
        assert_eq!(busiest_share(&[0.01, 0.0, 3.99]), 0.9975);
        assert_eq!(busiest_share(&[0.0, 4.0, 0.0]), 1.0);
        // One process, or nothing used: no split to tell.
        assert!(busiest_share(&[3.0]).is_nan());
        assert!(busiest_share(&[0.0, 0.0, 0.0]).is_nan());
        assert!(busiest_share(&[]).is_nan());
    }
}
