//! The real `waterspout` binary as a process, for what only a process shows:
//! signals, kill -9, restarts on the same store, its log.

use std::ffi::OsStr;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ADMIN_TOKEN;
use super::measure::rss_kib;

/// `waterspout serve APP --listen 127.0.0.1:0 --store STORE`, logging at
/// `info`, with no admin token from the environment. Add arguments, then
/// [`ServerProcess::spawn`] it.
pub fn serve_command(app: impl AsRef<OsStr>, store: &Path) -> Command {
    let mut command = Command::new(server_binary());
    command
        .arg("serve")
        .arg(app)
        .args(["--listen", "127.0.0.1:0", "--store"])
        .arg(store)
        .env("WATERSPOUT_LOG", "info")
        .env_remove("WATERSPOUT_ADMIN_TOKEN");
    command
}

/// The test build of the binary (`tests/bin/waterspout-test-server.rs`).
/// Cargo names it in `CARGO_BIN_EXE_*` only while compiling a test target,
/// not this library, so it is looked for where Cargo puts it: in the profile
/// directory above the `deps/` one the test binary runs from.
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/PROFILE/deps/TEST");
    let binary = profile.join(format!("waterspout-test-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing (cargo builds it for `cargo test -p waterspout-tests`)",
        binary.display()
    );
    binary
}

/// A `waterspout serve` process started by a test, killed on drop: its
/// addresses, everything it has written to stderr so far, and a client.
pub struct ServerProcess {
    pub child: Child,
    /// The public address, `127.0.0.1:PORT`.
    pub addr: String,
    admin: Option<String>,
    log: Arc<Mutex<String>>,
    pub client: reqwest::Client,
    /// A store of its own, removed after the process is gone.
    own_store: Option<tempfile::TempDir>,
}

impl ServerProcess {
    /// Spawns `command` (see [`serve_command`]), drains its stderr into a log
    /// for the process's whole life (or it would block), and waits up to 60 s
    /// until it has printed its public address and, when `expect_admin`, its
    /// admin address.
    pub fn spawn(command: Command, expect_admin: bool) -> ServerProcess {
        ServerProcess::spawn_within(command, expect_admin, Duration::from_secs(60))
    }

    /// [`ServerProcess::spawn`], waiting up to `start` for the addresses (a
    /// server that builds its app first needs longer).
    pub fn spawn_within(mut command: Command, expect_admin: bool, start: Duration) -> ServerProcess {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the server");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
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
            match rx.recv_timeout(start) {
                Ok((true, a)) => addr = Some(a),
                Ok((false, a)) => admin = Some(a),
                Err(_) => panic!("the server did not start:\n{}", log.lock().unwrap()),
            }
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        ServerProcess {
            child,
            addr: addr.unwrap(),
            admin,
            log,
            client,
            own_store: None,
        }
    }

    /// `serve APP ARGS…` on a version store of its own: processes sharing a
    /// store would race on its files.
    pub fn on_own_store(app: &str, args: &[&str]) -> ServerProcess {
        let store = tempfile::tempdir().unwrap();
        let mut command = serve_command(app, store.path());
        command.args(args);
        let mut server = ServerProcess::spawn(command, false);
        server.own_store = Some(store);
        server
    }

    /// `serve APP --store STORE ARGS…` with the admin API on a free port and
    /// [`ADMIN_TOKEN`]; the store outlives the process, for restarts on it.
    pub fn with_admin(app: &Path, store: &Path, args: &[&str]) -> ServerProcess {
        let mut command = serve_command(app, store);
        command
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(args)
            .env("WATERSPOUT_ADMIN_TOKEN", ADMIN_TOKEN);
        ServerProcess::spawn(command, true)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A URL on the admin API (panics if it is off).
    pub fn admin_url(&self, path: &str) -> String {
        let admin = self.admin.as_deref().expect("the admin API is on");
        format!("http://{admin}{path}")
    }

    /// An admin API request carrying [`ADMIN_TOKEN`].
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.admin_url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// GET and return (status, body as text).
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// Everything the process has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` (or panics after 10 s); returns
    /// the log.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "log never contained {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the process in KiB; 0 if it cannot be read.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(&self.child.id().to_string())
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}
