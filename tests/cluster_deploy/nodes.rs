//! A Redis server and nodes of one app, for the tests of this binary.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use waterspout_tests::harness::{ADMIN_TOKEN, ServerProcess, app_with_manifest, serve_command};

/// `redis-server` (Debian's package, `make tools-redis`) on a free port,
/// nothing saved to disk, killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server (make tools-redis installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An app directory whose `waterspout.toml` is `manifest` plus a
/// `[cluster]` section on `redis`.
pub fn cluster_app(manifest: &str, redis: &Redis) -> tempfile::TempDir {
    app_with_manifest(&format!(
        "{manifest}\n[cluster]\nredis = \"{}\"\nprefix = \"test\"\n",
        redis.url()
    ))
}

/// One node: the process, and a store and compile cache of its own (which
/// outlive the process, for restarts on them).
pub struct Node {
    pub process: ServerProcess,
    pub store: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Node {
    /// `waterspout serve APP` with the admin API on a free port.
    pub fn start(app: &Path) -> Node {
        let store = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let process = spawn(app, store.path(), cache.path());
        Node {
            process,
            store,
            cache,
        }
    }

    /// Kills the process (SIGKILL) and starts it again on the same store.
    pub fn restart(&mut self, app: &Path) {
        self.process.kill_9();
        self.process = spawn(app, self.store.path(), self.cache.path());
    }

    /// GET `path`: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.process.get_text(path).await
    }

    /// An admin call's (status, JSON).
    pub async fn admin(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> (u16, serde_json::Value) {
        let mut request = self.process.admin(method, path);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("admin call");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, json)
    }

    /// The active version's SHA-256 of `handler`, as the admin API lists it.
    pub async fn active_sha(&self, handler: &str) -> String {
        let (status, info) = self
            .admin(Method::GET, &format!("/handlers/{handler}"), None)
            .await;
        assert_eq!(status, 200, "{info}");
        info["sha256"].as_str().unwrap().to_owned()
    }
}

fn spawn(app: &Path, store: &Path, cache: &Path) -> ServerProcess {
    let mut command = serve_command(app, store);
    command
        .args(["--admin-listen", "127.0.0.1:0", "--workers", "1", "--cache-dir"])
        .arg(cache)
        .env("WATERSPOUT_ADMIN_TOKEN", ADMIN_TOKEN);
    ServerProcess::spawn(command, true)
}

/// Polls `check` every 20 ms until it returns true or `within` has passed;
/// returns how long it took, or None.
pub async fn within<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
