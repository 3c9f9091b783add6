//! Full TLS handshakes per second: `clients` tasks, each opening a new
//! TCP + TLS connection (tokio-rustls, session resumption off, one TLS
//! version) for one HTTP/1.1 request with `Connection: close`, reading the
//! answer to its end, then the next; with the server's CPU time per
//! handshake (crate::procstat), and the client's own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, SupportedProtocolVersion, pki_types::ServerName};

use crate::procstat;

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeResult {
    /// Connections (each a full handshake and one 200) per second.
    pub per_sec: f64,
    /// Mean time from connect to the end of the answer, ms.
    pub mean_ms: f64,
    pub errors: u64,
    /// The server's CPU time per connection, µs.
    pub cpu_us: f64,
    /// This client's (the bench process's) CPU time per connection, µs:
    /// the load generator shares the cores.
    pub client_cpu_us: f64,
}

/// A client that trusts `ca` (DER) and speaks only `version`, without
/// resumption: every connection is a full handshake.
pub fn connector(ca: &[u8], version: &'static SupportedProtocolVersion) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.to_vec().into())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A second of warm-up, then `secs` measured against `addr` (its
/// certificate names `localhost`), `GET path` on every connection.
pub fn measure(
    runtime: &tokio::runtime::Runtime,
    connector: &TlsConnector,
    addr: SocketAddr,
    path: &str,
    clients: u32,
    secs: u64,
    server: u32,
) -> anyhow::Result<HandshakeResult> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    runtime.block_on(run(connector, addr, &request, clients, 1))?;
    let (pids, me) = (procstat::tree(server), [std::process::id()]);
    let (cpu_before, client_before) = (procstat::cpu_seconds(&pids), procstat::cpu_seconds(&me));
    let (done, errors, busy) = runtime.block_on(run(connector, addr, &request, clients, secs))?;
    let cpu = procstat::cpu_seconds(&pids) - cpu_before;
    let client_cpu = procstat::cpu_seconds(&me) - client_before;
    std::thread::sleep(Duration::from_millis(300));
    anyhow::ensure!(
        done > 0,
        "no TLS connection to {addr} succeeded ({errors} failed)"
    );
    Ok(HandshakeResult {
        per_sec: done as f64 / secs as f64,
        mean_ms: busy.as_secs_f64() * 1e3 / done as f64,
        errors,
        cpu_us: cpu * 1e6 / done as f64,
        client_cpu_us: client_cpu * 1e6 / done as f64,
    })
}

/// (connections answered 200, failures, their total time).
async fn run(
    connector: &TlsConnector,
    addr: SocketAddr,
    request: &str,
    clients: u32,
    secs: u64,
) -> anyhow::Result<(u64, u64, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (connector, request) = (connector.clone(), request.to_owned());
            tokio::spawn(async move {
                let (mut done, mut errors, mut busy) = (0u64, 0u64, Duration::ZERO);
                while Instant::now() < deadline {
                    let start = Instant::now();
                    match one(&connector, addr, request.as_bytes()).await {
                        Ok(()) => {
                            done += 1;
                            busy += start.elapsed();
                        }
                        Err(_) => errors += 1,
                    }
                }
                (done, errors, busy)
            })
        })
        .collect();
    let mut total = (0, 0, Duration::ZERO);
    for task in tasks {
        let (done, errors, busy) = task.await.context("a client task panicked")?;
        total = (total.0 + done, total.1 + errors, total.2 + busy);
    }
    Ok(total)
}

async fn one(connector: &TlsConnector, addr: SocketAddr, request: &[u8]) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut tls = connector.connect(ServerName::try_from("localhost")?, tcp).await?;
    tls.write_all(request).await?;
    let mut response = Vec::new();
    // A close without close_notify ends the answer too.
    if let Err(e) = tls.read_to_end(&mut response).await
        && e.kind() != std::io::ErrorKind::UnexpectedEof
    {
        return Err(e.into());
    }
    anyhow::ensure!(response.starts_with(b"HTTP/1.1 200 "), "not a 200");
    Ok(())
}
