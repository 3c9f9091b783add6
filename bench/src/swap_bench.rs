//! Hot-swap timings, part of scenario d: how soon a new version serves after
//! the upload call returns, and how long a restart takes to serve again with
//! a cold and a warm compile cache, for a small component (hello, ~50 KB)
//! and a large one (a Python handler, ~18 MB, when `componentize-py` is
//! installed).
//!
//! Alone: `cargo run --release -p waterspout-bench -- --swap-bench` after the
//! guests are built (`cargo build -p waterspout-tests` builds them); `--out
//! FILE` also writes the tables. Build `--release -p waterspout` first for
//! the restart-as-a-process column.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use waterspout::AdminToken;
use waterspout::{App, ServerConfig};

const TOKEN: &str = "bench";

fn guest(root: &Path, path: &str) -> anyhow::Result<PathBuf> {
    let path = root.join(path);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build the guests first (`cargo build -p waterspout-tests`)",
        path.display()
    );
    Ok(path)
}

/// An app directory serving `wasm` as handler `h` on `/`.
fn app_dir(wasm: &Path) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::copy(wasm, dir.path().join("h.wasm"))?;
    std::fs::write(
        dir.path().join("waterspout.toml"),
        "[[route]]\npattern = \"/\"\nhandler = \"h\"\n\n[handler.h]\nwasm = \"h.wasm\"\nmemory_limit_mb = 256\n",
    )?;
    Ok(dir)
}

fn config(cache: &Path, store: &Path) -> ServerConfig {
    let mut config = ServerConfig {
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        admin_token: AdminToken::new(TOKEN),
        store_dir: Some(store.to_owned()),
        ..ServerConfig::default()
    };
    config.engine.cache_dir = Some(cache.to_owned());
    config
}

struct Running {
    app: Arc<App>,
    server: waterspout::ServerHandle,
    admin: Option<waterspout::admin::AdminHandle>,
}

impl Running {
    async fn start(dir: &Path, config: ServerConfig) -> anyhow::Result<Running> {
        let dir = dir.to_owned();
        let app = tokio::task::spawn_blocking(move || App::load(&dir, config)).await??;
        let server = waterspout::server::start(app.clone(), "127.0.0.1:0".parse()?).await?;
        let admin = waterspout::admin::start(app.clone()).await?;
        Ok(Running { app, server, admin })
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin.as_ref().unwrap().local_addr())
    }

    async fn stop(self) {
        if let Some(admin) = self.admin {
            admin.shutdown().await;
        }
        self.server.shutdown().await;
        drop(self.app);
    }
}

async fn get(client: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<(u16, String)> {
    let r = client.get(format!("http://{addr}/")).send().await?;
    Ok((r.status().as_u16(), r.text().await?))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Runs the measurements; returns them as markdown with its own `#` heading.
pub async fn run(root: &Path) -> anyhow::Result<String> {
    let version_a = guest(root, "tests/guests/target/wasm32-wasip2/release/version_a.wasm")?;
    let version_b = guest(root, "tests/guests/target/wasm32-wasip2/release/version_b.wasm")?;
    let hello = guest(root, "examples/target/wasm32-unknown-unknown/release/hello.wasm")?;
    let client = reqwest::Client::new();
    let mut out = String::from("# Hot swap: measurements\n\n");
    out.push_str(&format!(
        "Measured by `cargo run --release -p waterspout-bench -- --swap-bench` on this machine ({} cores), in process over loopback.\n\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    ));

    // 1. Upload call returning → first response of the new version.
    let cache = tempfile::tempdir()?;
    let store = tempfile::tempdir()?;
    let app = app_dir(&version_a)?;
    let running = Running::start(app.path(), config(cache.path(), store.path())).await?;
    let bytes = [std::fs::read(&version_a)?, std::fs::read(&version_b)?];
    const ROUNDS: usize = 50;
    let (mut calls, mut visible, mut activations) = (Vec::new(), Vec::new(), Vec::new());
    let mut extra_attempts = 0;
    for round in 1..=ROUNDS {
        let wanted = if round % 2 == 1 { "b" } else { "a" };
        let t = Instant::now();
        let r = client
            .post(running.admin_url("/handlers/h/versions"))
            .bearer_auth(TOKEN)
            .body(bytes[round % 2].clone())
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "upload failed: {}", r.text().await?);
        let returned = Instant::now();
        calls.push(returned - t);
        loop {
            let (status, body) = get(&client, running.addr()).await?;
            anyhow::ensure!(status == 200, "GET / answered {status}");
            if body == wanted {
                break;
            }
            extra_attempts += 1;
        }
        visible.push(returned.elapsed());
    }
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let r = client
            .post(running.admin_url("/handlers/h/rollback"))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "rollback failed: {}", r.text().await?);
        activations.push(t.elapsed());
    }
    running.stop().await;
    for v in [&mut calls, &mut visible, &mut activations] {
        v.sort();
    }
    out.push_str("## Swap visibility\n\n");
    out.push_str(&format!(
        "{ROUNDS} uploads alternating two ~50 KB components (compile cache warm after the first two).\n\n"
    ));
    out.push_str("| what | p50 | p90 | max |\n|---|---|---|---|\n");
    for (what, v) in [
        (
            "upload call returning → first response of the new version",
            &visible,
        ),
        (
            "upload call (stream, validate, compile from cache, fsync, swap)",
            &calls,
        ),
        (
            "rollback call (version kept compiled in memory, fsync, swap)",
            &activations,
        ),
    ] {
        out.push_str(&format!(
            "| {what} | {} | {} | {} |\n",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.9)),
            ms(*v.last().unwrap())
        ));
    }
    out.push_str(&format!(
        "\nRequests that got the old version after the call returned: {extra_attempts} of {ROUNDS}.\n\n"
    ));

    // 2. Restart → serving, cold and warm compile cache.
    out.push_str("## Restart to serving\n\n");
    out.push_str(
        "`App::load` (engine, store, compile or cache load, link) + bind + the first `GET /` answered. \
         Cold: empty compile cache and store. Warm: the cache and store of the previous start (median of 5).\n\n",
    );
    // The `waterspout` binary of the same build, beside this one.
    let binary = std::env::current_exe()?
        .parent()
        .map(|dir| dir.join("waterspout"))
        .filter(|p| p.is_file());
    out.push_str(
        "| component | size | cold cache | warm cache | warm, as a process (`waterspout serve`, until the first 200) |\n\
         |---|---|---|---|---|\n",
    );
    let mut components = vec![("hello (Rust)", hello)];
    match python_component(root).await {
        Ok(path) => components.push(("Python handler (componentize-py)", path)),
        Err(e) => eprintln!("skipping the large component: {e:#}"),
    }
    for (name, wasm) in components {
        let size = std::fs::metadata(&wasm)?.len();
        let app = app_dir(&wasm)?;
        let (cache, store) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let cold = restart(app.path(), cache.path(), store.path(), &client).await?;
        let mut warm = Vec::new();
        for _ in 0..5 {
            warm.push(restart(app.path(), cache.path(), store.path(), &client).await?);
        }
        warm.sort();
        let process = match &binary {
            Some(binary) => {
                let mut runs = Vec::new();
                for _ in 0..5 {
                    runs.push(
                        process_restart(binary, app.path(), cache.path(), store.path(), &client).await?,
                    );
                }
                runs.sort();
                ms(runs[2])
            }
            None => "(build `--release -p waterspout` first)".into(),
        };
        out.push_str(&format!(
            "| {name} | {:.1} MB | {} | {} | {process} |\n",
            size as f64 / 1e6,
            ms(cold),
            ms(warm[2])
        ));
    }
    Ok(out)
}

/// One start on `store` and `cache`, until `GET /` answers 200.
async fn restart(
    app: &Path,
    cache: &Path,
    store: &Path,
    client: &reqwest::Client,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let running = Running::start(app, config(cache, store)).await?;
    let (status, body) = get(client, running.addr()).await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(status == 200, "GET / answered {status}: {body}");
    running.stop().await;
    Ok(elapsed)
}

/// Starts the real binary on `store` and `cache` and times it until `GET /`
/// answers 200 (exec, runtime, load, bind, first request).
async fn process_restart(
    binary: &Path,
    app: &Path,
    cache: &Path,
    store: &Path,
    client: &reqwest::Client,
) -> anyhow::Result<Duration> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let t = Instant::now();
    let mut child = std::process::Command::new(binary)
        .arg("serve")
        .arg(app)
        .args(["--listen", &addr.to_string(), "--cache-dir"])
        .arg(cache)
        .arg("--store")
        .arg(store)
        .env("WATERSPOUT_LOG", "warn")
        .env_remove("WATERSPOUT_ADMIN_TOKEN")
        .spawn()?;
    let elapsed = loop {
        if let Ok((200, _)) = get(client, addr).await {
            break t.elapsed();
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(60),
            "the server did not serve within 60 s"
        );
        tokio::time::sleep(Duration::from_micros(500)).await;
    };
    child.kill()?;
    child.wait()?;
    Ok(elapsed)
}

/// Builds the Python handler `bench/swap_bench_app.py` with componentize-py.
async fn python_component(root: &Path) -> anyhow::Result<PathBuf> {
    let out = std::env::temp_dir().join("waterspout-swap-bench-python.wasm");
    if out.is_file() {
        return Ok(out);
    }
    let source = tempfile::tempdir()?;
    std::fs::copy(root.join("bench/swap_bench_app.py"), source.path().join("app.py"))?;
    let status = std::process::Command::new("componentize-py")
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "handler", "componentize", "app", "-o"])
        .arg(&out)
        .current_dir(source.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .map_err(|e| anyhow::anyhow!("componentize-py not runnable ({e}); `pip install componentize-py`"))?;
    anyhow::ensure!(status.success(), "componentize-py failed: {status}");
    Ok(out)
}
