//! The peers, as separate processes: `wasmtime serve` 48 running the very
//! same wasi:http component, Tornado 6 running the seed's hello world (each
//! installs itself into `target/bench-tools` on first use), and Debian's
//! nginx (`make bench-deps` installs it) on a generated configuration.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A server process, killed on drop with every process it started.
pub struct Peer {
    child: Child,
    pub addr: SocketAddr,
}

impl Peer {
    /// `child`, once it accepts connections on `addr`.
    pub fn started(mut child: Child, addr: SocketAddr, what: &str) -> anyhow::Result<Peer> {
        wait_until_listening(addr, &mut child, what)?;
        Ok(Peer { child, addr })
    }

    /// The server's process id (for its CPU time and RSS: crate::procstat).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // A parent that restarts its children (nginx's master, Tornado's
        // `fork_processes`) is stopped first, then everything it started,
        // so that none can start a replacement between the kills: killing
        // the children of a running parent first left a freshly started
        // nginx worker behind now and then.
        let signal = |signal: &str, pids: &[u32]| {
            if !pids.is_empty() {
                let _ = Command::new("kill")
                    .arg(signal)
                    .args(pids.iter().map(u32::to_string))
                    .status();
            }
        };
        let parent = self.child.id();
        signal("-STOP", &[parent]);
        let tree = crate::procstat::tree(parent);
        signal("-STOP", &tree[1..]);
        signal("-KILL", &tree[1..]);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bench-tools` in the target directory this binary was built in (the
/// shared `$CARGO_TARGET_DIR` when set, so every worktree finds the tools
/// installed once), else `target/` at the root.
pub fn tools_dir(root: &Path) -> PathBuf {
    crate::profile_dir()
        .ok()
        .and_then(|dir| dir.parent().map(Path::to_owned))
        .unwrap_or_else(|| root.join("target"))
        .join("bench-tools")
}

/// A loopback port free now (for servers that cannot take port 0 and tell).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn wait_until_listening(addr: SocketAddr, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not start listening on {addr}")
}

/// `wasmtime serve` 48.0.8, installed with cargo on first use (slow: a
/// release build of wasmtime-cli).
pub fn wasmtime_serve(root: &Path, component: &Path) -> anyhow::Result<Peer> {
    wasmtime_serve_with(root, component, &["-Scli"])
}

/// `wasmtime serve` 48 on a wasi:http 0.3 (WASI p3) component: it needs the
/// p3 interfaces and the component model's async ABI turned on (it then
/// reuses the instance for up to 128 requests, 16 at a time, by default).
pub fn wasmtime_serve_p3(root: &Path, component: &Path) -> anyhow::Result<Peer> {
    wasmtime_serve_with(root, component, &["-Scli", "-Sp3", "-Wcomponent-model-async"])
}

fn wasmtime_serve_with(root: &Path, component: &Path, flags: &[&str]) -> anyhow::Result<Peer> {
    let tools = tools_dir(root);
    let bin = tools.join("bin/wasmtime");
    if !bin.exists() {
        eprintln!(
            "installing wasmtime-cli 48.0.8 into {} (once; takes a while)",
            tools.display()
        );
        let status = Command::new("cargo")
            .args(["install", "wasmtime-cli@48.0.8", "--locked", "--root"])
            .arg(&tools)
            .status()
            .context("running cargo install")?;
        if !status.success() {
            bail!("cargo install wasmtime-cli@48.0.8 failed");
        }
    }
    let addr = free_port()?;
    let mut child = Command::new(&bin)
        .arg("serve")
        .args(flags)
        .args(["--addr", &addr.to_string()])
        .arg(component)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting wasmtime serve")?;
    wait_until_listening(addr, &mut child, "wasmtime serve")?;
    Ok(Peer { child, addr })
}

/// The seed's Tornado hello world (`MainHandler` on `/`, verbatim), with
/// what scenario a's other rows ask beside it: `GET /bytes/N` (N bytes), a
/// POST of a form to `/form` (answers how many fields it read), and 200
/// regex routes `/api/v1/itemI/(\d+)` (I = 0…199, the table before
/// `/bytes`). With a process count other than 1 it deploys as Tornado's
/// docs show for multi-process: `bind_sockets`, `fork_processes(n)`
/// (0 = one per core), then an `HTTPServer` per process on the shared socket.
const TORNADO_HELLO: &str = r#"
import asyncio, sys
import tornado
import tornado.httpserver, tornado.netutil, tornado.process

class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")

class BytesHandler(tornado.web.RequestHandler):
    def get(self, n):
        self.write(b"x" * int(n))

class FormHandler(tornado.web.RequestHandler):
    def post(self):
        self.write(str(len(self.request.body_arguments)))

class ItemHandler(tornado.web.RequestHandler):
    def get(self, item):
        self.write("Hello, world")

def make_app():
    return tornado.web.Application([
        (r"/", MainHandler),
    ] + [
        (r"/api/v1/item%d/(\d+)" % i, ItemHandler) for i in range(200)
    ] + [
        (r"/bytes/(\d+)", BytesHandler),
        (r"/form", FormHandler),
    ])

async def serve(sockets):
    server = tornado.httpserver.HTTPServer(make_app())
    server.add_sockets(sockets)
    await asyncio.Event().wait()

async def main():
    app = make_app()
    app.listen(int(sys.argv[1]), address="127.0.0.1")
    await asyncio.Event().wait()

if __name__ == "__main__":
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    if processes == 1:
        asyncio.run(main())
    else:
        sockets = tornado.netutil.bind_sockets(int(sys.argv[1]), address="127.0.0.1")
        tornado.process.fork_processes(processes)
        asyncio.run(serve(sockets))
"#;

/// Tornado 6 from PyPI in a virtualenv under target/bench-tools, with
/// `processes` processes (0: one per core, Tornado's `fork_processes(0)`),
/// all started when this returns.
pub fn tornado_processes(root: &Path, processes: usize) -> anyhow::Result<(Peer, String)> {
    let tools = tools_dir(root);
    let venv = tools.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let status = Command::new("python3").args(["-m", "venv"]).arg(&venv).status()?;
        if !status.success() {
            bail!("python3 -m venv failed");
        }
    }
    let has_tornado = Command::new(&python)
        .args(["-c", "import tornado"])
        .stderr(Stdio::null())
        .status()?
        .success();
    if !has_tornado {
        let status = Command::new(&python)
            .args(["-m", "pip", "install", "-q", "tornado>=6,<7"])
            .status()?;
        if !status.success() {
            bail!("pip install tornado failed");
        }
    }
    let version = String::from_utf8(
        Command::new(&python)
            .args(["-c", "import tornado; print(tornado.version)"])
            .output()?
            .stdout,
    )?
    .trim()
    .to_owned();
    let script = tools.join("tornado_hello.py");
    std::fs::write(&script, TORNADO_HELLO)?;
    let addr = free_port()?;
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(addr.port().to_string())
        .arg(processes.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting tornado")?;
    wait_until_listening(addr, &mut child, "tornado")?;
    let peer = Peer { child, addr };
    // Every forked worker up before anything is measured.
    let want = match processes {
        1 => 1,
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()) + 1,
        n => n + 1,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while crate::procstat::tree(peer.pid()).len() < want {
        if Instant::now() > deadline {
            bail!("tornado did not fork {want} processes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((peer, version))
}

/// Debian's nginx (`nginx -v`'s version beside it), one worker process per
/// core, its prefix (pid, logs, temp files) in `dir`, serving `http` (the
/// body of the `http {}` block), once it accepts connections on `addr`.
pub fn nginx(dir: &Path, http: &str, addr: SocketAddr) -> anyhow::Result<(Peer, String)> {
    let bin = if Path::new("/usr/sbin/nginx").is_file() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    };
    let version = Command::new(bin)
        .arg("-v")
        .output()
        .context("running nginx -v (`make bench-deps` installs nginx)")?;
    let version = String::from_utf8_lossy(&version.stderr)
        .trim()
        .trim_start_matches("nginx version: ")
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let d = dir.display();
    let conf = format!(
        "# Generated by waterspout-bench.\nworker_processes {cores};\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 4096; }}\nhttp {{\n{http}}}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    // Running as root, its workers are `nobody`: they must reach the files.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let mut child = Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off; master_process on;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx (`make bench-deps` installs it)")?;
    if let Err(e) = wait_until_listening(addr, &mut child, "nginx") {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        bail!("{e}:\n{log}");
    }
    Ok((Peer { child, addr }, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes whose command line has `needle` as an argument.
    fn running_with(needle: &str) -> Vec<u32> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if cmdline.split(|b| *b == 0).any(|arg| arg == needle.as_bytes()) {
                found.push(pid);
            }
        }
        found
    }

    /// A parent that starts a new child whenever its child dies, as nginx's
    /// master does: dropping its Peer leaves no child behind, orphaned or
    /// not. (Killing the children before the parent left one now and then.)
    #[test]
    fn a_peer_that_restarts_its_children_leaves_none_behind() {
        for round in 0..10 {
            // A duration no other process uses, to find the children by.
            let marker = format!("4242.{}{round}", std::process::id());
            let child = Command::new("sh")
                .args(["-c", &format!("while true; do sleep {marker} & wait; done")])
                .spawn()
                .unwrap();
            let peer = Peer {
                child,
                addr: "127.0.0.1:9".parse().unwrap(),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while running_with(&marker).is_empty() {
                assert!(Instant::now() < deadline, "the shell started no child");
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(peer);
            std::thread::sleep(Duration::from_millis(50));
            let left = running_with(&marker);
            for pid in &left {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
            assert!(left.is_empty(), "round {round}: left behind {left:?}");
        }
    }
}
