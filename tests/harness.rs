//! Starting the real server on 127.0.0.1:0 for a test, and talking to it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use waterspout::admin::{AdminHandle, AdminToken};
use waterspout::{App, ServerConfig, ServerHandle};

/// The admin token of [`admin_config`].
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Default settings plus the admin API on a free loopback port with
/// [`ADMIN_TOKEN`]; versions are kept in memory unless `store_dir` is set.
pub fn admin_config() -> ServerConfig {
    ServerConfig {
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        admin_token: AdminToken::new(ADMIN_TOKEN),
        ..ServerConfig::default()
    }
}

/// A server running in this process on a free loopback port.
pub struct TestServer {
    pub app: Arc<App>,
    handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The admin API, when the config has a token.
    pub admin: Option<AdminHandle>,
}

impl TestServer {
    /// Loads the app in `dir` with default settings and serves it.
    pub async fn start(dir: &str) -> TestServer {
        Self::start_with(dir, ServerConfig::default()).await
    }

    pub async fn start_with(dir: &str, config: ServerConfig) -> TestServer {
        waterspout::cli::init_tracing();
        let dir = Path::new(dir).to_owned();
        let app = tokio::task::spawn_blocking(move || App::load(&dir, config))
            .await
            .expect("loading task")
            .unwrap_or_else(|e| panic!("loading the app failed: {e}"));
        let handle = waterspout::server::start(app.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("binding 127.0.0.1:0");
        let addr = handle.local_addr();
        let admin = waterspout::admin::start(app.clone())
            .await
            .expect("binding the admin API");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        TestServer {
            app,
            handle: Some(handle),
            addr,
            client,
            admin,
        }
    }

    /// A URL on the admin API (panics if it is off).
    pub fn admin_url(&self, path: &str) -> String {
        let admin = self.admin.as_ref().expect("the admin API is on");
        format!("http://{}{}", admin.local_addr(), path)
    }

    /// An admin API request carrying [`ADMIN_TOKEN`].
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.admin_url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// GET and return (status, body as text).
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    pub async fn shutdown(mut self) {
        if let Some(admin) = self.admin.take() {
            admin.shutdown().await;
        }
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

/// A `waterspout` process started by a test: its addresses, and everything it
/// has written to stderr so far.
pub struct Spawned {
    pub child: std::process::Child,
    pub addr: String,
    pub admin: Option<String>,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Spawns `command` (a `waterspout serve …` the caller prepared), drains its
/// stderr into a log for the process's whole life (or it would block), and
/// waits up to 60 s until it has printed its public address and, when
/// `expect_admin`, its admin address.
pub fn spawn_server(mut command: std::process::Command, expect_admin: bool) -> Spawned {
    use std::io::BufRead;

    let mut child = command
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting the server");
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            for (marker, public) in [("serving on http://", true), ("admin API on http://", false)] {
                if let Some(addr) = line.split(marker).nth(1) {
                    let _ = tx.send((public, addr.trim().to_owned()));
                }
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let (mut addr, mut admin) = (None, None);
    while addr.is_none() || (expect_admin && admin.is_none()) {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok((true, a)) => addr = Some(a),
            Ok((false, a)) => admin = Some(a),
            Err(_) => panic!("the server did not start:\n{}", log.lock().unwrap()),
        }
    }
    Spawned {
        child,
        addr: addr.unwrap(),
        admin,
        log,
    }
}

/// Resident memory of a process in KiB, from `/proc/PID/status` (`"self"` for
/// this process, where in-process test servers run); 0 if it cannot be read.
pub fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Taken first by a test that measures this process (its resident memory,
/// the latency of its requests): the tests of one binary run in parallel,
/// and two such tests side by side would move each other's numbers.
pub async fn measure_alone() -> tokio::sync::MutexGuard<'static, ()> {
    MEASURING.lock().await
}
