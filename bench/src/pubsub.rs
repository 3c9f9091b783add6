//! Scenario f: pub/sub long polls and WebSocket group broadcasts, served by
//! the `waterspout` binary in its own process so its RSS is its own.
//!
//! Two guests: the chat example (`examples/python/chat`: each waiting poll
//! and each WebSocket holds a CPython instance) and the Rust test guests
//! (`tests/guests/pubsub`: `/wait` and `/publish`; `groups-ws`: a member of
//! group `lobby`), which show what the host itself costs per waiter. For each:
//! N suspended long polls (RSS, and the time from one publish to the last of
//! them answered), and one message broadcast to M WebSocket group members
//! (the time until the last member has it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")?;
    Ok(kib as f64 / 1024.0)
}

/// The soft open-files limit of process `pid` (`/proc/PID/limits`).
fn open_files_limit(pid: u32) -> anyhow::Result<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no \"Max open files\" in /proc/PID/limits")
}

/// Waits until the server's RSS has not grown for 2 s (every connection
/// admitted and its instance suspended), at most `limit`; the RSS then.
pub(crate) async fn settled_rss(pid: u32, limit: Duration) -> anyhow::Result<f64> {
    let deadline = Instant::now() + limit;
    let mut last = rss_mib(pid)?;
    let mut steady = 0;
    while steady < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = rss_mib(pid)?;
        steady = if now - last < 1.0 { steady + 1 } else { 0 };
        last = now;
    }
    Ok(last)
}

/// Which guest serves the polls and the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guest {
    /// `examples/python/chat`: `/a/message/updates`, `/a/message/new`, `/chatsocket`.
    PythonChat,
    /// `tests/guests/pubsub` and `groups-ws`: `/wait`, `/publish`, `/broadcast`, `/ws`.
    Rust,
    /// The same Rust guests, their long polls parked (`park_waits`).
    RustParked,
}

impl Guest {
    fn label(self) -> &'static str {
        match self {
            Guest::PythonChat => "Python chat example",
            Guest::Rust => "Rust test guests",
            Guest::RustParked => "Rust test guests, parked",
        }
    }

    /// Pool slots per instance: a componentize-py component has many core
    /// instances (CPython and its libraries), and the pool's totals are
    /// counted from `--max-instances` for a few per component.
    pub(crate) fn slots_per_instance(self) -> usize {
        match self {
            Guest::PythonChat => 4,
            Guest::Rust | Guest::RustParked => 1,
        }
    }

    /// The app directory to serve (a generated one for the Rust guests),
    /// with `cluster`'s services on that Redis when it is given.
    fn app(self, root: &Path, cluster: Option<&str>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
        match self {
            Guest::PythonChat => {
                anyhow::ensure!(cluster.is_none(), "the chat example is measured on one node");
                Ok((root.join("examples/python/chat"), None))
            }
            Guest::Rust | Guest::RustParked => {
                let park = self == Guest::RustParked;
                let built = root.join("tests/guests/target/wasm32-wasip2/release");
                let (pubsub, members) = (built.join("pubsub.wasm"), built.join("groups_ws.wasm"));
                for wasm in [&pubsub, &members] {
                    anyhow::ensure!(
                        wasm.is_file(),
                        "{} is missing (`cargo test --workspace --test integration pubsub::` builds it)",
                        wasm.display()
                    );
                }
                let dir = tempfile::tempdir()?;
                let cluster = cluster
                    .map(|url| format!("\n[cluster]\nredis = {url:?}\nprefix = \"spread\"\n"))
                    .unwrap_or_default();
                std::fs::write(
                    dir.path().join("waterspout.toml"),
                    format!(
                        "[[route]]\npattern = \"/ws\"\nhandler = \"members\"\n\n\
                         [[route]]\npattern = \"/.*\"\nhandler = \"pubsub\"\n\n\
                         [handler.pubsub]\nwasm = {pubsub:?}\nwait_timeout_ms = 300000\n\
                         pubsub_topics = [\"news\"]\ngroups = [\"lobby\"]\nmax_instances = 20000\npark_waits = {park}\n\n\
                         [handler.members]\nwasm = {members:?}\ngroups = [\"lobby\"]\nmax_instances = 20000\n{cluster}"
                    ),
                )?;
                Ok((dir.path().to_owned(), Some(dir)))
            }
        }
    }
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// The admin API (token [`ADMIN_TOKEN`]), for `/metrics`.
    pub(crate) admin: SocketAddr,
    _app: Option<tempfile::TempDir>,
}

const ADMIN_TOKEN: &str = "bench";

/// Requests parked now (`waterspout_parked_requests`, every handler).
pub(crate) async fn parked(admin: SocketAddr) -> anyhow::Result<f64> {
    let text = reqwest::Client::new()
        .get(format!("http://{admin}/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("waterspout_parked_requests{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    Ok(format!("127.0.0.1:{port}").parse()?)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `guest` for `connections` clients, `held` of them holding an instance at once.
fn serve(root: &Path, guest: Guest, connections: usize, held: usize) -> anyhow::Result<Server> {
    serve_node(root, guest, connections, held, None)
}

/// [`serve`], as a node of the cluster on Redis `cluster` when it is given.
pub(crate) fn serve_node(
    root: &Path,
    guest: Guest,
    connections: usize,
    held: usize,
    cluster: Option<&str>,
) -> anyhow::Result<Server> {
    let (dir, app) = guest.app(root, cluster)?;
    let bin = crate::profile_dir()?.join("waterspout");
    let (addr, admin) = (free_addr()?, free_addr()?);
    let instances = (held + 200) * guest.slots_per_instance();
    let child = Command::new(&bin)
        .arg("serve")
        .arg(&dir)
        .args([
            "--listen",
            &addr.to_string(),
            "--max-instances",
            &instances.to_string(),
            "--admin-listen",
            &admin.to_string(),
        ])
        .env("WATERSPOUT_LOG", "warn")
        .env("WATERSPOUT_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} (`make bench` builds it)", bin.display()))?;
    let mut server = Server {
        child,
        addr,
        admin,
        _app: app,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline || server.child.try_wait()?.is_some() {
            bail!(
                "waterspout serve {} did not start (is its wasm built? `cargo test --workspace --test integration pubsub::` builds it)",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The server inherits this process's raised limit: check that it may
    // hold every connection (and its own files) before measuring.
    let files = open_files_limit(server.child.id())?;
    anyhow::ensure!(
        files >= connections as u64 + crate::clients::SPARE_FILES,
        "the server may open only {files} files, too few for {connections} connections: raise the hard limit (`ulimit -Hn`)"
    );
    Ok(server)
}

/// Publishes one message: a chat post, or a publish on topic `news`.
pub(crate) async fn publish(guest: Guest, addr: SocketAddr, body: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    match guest {
        Guest::PythonChat => {
            let response = client
                .post(format!("http://{addr}/a/message/new"))
                .form(&[("body", body)])
                .send()
                .await?;
            let status = response.status();
            let text = response.text().await?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("the post answered {status}: {text:?}"))?;
            Ok(value["id"].as_str().context("no id")?.to_owned())
        }
        Guest::Rust | Guest::RustParked => {
            let response = client
                .post(format!("http://{addr}/publish?topic=news"))
                .form(&[("data", body)])
                .send()
                .await?;
            anyhow::ensure!(response.status().is_success(), "publish: {}", response.status());
            Ok(response.text().await?)
        }
    }
}

/// Broadcasts one message to the members: a chat post (it broadcasts to
/// group `chat`), or `/broadcast` to group `lobby`.
pub(crate) async fn broadcast_one(guest: Guest, addr: SocketAddr) -> anyhow::Result<()> {
    match guest {
        Guest::PythonChat => publish(guest, addr, "to everyone").await.map(|_| ()),
        Guest::Rust | Guest::RustParked => {
            let response = reqwest::Client::new()
                .post(format!("http://{addr}/broadcast?group=lobby"))
                .form(&[("data", "to everyone")])
                .send()
                .await?;
            anyhow::ensure!(response.status().is_success(), "broadcast: {}", response.status());
            Ok(())
        }
    }
}

/// The raw request of one long poll waiting after the newest message.
pub(crate) async fn poll_request(guest: Guest, addr: SocketAddr) -> anyhow::Result<String> {
    let cursor = publish(guest, addr, "start").await?;
    Ok(match guest {
        Guest::PythonChat => {
            let body = format!("cursor={cursor}");
            format!(
                "POST /a/message/updates HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
        Guest::Rust | Guest::RustParked => {
            format!("GET /wait?topic=news&after={cursor}&timeout_ms=300000 HTTP/1.1\r\nHost: bench\r\n\r\n")
        }
    })
}

/// Reads until the response's body has its `messages` (the poll answered).
pub(crate) async fn answered(socket: &mut TcpStream) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(8).any(|w| w == b"messages") {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            bail!(
                "the poll closed without an answer: {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

pub struct LongPolls {
    pub polls: usize,
    /// How many of them were parked (held no instance) when all waited.
    pub parked: usize,
    /// From the first poll sent to the last one waiting.
    pub open_all: Duration,
    pub rss_before: f64,
    pub rss_waiting: f64,
    pub answer_all: Duration,
}

/// `n` long polls waiting, then one publish answers them all.
pub fn long_polls(root: &Path, guest: Guest, n: usize) -> anyhow::Result<LongPolls> {
    crate::clients::check_open_files(n)?;
    // A parked poll holds no instance: room for the runs that park and wake.
    let held = match guest {
        Guest::PythonChat | Guest::RustParked => n.min(300),
        Guest::Rust => n,
    };
    let server = serve(root, guest, n, held)?;
    let (addr, pid) = (server.addr, server.child.id());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let request = poll_request(guest, addr).await?;
        let rss_before = settled_rss(pid, Duration::from_secs(10)).await?;
        let mut sockets = Vec::with_capacity(n);
        let opening = Instant::now();
        let parks = parked(server.admin).await.is_ok();
        // In batches: a parking poll first runs its guest (a fresh instance
        // each), so the next batch goes when this one has parked, and no
        // poll waits past its handler's time limit for an instance.
        for batch in (0..n).collect::<Vec<_>>().chunks(500) {
            for &i in batch {
                let mut socket = crate::clients::connect(i, addr).await?;
                socket.write_all(request.as_bytes()).await?;
                sockets.push(socket);
            }
            if matches!(guest, Guest::RustParked | Guest::PythonChat) && parks {
                let deadline = Instant::now() + Duration::from_secs(120);
                while parked(server.admin).await? < sockets.len() as f64 {
                    anyhow::ensure!(Instant::now() < deadline, "the polls did not park within 120 s");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let open_all = opening.elapsed();
        // Every poll admitted and suspended in `wait` (or parked).
        let rss_waiting = settled_rss(pid, Duration::from_secs(300)).await?;
        let parked_now = parked(server.admin).await.unwrap_or(0.0) as usize;
        let tasks: Vec<_> = sockets
            .into_iter()
            .map(|mut s| {
                tokio::spawn(async move {
                    answered(&mut s).await?;
                    anyhow::Ok(s)
                })
            })
            .collect();
        let start = Instant::now();
        publish(guest, addr, "wake up").await?;
        // Every answered poll stays open until the last is answered: a
        // closing connection's work on the server is not the answer's.
        let mut open = Vec::with_capacity(n);
        for task in tasks {
            open.push(
                tokio::time::timeout(Duration::from_secs(120), task)
                    .await
                    .context("a poll never answered")???,
            );
        }
        let answer_all = start.elapsed();
        drop(open);
        drop(server);
        Ok(LongPolls {
            polls: n,
            parked: parked_now,
            open_all,
            rss_before,
            rss_waiting,
            answer_all,
        })
    })
}

pub struct Broadcast {
    pub members: usize,
    /// From the first member's connect to the last one's handshake done.
    pub open_all: Duration,
    pub rss_before: f64,
    pub rss: f64,
    pub reach_all: Duration,
}

/// A group member's read buffer in this process (see [`broadcast`]).
pub(crate) const MEMBER_READ_BUFFER: usize = 4096;

/// `n` WebSockets, members of one group, then one broadcast reaches them all.
pub fn broadcast(root: &Path, guest: Guest, n: usize) -> anyhow::Result<Broadcast> {
    crate::clients::check_open_files(n)?;
    let server = serve(root, guest, n, n)?;
    let (addr, pid) = (server.addr, server.child.id());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let rss_before = settled_rss(pid, Duration::from_secs(10)).await?;
        let url = match guest {
            Guest::PythonChat => format!("ws://{addr}/chatsocket"),
            Guest::Rust | Guest::RustParked => format!("ws://{addr}/ws?group=lobby"),
        };
        // tungstenite's default read buffer is 128 KiB, allocated at a
        // socket's first read: at 19,000 members the broadcast's "reach all"
        // measured this process zeroing 2.4 GiB of fresh pages (36% of the
        // machine's samples in `clear_page_erms`, the server 6%), not the
        // server. A member reads one short frame.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(MEMBER_READ_BUFFER);
        let mut members = Vec::with_capacity(n);
        let opening = Instant::now();
        for i in 0..n {
            let stream = crate::clients::connect(i, addr).await?;
            let (ws, _) = tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config))
                .await
                .with_context(|| format!("member {i}"))?;
            members.push(ws);
        }
        let open_all = opening.elapsed();
        let rss = settled_rss(pid, Duration::from_secs(300)).await?;
        let tasks: Vec<_> = members
            .into_iter()
            .map(|mut ws| {
                tokio::spawn(async move {
                    ws.next().await.context("closed")??;
                    anyhow::Ok(ws)
                })
            })
            .collect();
        let start = Instant::now();
        broadcast_one(guest, addr).await?;
        // Members stay until the last is reached: a member leaving runs
        // its guest's `on_close` and frees its instance, work that is not
        // the broadcast's.
        let mut open = Vec::with_capacity(n);
        for task in tasks {
            open.push(
                tokio::time::timeout(Duration::from_secs(120), task)
                    .await
                    .context("a member never got it")???,
            );
        }
        let reach_all = start.elapsed();
        drop(open);
        drop(server);
        Ok(Broadcast {
            members: n,
            open_all,
            rss_before,
            rss,
            reach_all,
        })
    })
}

/// The markdown section: the Rust guests at `polls` / `members` (their
/// polls waiting in their instances, then parked), the Python chat at
/// `python_polls` parked polls and `python_members` members (a CPython
/// instance per member: see the notes).
pub fn scenario_f(
    root: &Path,
    polls: usize,
    members: usize,
    python_polls: usize,
    python_members: usize,
) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let mut out = String::from("## f. Pub/sub: long polls and group broadcast\n\n");
    writeln!(
        out,
        "`waterspout serve` in its own process (2 worker threads), the clients in this one. A waiting poll either holds its guest instance, suspended in `wait`, or is **parked** (`park_waits`: no instance while it waits; the request runs again when the topic has news — docs/pubsub.md). The chat example (`examples/python/chat`) parks its polls; each of its WebSockets holds a CPython instance. The Rust test guests (`tests/guests/pubsub` `/wait`, `groups-ws` in group `lobby`) show what the host itself costs, with and without parking. RSS is the server's after it stopped growing; \"open all\" from the first poll sent to the last one waiting (parked polls are opened 500 at a time, each batch once parked: each first runs its guest); \"answer all\" is from sending the one publish (a chat post: kv update + publish) to the last poll's answer read; \"reach all\" likewise for the broadcast. Targets (issue #11): 10,000 polls on the chat example under 1 GiB (aim 300 MiB), answered within 250 ms (aim); a broadcast to 10,000 members within 250 ms (aim).\n"
    )?;
    writeln!(
        out,
        "| guest | what | clients | parked | RSS before MiB | RSS with all waiting MiB | KiB per client | open all s | answer all / reach all ms |"
    )?;
    writeln!(out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")?;
    for (guest, polls, members) in [
        (Guest::Rust, polls, members),
        (Guest::RustParked, polls, 0),
        (Guest::PythonChat, python_polls, python_members),
    ] {
        if polls == 0 {
            continue;
        }
        match long_polls(root, guest, polls) {
            Ok(r) => {
                eprintln!(
                    "{}: {} polls, RSS {:.0} → {:.0} MiB, answered in {:.0} ms",
                    guest.label(),
                    r.polls,
                    r.rss_before,
                    r.rss_waiting,
                    r.answer_all.as_secs_f64() * 1000.0
                );
                writeln!(
                    out,
                    "| {} | long polls | {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} |",
                    guest.label(),
                    r.polls,
                    r.parked,
                    r.rss_before,
                    r.rss_waiting,
                    (r.rss_waiting - r.rss_before) * 1024.0 / r.polls as f64,
                    r.open_all.as_secs_f64(),
                    r.answer_all.as_secs_f64() * 1000.0
                )?
            }
            Err(e) => writeln!(
                out,
                "| {} | long polls | {polls} | failed: {e:#} | | | | | | |",
                guest.label()
            )?,
        }
        if members == 0 {
            continue;
        }
        match broadcast(root, guest, members) {
            Ok(r) => {
                eprintln!(
                    "{}: {} members, RSS {:.0} → {:.0} MiB, reached in {:.0} ms",
                    guest.label(),
                    r.members,
                    r.rss_before,
                    r.rss,
                    r.reach_all.as_secs_f64() * 1000.0
                );
                writeln!(
                    out,
                    "| {} | group members | {} | – | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} |",
                    guest.label(),
                    r.members,
                    r.rss_before,
                    r.rss,
                    (r.rss - r.rss_before) * 1024.0 / r.members as f64,
                    r.open_all.as_secs_f64(),
                    r.reach_all.as_secs_f64() * 1000.0
                )?
            }
            Err(e) => writeln!(
                out,
                "| {} | group members | {members} | failed: {e:#} | | | | | | |",
                guest.label()
            )?,
        }
    }
    out.push('\n');
    Ok(out)
}
