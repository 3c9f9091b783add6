//! Scenario e: pub/sub on the chat example (`examples/python/chat`, served
//! by the `waterspout` binary in its own process so its RSS is its own):
//! N suspended long polls (RSS, and the time from one post to the last of
//! them answered), and one message broadcast to M WebSocket group members
//! (`/chatsocket`; the time until the last member has it).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")?;
    Ok(kib as f64 / 1024.0)
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_chat(root: &Path, instances: usize) -> anyhow::Result<Server> {
    let bin = crate::profile_dir()?.join("waterspout");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let child = Command::new(&bin)
        .arg("serve")
        .arg(root.join("examples/python/chat"))
        .args([
            "--listen",
            &addr.to_string(),
            "--max-instances",
            &instances.to_string(),
        ])
        .env("WATERSPOUT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} (`make bench` builds it)", bin.display()))?;
    let mut server = Server { child, addr };
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline || server.child.try_wait()?.is_some() {
            bail!(
                "waterspout serve examples/python/chat did not start (is examples/target/python/chat.wasm built? `cargo test --workspace --test integration pubsub::` builds it)"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

async fn post_message(addr: SocketAddr, body: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://{addr}/a/message/new"))
        .form(&[("body", body)])
        .send()
        .await?;
    let value: serde_json::Value = response.json().await?;
    Ok(value["id"].as_str().context("no id")?.to_owned())
}

/// Reads until the response's body has its `messages` (the poll answered).
async fn answered(socket: &mut TcpStream) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(8).any(|w| w == b"messages") {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            bail!("the poll closed without an answer");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

pub struct LongPolls {
    pub polls: usize,
    pub rss_before: f64,
    pub rss_waiting: f64,
    pub answer_all: Duration,
}

/// `n` long polls waiting on the chat, then one post answers them all.
pub fn long_polls(root: &Path, n: usize) -> anyhow::Result<LongPolls> {
    rlimit::increase_nofile_limit(u64::MAX).context("raising the open-files limit")?;
    let server = serve_chat(root, n + 200)?;
    let (addr, pid) = (server.addr, server.child.id());
    let rss_before = rss_mib(pid)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let cursor = post_message(addr, "start").await?;
        let body = format!("cursor={cursor}");
        let request = format!(
            "POST /a/message/updates HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut sockets = Vec::with_capacity(n);
        for i in 0..n {
            let mut socket = TcpStream::connect(addr).await.with_context(|| format!("poll {i}"))?;
            socket.write_all(request.as_bytes()).await?;
            sockets.push(socket);
        }
        // Every poll admitted and suspended in `wait` (a Python instance each).
        tokio::time::sleep(Duration::from_secs(5) + Duration::from_millis(n as u64)).await;
        let rss_waiting = rss_mib(pid)?;
        let start = Instant::now();
        post_message(addr, "wake up").await?;
        let tasks: Vec<_> = sockets
            .into_iter()
            .map(|mut s| tokio::spawn(async move { answered(&mut s).await }))
            .collect();
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(120), task).await.context("a poll never answered")???;
        }
        let answer_all = start.elapsed();
        drop(server);
        Ok(LongPolls {
            polls: n,
            rss_before,
            rss_waiting,
            answer_all,
        })
    })
}

pub struct Broadcast {
    pub members: usize,
    pub rss: f64,
    pub reach_all: Duration,
}

/// `n` WebSockets on /chatsocket (members of group "chat"), then one post
/// reaches them all through the group.
pub fn broadcast(root: &Path, n: usize) -> anyhow::Result<Broadcast> {
    rlimit::increase_nofile_limit(u64::MAX).context("raising the open-files limit")?;
    let server = serve_chat(root, n + 200)?;
    let (addr, pid) = (server.addr, server.child.id());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let url = format!("ws://{addr}/chatsocket");
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .with_context(|| format!("member {i}"))?;
            members.push(ws);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = rss_mib(pid)?;
        let start = Instant::now();
        post_message(addr, "to everyone").await?;
        let tasks: Vec<_> = members
            .into_iter()
            .map(|mut ws| {
                tokio::spawn(async move {
                    ws.next()
                        .await
                        .context("closed")?
                        .map(|_| ())
                        .map_err(anyhow::Error::from)
                })
            })
            .collect();
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(120), task)
                .await
                .context("a member never got it")???;
        }
        let reach_all = start.elapsed();
        drop(server);
        Ok(Broadcast {
            members: n,
            rss,
            reach_all,
        })
    })
}

/// The markdown section.
pub fn scenario_f(root: &Path, polls: usize, members: usize) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let mut out = String::from("## f. Pub/sub: long polls and group broadcast (chat example)\n\n");
    writeln!(
        out,
        "`examples/python/chat` served by `waterspout serve` in its own process; each waiting poll and each WebSocket holds a Python instance (componentize-py).\n"
    )?;
    match long_polls(root, polls) {
        Ok(r) => writeln!(
            out,
            "- {} suspended long polls (`POST /a/message/updates`): RSS {:.0} MiB before, {:.0} MiB while all wait ({:.0} KiB per poll); one `POST /a/message/new` answered all of them in {:.0} ms.",
            r.polls,
            r.rss_before,
            r.rss_waiting,
            (r.rss_waiting - r.rss_before) * 1024.0 / r.polls as f64,
            r.answer_all.as_secs_f64() * 1000.0
        )?,
        Err(e) => writeln!(out, "- {polls} long polls: failed: {e:#}")?,
    }
    match broadcast(root, members) {
        Ok(r) => writeln!(
            out,
            "- {} WebSocket members of group `chat` (RSS {:.0} MiB): one post reached all of them in {:.0} ms (the members' guests are not called).\n",
            r.members,
            r.rss,
            r.reach_all.as_secs_f64() * 1000.0
        )?,
        Err(e) => writeln!(out, "- {members} group members: failed: {e:#}\n")?,
    }
    Ok(out)
}
