//! Scenario j: 100,000 waiting connections on this box, spread over the
//! nodes of one cluster (one Redis, docs/cluster.md).
//!
//! One process cannot hold them here: every connection is a file, and the
//! open-files hard limit is 20,000 per process without CAP_SYS_RESOURCE to
//! raise it; an instance held by a connection also takes ~6 of the kernel's
//! `vm.max_map_count` mappings of its process (65,530 by default). So the
//! connections go to as many `waterspout serve` nodes as those limits ask
//! for, each a node of one cluster on a Redis of its own, as a Tornado app
//! outgrowing one process runs one per core behind a balancer. Their
//! clients, for the same reason, are processes of their own: this tool run
//! again with `--clients` (one per node). One publish or broadcast made on
//! the first node reaches the waiters of every node through Redis.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::pubsub::{self, Guest};

/// What one client process opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    /// Long polls (`/wait` on topic `news`).
    Poll,
    /// WebSocket members of group `lobby`.
    Member,
}

/// A connection kept open after its answer (only to be dropped).
type Open = Box<dyn Send>;

/// A client process's orders (`--clients JSON`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Spec {
    kind: Kind,
    /// The node to connect to, and its admin API (for its parked count).
    addr: SocketAddr,
    admin: SocketAddr,
    count: usize,
    /// The number of this process's first connection ([`crate::clients::reserve`]).
    first: usize,
    /// A poll's raw request, or a member's URL.
    request: String,
    /// Polls that park: sent 500 at a time, each batch once parked.
    park: bool,
}

/// A client process: opens `spec.count` connections, says `open SECONDS`,
/// then `done UNIX_NANOS` when the last of them has its answer (a poll's
/// response, a member's message), and holds them until it is killed.
pub fn clients(spec: &str) -> anyhow::Result<()> {
    let spec: Spec = serde_json::from_str(spec).context("--clients")?;
    crate::clients::check_open_files(spec.count)?;
    crate::clients::start_at(spec.first);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let opening = Instant::now();
        let mut waits = Vec::with_capacity(spec.count);
        match spec.kind {
            Kind::Poll => {
                let mut sockets = Vec::with_capacity(spec.count);
                for first in (0..spec.count).step_by(500) {
                    for i in first..(first + 500).min(spec.count) {
                        let mut socket = crate::clients::connect(i, spec.addr).await?;
                        socket.write_all(spec.request.as_bytes()).await?;
                        sockets.push(socket);
                    }
                    let deadline = Instant::now() + Duration::from_secs(300);
                    while spec.park && pubsub::parked(spec.admin).await? < sockets.len() as f64 {
                        anyhow::ensure!(Instant::now() < deadline, "the polls did not park within 300 s");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                for mut socket in sockets {
                    waits.push(tokio::spawn(async move {
                        pubsub::answered(&mut socket).await?;
                        anyhow::Ok((SystemTime::now(), Box::new(socket) as Open))
                    }));
                }
            }
            Kind::Member => {
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .read_buffer_size(pubsub::MEMBER_READ_BUFFER);
                let mut members = Vec::with_capacity(spec.count);
                for i in 0..spec.count {
                    let stream = crate::clients::connect(i, spec.addr).await?;
                    let (ws, _) = tokio_tungstenite::client_async_with_config(
                        spec.request.as_str(),
                        stream,
                        Some(config),
                    )
                    .await
                    .with_context(|| format!("member {i}"))?;
                    members.push(ws);
                }
                for mut ws in members {
                    waits.push(tokio::spawn(async move {
                        ws.next().await.context("closed")??;
                        anyhow::Ok((SystemTime::now(), Box::new(ws) as Open))
                    }));
                }
            }
        }
        println!("open {}", opening.elapsed().as_secs_f64());
        // Every connection stays open until this process is killed, after
        // every process's last answer: one closing (a member's `on_close`,
        // its instance freed; hyper shutting a socket down) is work on the
        // machine's two cores that is not the answer's.
        let mut last = UNIX_EPOCH;
        let mut open = Vec::with_capacity(waits.len());
        for wait in waits {
            let (at, conn) = tokio::time::timeout(Duration::from_secs(300), wait)
                .await
                .context("a client never had its answer")???;
            last = last.max(at);
            open.push(conn);
        }
        println!("done {}", last.duration_since(UNIX_EPOCH)?.as_nanos());
        std::future::pending::<()>().await;
        drop(open);
        Ok(())
    })
}

/// A running client process and the lines it printed.
struct ClientProc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ClientProc {
    fn spawn(spec: &Spec) -> anyhow::Result<ClientProc> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--clients")
            .arg(serde_json::to_string(spec)?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a client process")?;
        let out = child.stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(ClientProc { child, lines })
    }

    /// The value of the next line, which must start with `word`.
    fn expect(&mut self, word: &str, limit: Duration) -> anyhow::Result<String> {
        match self.lines.recv_timeout(limit) {
            Ok(line) => Ok(line
                .strip_prefix(word)
                .with_context(|| format!("a client process said {line:?}, not {word:?}"))?
                .trim()
                .to_owned()),
            Err(_) => bail!(
                "a client process said no {word:?} within {limit:?} (it {})",
                match self.child.try_wait()? {
                    Some(status) => format!("exited: {status}"),
                    None => "still runs".into(),
                }
            ),
        }
    }
}

impl Drop for ClientProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connections one node takes: what its open files allow, and for waiters
/// holding an instance what its mappings allow (~2 per pool stack, with
/// `--max-instances` = held + 200, and ~4 per live instance: section f's
/// notes).
fn per_node(guest: Guest) -> anyhow::Result<usize> {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let by_files = (hard.saturating_sub(crate::clients::SPARE_FILES + 400)) as usize;
    if guest == Guest::RustParked {
        return Ok(by_files);
    }
    let maps: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")?
        .trim()
        .parse()
        .context("vm.max_map_count")?;
    Ok(by_files.min(maps.saturating_sub(4_000) / 6))
}

pub struct Spread {
    pub total: usize,
    pub nodes: usize,
    pub parked: usize,
    /// The nodes' RSS summed, MiB.
    pub rss_before: f64,
    pub rss_waiting: f64,
    pub redis_rss: f64,
    /// From starting the client processes to the last one's connections open.
    pub open_all: Duration,
    /// From sending the publish (broadcast) to the last client's answer.
    pub reach_all: Duration,
}

/// `total` long polls (`Kind::Poll`) or group members over as many nodes
/// as they need, then one publish (broadcast) on the first node.
fn run(root: &Path, guest: Guest, kind: Kind, total: usize) -> anyhow::Result<Spread> {
    let per = per_node(guest)?;
    anyhow::ensure!(per >= 1_000, "a node may hold only {per} connections here");
    let nodes = total.div_ceil(per);
    let per = total.div_ceil(nodes);
    // The nodes inherit this process's raised limit.
    crate::clients::check_open_files(per)?;
    let (redis, url) = crate::cluster::redis()?;
    let held = match guest {
        Guest::RustParked => per.min(300),
        _ => per,
    };
    let servers = (0..nodes)
        .map(|_| pubsub::serve_node(root, guest, per, held, Some(&url)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let poll = match kind {
        Kind::Poll => runtime.block_on(pubsub::poll_request(guest, servers[0].addr))?,
        Kind::Member => String::new(),
    };
    let settled = |limit: Duration| -> anyhow::Result<f64> {
        let rss = runtime.block_on(futures_util::future::try_join_all(
            servers.iter().map(|s| pubsub::settled_rss(s.child.id(), limit)),
        ))?;
        Ok(rss.iter().sum())
    };
    let rss_before = settled(Duration::from_secs(10))?;
    let opening = Instant::now();
    let mut procs = Vec::with_capacity(nodes);
    for (i, server) in servers.iter().enumerate() {
        let count = per.min(total - i * per);
        procs.push(ClientProc::spawn(&Spec {
            kind,
            addr: server.addr,
            admin: server.admin,
            count,
            first: crate::clients::reserve(count),
            request: match kind {
                Kind::Poll => poll.clone(),
                Kind::Member => format!("ws://{}/ws?group=lobby", server.addr),
            },
            park: guest == Guest::RustParked,
        })?);
    }
    for p in &mut procs {
        p.expect("open", Duration::from_secs(900))?;
    }
    let open_all = opening.elapsed();
    let rss_waiting = settled(Duration::from_secs(300))?;
    let parked = runtime.block_on(async {
        let mut n = 0.0;
        for s in &servers {
            n += pubsub::parked(s.admin).await.unwrap_or(0.0);
        }
        n as usize
    });
    eprintln!("j: {total} waiting on {nodes} nodes, publishing");
    let start = SystemTime::now();
    runtime.block_on(async {
        match kind {
            Kind::Poll => pubsub::publish(guest, servers[0].addr, "wake up").await.map(drop),
            Kind::Member => pubsub::broadcast_one(guest, servers[0].addr).await,
        }
    })?;
    let mut last = start;
    let mut each = Vec::with_capacity(nodes);
    for p in &mut procs {
        let nanos: u64 = p.expect("done", Duration::from_secs(330))?.parse()?;
        let at = UNIX_EPOCH + Duration::from_nanos(nanos);
        each.push(format!("{:.0}", at.duration_since(start)?.as_secs_f64() * 1e3));
        last = last.max(at);
    }
    eprintln!("j: each node's last answer (ms): {}", each.join(", "));
    let redis_rss = pubsub::rss_mib(redis.child.id())?;
    Ok(Spread {
        total,
        nodes,
        parked,
        rss_before,
        rss_waiting,
        redis_rss,
        open_all,
        reach_all: last.duration_since(start)?,
    })
}

/// The markdown section: `total` WebSocket group members, long polls
/// holding their instances, and parked long polls, each over nodes.
pub fn scenario_j(root: &Path, total: usize) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let mut out = format!("## j. {total} connections on one machine: nodes of one cluster\n\n");
    writeln!(
        out,
        "One `waterspout serve` holds as many connections as it may open files, and here the hard limit is {} per process (raising it needs CAP_SYS_RESOURCE, which this machine does not give); a connection holding a guest instance also takes ~6 of its process's `vm.max_map_count` mappings ({} here). So the connections are spread over as many nodes as those limits ask for, every node a `waterspout serve` of the Rust test guests (section f) in a cluster on one Redis (docs/cluster.md), and each node's clients are a process of their own (this tool with `--clients`). One publish (broadcast) is made on the first node; Redis carries it to the others. RSS is the nodes' summed (Redis's beside it), \"before\" with no client, \"with all waiting\" after it stopped growing; \"open all\" is from starting the client processes to the last connection open (parked polls in batches of 500, each once parked); \"answer all\" / \"reach all\" from sending the publish (broadcast) to the last client's answer. Aim (issue #16): under 4 GiB, reached within 1 s.\n",
        rlimit::getrlimit(rlimit::Resource::NOFILE)?.1,
        std::fs::read_to_string("/proc/sys/vm/max_map_count")?.trim()
    )?;
    writeln!(
        out,
        "| guest | what | clients | nodes | parked | RSS before MiB | RSS with all waiting MiB | KiB per client | Redis RSS MiB | open all s | answer all / reach all ms |"
    )?;
    writeln!(
        out,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )?;
    for (guest, kind, what) in [
        (Guest::Rust, Kind::Member, "group members"),
        (Guest::RustParked, Kind::Poll, "long polls"),
        (Guest::Rust, Kind::Poll, "long polls"),
    ] {
        let label = match guest {
            Guest::RustParked => "Rust test guests, parked",
            _ => "Rust test guests",
        };
        match run(root, guest, kind, total) {
            Ok(r) => {
                eprintln!(
                    "{label} {what}: {} over {} nodes, RSS {:.0} → {:.0} MiB, reached in {:.0} ms",
                    r.total,
                    r.nodes,
                    r.rss_before,
                    r.rss_waiting,
                    r.reach_all.as_secs_f64() * 1e3
                );
                writeln!(
                    out,
                    "| {label} | {what} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} |",
                    r.total,
                    r.nodes,
                    if kind == Kind::Poll {
                        r.parked.to_string()
                    } else {
                        "–".into()
                    },
                    r.rss_before,
                    r.rss_waiting,
                    (r.rss_waiting - r.rss_before) * 1024.0 / r.total as f64,
                    r.redis_rss,
                    r.open_all.as_secs_f64(),
                    r.reach_all.as_secs_f64() * 1e3
                )?
            }
            Err(e) => writeln!(
                out,
                "| {label} | {what} | {total} | failed: {e:#} | | | | | | | |"
            )?,
        }
    }
    out.push('\n');
    Ok(out)
}
