//! Scenario c: WebSocket echo messages/s against a plain tokio-tungstenite
//! echo (same process, same client), and the server's RSS with 10,000 idle
//! WebSockets open to the echo example (a separate process, so its RSS is
//! its own).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A plain tokio-tungstenite echo server: the limit for scenario c.
pub async fn baseline_echo() -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok((addr, task))
}

/// Round trips per second: `connections` clients, each sending a message and
/// waiting for its echo, for `secs` seconds. Runs on its own thread and
/// runtime so the client does not share the server's workers.
pub fn echo_rate(url: String, connections: usize, secs: u64) -> anyhow::Result<f64> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let done = Arc::new(AtomicU64::new(0));
            let mut sockets = Vec::new();
            for _ in 0..connections {
                let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                sockets.push(ws);
            }
            // Warm up, then count.
            let until = Instant::now() + Duration::from_secs(1) + Duration::from_secs(secs);
            let counting_from = Instant::now() + Duration::from_secs(1);
            let tasks: Vec<_> = sockets
                .into_iter()
                .map(|mut ws| {
                    let done = done.clone();
                    tokio::spawn(async move {
                        let payload = "x".repeat(32);
                        while Instant::now() < until {
                            ws.send(Message::text(payload.clone())).await?;
                            match ws.next().await {
                                Some(Ok(Message::Text(t))) if t.len() == 32 => {}
                                other => bail!("unexpected echo: {other:?}"),
                            }
                            if Instant::now() >= counting_from {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        let _ = ws.close(None).await;
                        Ok(())
                    })
                })
                .collect();
            for t in tasks {
                t.await??;
            }
            Ok(done.load(Ordering::Relaxed) as f64 / secs as f64)
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("echo client panicked"))?
}

/// RSS of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

/// Result of the idle-connections measurement.
pub struct IdleResult {
    pub connections: usize,
    /// From the first connect to the last handshake done, one at a time.
    pub open_all: Duration,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
}

/// Starts `waterspout serve` on the echo component with room for `n`
/// instances, opens `n` WebSockets, and reads the server's RSS.
pub fn idle_rss(root: &Path, n: usize) -> anyhow::Result<IdleResult> {
    // Every connection holds a socket on both sides.
    crate::clients::check_open_files(n)?;
    let echo = root.join("examples/target/wasm32-wasip2/release/echo.wasm");
    let app = tempfile_dir()?;
    std::fs::write(
        app.join("waterspout.toml"),
        format!(
            "[[route]]\npattern = \"/echo\"\nhandler = \"echo\"\n\n[handler.echo]\nwasm = {:?}\nmax_instances = {}\nidle_timeout_secs = 3600\n",
            echo.display().to_string(),
            n + 100
        ),
    )?;
    let bin = crate::profile_dir()?.join("waterspout");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut child = Command::new(&bin)
        .arg("serve")
        .arg(&app)
        .args([
            "--listen",
            &addr.to_string(),
            "--max-instances",
            &(n + 200).to_string(),
        ])
        .env("WATERSPOUT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} (`make bench` builds it)", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            bail!("waterspout serve did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = rss_kib(child.id())?;
    let url = format!("ws://{addr}/echo");
    let pid = child.id();
    let result = std::thread::spawn(move || -> anyhow::Result<(usize, Duration, u64)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let mut open = Vec::with_capacity(n);
            let opening = Instant::now();
            for i in 0..n {
                let stream = crate::clients::connect(i, addr).await?;
                let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), stream)
                    .await
                    .with_context(|| format!("connection {i}"))?;
                if i % 1000 == 0 {
                    // Prove the connection is live, not just accepted.
                    ws.send(Message::text("count")).await?;
                    ws.next().await.context("no reply")??;
                }
                open.push(ws);
            }
            let open_all = opening.elapsed();
            // Let the server settle; read its RSS while all are open.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let rss = rss_kib(pid)?;
            Ok((open.len(), open_all, rss))
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("client panicked"))?;
    let _ = child.kill();
    let _ = child.wait();
    let (connections, open_all, after) = result?;
    Ok(IdleResult {
        connections,
        open_all,
        rss_before_mib: before as f64 / 1024.0,
        rss_after_mib: after as f64 / 1024.0,
    })
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("waterspout-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
