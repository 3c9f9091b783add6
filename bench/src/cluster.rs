//! Scenario h: three nodes on one Redis (`[cluster]`, docs/cluster.md)
//! against one node with the embedded backends, in the same run:
//!
//! - publish-to-wake: a long poll waits on node C, a publish is made on node
//!   A; the time from sending the publish to C's answer (p50, p99). The
//!   single-node baseline waits and publishes on the same node.
//! - deploy-to-all-nodes: an upload on node A with `?wait=all` (answered once
//!   every node serves it), alternating two versions; the baseline is the
//!   same upload to a single node.
//!
//! Every process is the release `waterspout` binary; redis-server is
//! Debian's. The guests are the test guests (`cargo test --workspace`
//! builds them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const TOKEN: &str = "bench-token";

pub(crate) struct Proc {
    pub(crate) child: Child,
    _dirs: Vec<tempfile::TempDir>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_port(addr: SocketAddr, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            bail!("{what} did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub(crate) fn redis() -> anyhow::Result<(Proc, String)> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server (apt-get install redis-server)")?;
    wait_port(format!("127.0.0.1:{port}").parse()?, &mut child, "redis-server")?;
    Ok((
        Proc {
            child,
            _dirs: vec![dir],
        },
        format!("redis://127.0.0.1:{port}"),
    ))
}

fn guest(root: &Path, name: &str) -> PathBuf {
    root.join("tests/guests/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"))
}

/// The app: `/` version a, `/ps/…` the pub/sub test guest.
fn app(root: &Path, redis: Option<&str>) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let mut manifest = format!(
        "[[route]]\npattern = \"/ps/.*\"\nhandler = \"pubsub\"\n\n[[route]]\npattern = \"/\"\nhandler = \"version\"\n\n\
         [handler.version]\nwasm = \"{}\"\n\n[handler.pubsub]\nwasm = \"{}\"\ntimeout_ms = 5000\nwait_timeout_ms = 20000\npubsub_topics = [\"bench\"]\n",
        guest(root, "version_a").display(),
        guest(root, "pubsub").display()
    );
    if let Some(url) = redis {
        manifest.push_str(&format!("\n[cluster]\nredis = \"{url}\"\nprefix = \"bench\"\n"));
    }
    for name in ["version_a", "version_b", "pubsub"] {
        anyhow::ensure!(
            guest(root, name).is_file(),
            "{} is missing (`cargo test --workspace --no-run` builds the test guests)",
            guest(root, name).display()
        );
    }
    std::fs::write(dir.path().join("waterspout.toml"), manifest)?;
    Ok(dir)
}

struct Node {
    _proc: Proc,
    addr: SocketAddr,
    admin: SocketAddr,
}

fn node(app: &Path) -> anyhow::Result<Node> {
    let bin = crate::profile_dir()?.join("waterspout");
    let (store, cache) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut child = Command::new(&bin)
        .arg("serve")
        .arg(app)
        .args([
            "--listen",
            &addr.to_string(),
            "--admin-listen",
            &admin.to_string(),
        ])
        .args(["--workers", "1", "--store"])
        .arg(store.path())
        .arg("--cache-dir")
        .arg(cache.path())
        .env("WATERSPOUT_ADMIN_TOKEN", TOKEN)
        .env("WATERSPOUT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} (`make bench` builds it)", bin.display()))?;
    wait_port(addr, &mut child, "waterspout serve")?;
    wait_port(admin, &mut child, "the admin API")?;
    Ok(Node {
        _proc: Proc {
            child,
            _dirs: vec![store, cache],
        },
        addr,
        admin,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `rounds` times: a long poll on `waiter`, then a publish on `publisher`;
/// the time from sending the publish to the poll's answer.
async fn publish_to_wake(
    waiter: SocketAddr,
    publisher: SocketAddr,
    rounds: usize,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let latest: u64 = client
            .get(format!("http://{waiter}/ps/latest?topic=bench"))
            .send()
            .await?
            .text()
            .await?
            .trim()
            .parse()
            .context("latest cursor")?;
        let poll = {
            let (client, url) = (
                client.clone(),
                format!("http://{waiter}/ps/wait?topic=bench&after={latest}&timeout_ms=15000"),
            );
            tokio::spawn(async move {
                let r = client.get(url).send().await?;
                let body = r.text().await?;
                Ok::<_, anyhow::Error>((Instant::now(), body))
            })
        };
        // The poll is suspended in its wait well before this.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let start = Instant::now();
        let r = client
            .post(format!("http://{publisher}/ps/publish?topic=bench&data=m{i}"))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "publish: {}", r.status());
        let (woke, body) = poll.await??;
        anyhow::ensure!(body.contains(&format!("m{i}")), "the poll answered {body}");
        samples.push(woke.saturating_duration_since(start));
    }
    samples.sort();
    Ok(samples)
}

/// `rounds` uploads on `admin` with `?wait=all`, alternating versions b and a.
async fn deploys(root: &Path, admin: SocketAddr, rounds: usize) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let wasm = [
        std::fs::read(guest(root, "version_b"))?,
        std::fs::read(guest(root, "version_a"))?,
    ];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let start = Instant::now();
        let r = client
            .post(format!(
                "http://{admin}/handlers/version/versions?wait=all&timeout=30"
            ))
            .bearer_auth(TOKEN)
            .body(wasm[i % 2].clone())
            .send()
            .await?;
        let status = r.status();
        let answer: serde_json::Value = r.json().await?;
        samples.push(start.elapsed());
        anyhow::ensure!(status == 201, "upload: {status} {answer}");
        if let Some(seen) = answer.get("nodes_seen") {
            anyhow::ensure!(
                answer["nodes_applied"] == *seen,
                "not every node applied it: {answer}"
            );
        }
    }
    samples.sort();
    Ok(samples)
}

/// The markdown section.
pub fn scenario_h(runtime: &tokio::runtime::Runtime, root: &Path) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    const WAKES: usize = 200;
    const DEPLOYS: usize = 10;
    let (redis_proc, url) = redis()?;
    let cluster_app = app(root, Some(&url))?;
    let single_app = app(root, None)?;
    let (a, b, c) = (
        node(cluster_app.path())?,
        node(cluster_app.path())?,
        node(cluster_app.path())?,
    );
    let single = node(single_app.path())?;
    let _ = &b;
    let (cross, local, cluster_deploys, single_deploys) = runtime.block_on(async {
        // Warm up: a few rounds each, not counted.
        publish_to_wake(c.addr, a.addr, 10).await?;
        publish_to_wake(single.addr, single.addr, 10).await?;
        let cross = publish_to_wake(c.addr, a.addr, WAKES).await?;
        let local = publish_to_wake(single.addr, single.addr, WAKES).await?;
        let cluster_deploys = deploys(root, a.admin, DEPLOYS).await?;
        let single_deploys = deploys(root, single.admin, DEPLOYS).await?;
        Ok::<_, anyhow::Error>((cross, local, cluster_deploys, single_deploys))
    })?;
    drop((a, b, c, single, redis_proc));

    let mut out = String::from("## h. Cluster: three nodes on Redis vs one node\n\n");
    writeln!(
        out,
        "Three `waterspout serve` processes (`--workers 1` each) with `[cluster] redis` on one local `redis-server`, against one node with the embedded backends, measured in the same run on the same machine (everything on loopback, 2 cores shared by all processes). Guests: the pub/sub and version test guests.\n"
    )?;
    writeln!(out, "| measurement | cluster (3 nodes) | single node | ratio |")?;
    writeln!(out, "| --- | --- | --- | --- |")?;
    for (name, cluster, single) in [
        ("publish-to-wake p50 (wait on C, publish on A)", &cross, &local),
        ("publish-to-wake p99", &cross, &local),
    ] {
        let p = if name.contains("p99") { 0.99 } else { 0.5 };
        let (x, y) = (percentile(cluster, p), percentile(single, p));
        writeln!(
            out,
            "| {name} | {:.2} ms | {:.2} ms | {:.1}× |",
            ms(x),
            ms(y),
            ms(x) / ms(y)
        )?;
    }
    for (name, p) in [
        ("deploy to all nodes p50 (upload `?wait=all`)", 0.5),
        ("deploy to all nodes max", 1.0),
    ] {
        let (x, y) = (percentile(&cluster_deploys, p), percentile(&single_deploys, p));
        writeln!(
            out,
            "| {name} | {:.1} ms | {:.1} ms | {:.1}× |",
            ms(x),
            ms(y),
            ms(x) / ms(y)
        )?;
    }
    writeln!(
        out,
        "\n{WAKES} publish-to-wake rounds and {DEPLOYS} deploys each (versions a and b alternately, so every node compiles each version once and then takes it from its compile cache). A deploy's time is the upload's answer on node A with `?wait=all`: validate and compile on A, bytes and the change into Redis, the other two nodes fetch, compile and swap, and A sees them all applied (polled every 20 ms)."
    )?;
    Ok(out)
}
