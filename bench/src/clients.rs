//! Client sockets for runs with many connections (scenarios c and f).
//!
//! One pair of loopback addresses has the ephemeral port range's ~28,000
//! ports (32768–60999), and ports in TIME_WAIT from the run before count
//! against it; so the n-th connection this process makes comes from
//! 127.0.0.(2 + n / 10,000): 10,000 ports per source address, and each run
//! of clients starts where the one before ended, clear of its TIME_WAIT
//! ports (counting per run from 127.0.0.2, the third run of 19,000 polls
//! found the ports of the first two still in TIME_WAIT and could not bind).
//! A client closes with a reset (`SO_LINGER` 0), so it leaves no port in
//! TIME_WAIT at all: the next `waterspout-bench` process starts from
//! 127.0.0.2 again, and with the last one's 10,000 ports there in TIME_WAIT
//! its binds took ~2 ms each (scenario c's 10,000 idle WebSockets opened in
//! ~20 s instead of ~3 s when a run had ended less than a minute before).
//!
//! Open files are the other limit: every connection is a socket in the
//! server and one here. On the machine these numbers come from, the hard
//! limit is 20,000 per process and cannot be raised (no CAP_SYS_RESOURCE),
//! so the server holds ~19,900 connections at most: [`check_open_files`]
//! says so before a run rather than failing halfway.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use tokio::net::{TcpSocket, TcpStream};

/// Clients per source address.
const PER_ADDRESS: usize = 10_000;

/// Files a process needs besides its connections (listeners, epoll, the
/// runtime's, the wasm files, stdio).
pub const SPARE_FILES: u64 = 100;

/// Connections this process has made so far.
static MADE: AtomicUsize = AtomicUsize::new(0);

/// Sets aside the source addresses of `count` connections for another
/// process (scenario j's client processes) and returns the number of the
/// first: that process starts there ([`start_at`]).
pub fn reserve(count: usize) -> usize {
    // Whole addresses, so no two processes bind ports of the same one.
    let count = count.div_ceil(PER_ADDRESS) * PER_ADDRESS;
    let made = MADE.load(Ordering::Relaxed).div_ceil(PER_ADDRESS) * PER_ADDRESS;
    MADE.store(made + count, Ordering::Relaxed);
    made
}

/// This process's connections come from the addresses [`reserve`]d for it,
/// from connection number `first` on.
pub fn start_at(first: usize) {
    MADE.store(first, Ordering::Relaxed);
}

/// The source address of the `n`-th connection this process makes.
fn source(n: usize) -> IpAddr {
    let host = 2 + n / PER_ADDRESS;
    assert!(host < 255, "connection {n}: more than 127.0.0.2–254 hold");
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, host as u8))
}

/// Connects client `i` (of its run) to `server` from the next source
/// address with ports to spare.
pub async fn connect(i: usize, server: SocketAddr) -> anyhow::Result<TcpStream> {
    let from = source(MADE.fetch_add(1, Ordering::Relaxed));
    let socket = TcpSocket::new_v4()?;
    socket.set_zero_linger()?;
    socket
        .bind(SocketAddr::new(from, 0))
        .with_context(|| format!("client {i}: binding to {from}"))?;
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("client {i}: connecting from {from} to {server}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Raises this process's open-files limit to its hard limit and checks that
/// `connections` fit, here and in a server started from here (it inherits
/// the limit).
pub fn check_open_files(connections: usize) -> anyhow::Result<u64> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-files limit")?;
    anyhow::ensure!(
        limit >= connections as u64 + SPARE_FILES,
        "{connections} connections need {} open files in the server and in this process; the hard limit here is {limit} (`ulimit -Hn`; raising it needs CAP_SYS_RESOURCE)",
        connections as u64 + SPARE_FILES
    );
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `/proc/net/tcp` has a socket in TIME_WAIT (state 06) on the
    /// local port `port`.
    fn in_time_wait(port: u16) -> bool {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields[1].rsplit(':').next().unwrap();
            u16::from_str_radix(local_port, 16) == Ok(port) && fields[3] == "06"
        })
    }

    #[tokio::test]
    async fn a_client_that_closes_first_leaves_no_port_in_time_wait() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        let client = connect(0, server).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let port = client.local_addr().unwrap().port();
        drop(client);
        drop(accepted);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!in_time_wait(port), "port {port} is in TIME_WAIT");
    }
}
