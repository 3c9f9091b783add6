//! The peers, as separate processes: `wasmtime serve` 48 running the very
//! same wasi:http component, and Tornado 6 running the seed's hello world.
//! Each installs itself into `target/bench-tools` on first use.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A server process, killed on drop.
pub struct Peer {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Peer {
    fn drop(&mut self) {
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

fn free_port() -> anyhow::Result<SocketAddr> {
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

/// The seed's Tornado hello world, verbatim apart from the port.
const TORNADO_HELLO: &str = r#"
import asyncio, sys
import tornado

class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")

def make_app():
    return tornado.web.Application([
        (r"/", MainHandler),
    ])

async def main():
    app = make_app()
    app.listen(int(sys.argv[1]), address="127.0.0.1")
    await asyncio.Event().wait()

if __name__ == "__main__":
    asyncio.run(main())
"#;

/// Tornado 6 from PyPI in a virtualenv under target/bench-tools.
pub fn tornado(root: &Path) -> anyhow::Result<(Peer, String)> {
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting tornado")?;
    wait_until_listening(addr, &mut child, "tornado")?;
    Ok((Peer { child, addr }, version))
}
