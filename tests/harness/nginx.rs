//! nginx (Debian's package, `make tools-nginx`) as the load balancer in
//! front of several nodes: the configuration of `docs/cluster/nginx.conf`,
//! its ports replaced, run in the foreground from a temporary prefix.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The configuration the docs give, as shipped.
const DOCS_CONF: &str = include_str!("../../docs/cluster/nginx.conf");

/// An nginx process started by a test, killed on drop.
pub struct Nginx {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: tempfile::TempDir,
}

/// A port free now (nginx cannot take port 0 and tell us).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Nginx {
    /// nginx with `docs/cluster/nginx.conf`, listening on a free port and
    /// balancing over `upstreams` (`127.0.0.1:PORT` each). Waits until it
    /// accepts connections (at most 10 s).
    pub fn start(upstreams: &[&str]) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let servers: String = upstreams
            .iter()
            .map(|u| format!("        server {u};\n"))
            .collect();
        let mut conf = String::new();
        let mut replaced_servers = false;
        for line in DOCS_CONF.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with("server 127.0.0.1:") {
                if !replaced_servers {
                    conf.push_str(&servers);
                    replaced_servers = true;
                }
            } else if trimmed.starts_with("listen ") {
                conf.push_str(&format!("        listen {addr};\n"));
            } else if trimmed.starts_with("worker_processes") {
                // Two cores: one worker is plenty for a test.
                conf.push_str("worker_processes 1;\n");
            } else {
                conf.push_str(line);
                conf.push('\n');
            }
        }
        assert!(
            replaced_servers,
            "docs/cluster/nginx.conf lost its upstream servers"
        );
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let prefix = format!("{}/", dir.path().display());
        let global = format!(
            "daemon off; master_process on; pid {}/nginx.pid;",
            dir.path().display()
        );
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(dir.path().join("logs/error.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", &global])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nginx (make tools-nginx installs it)");
        let nginx = Nginx { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&nginx.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start:\n{}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What nginx logged about errors so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }

    /// Its access log (which upstream served each request is not in the
    /// default format; the nodes' own logs say).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/access.log")).unwrap_or_default()
    }
}

fn nginx_binary() -> &'static str {
    if Path::new("/usr/sbin/nginx").is_file() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The master's workers leave with it (SIGKILL to the master only
        // would orphan them): SIGQUIT-free fast stop is SIGTERM; then reap.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
