//! Client sockets for runs with many connections (scenarios c and f).
//!
//! One pair of loopback addresses has the ephemeral port range's ~28,000
//! ports (32768–60999), and ports in TIME_WAIT from the run before count
//! against it; so client `i` connects from 127.0.0.(2 + i / 10,000): 10,000
//! ports per source address, any number of clients.
//!
//! Open files are the other limit: every connection is a socket in the
//! server and one here. On the machine these numbers come from, the hard
//! limit is 20,000 per process and cannot be raised (no CAP_SYS_RESOURCE),
//! so the server holds ~19,900 connections at most: [`check_open_files`]
//! says so before a run rather than failing halfway.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use tokio::net::{TcpSocket, TcpStream};

/// Clients per source address.
const PER_ADDRESS: usize = 10_000;

/// Files a process needs besides its connections (listeners, epoll, the
/// runtime's, the wasm files, stdio).
pub const SPARE_FILES: u64 = 100;

/// The source address of client `i`.
fn source(i: usize) -> IpAddr {
    let host = 2 + i / PER_ADDRESS;
    assert!(host < 255, "client {i}: more clients than 127.0.0.2–254 hold");
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, host as u8))
}

/// Connects client `i` to `server` from its own source address.
pub async fn connect(i: usize, server: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::new(source(i), 0))
        .with_context(|| format!("client {i}: binding to {}", source(i)))?;
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("client {i}: connecting from {} to {server}", source(i)))?;
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
