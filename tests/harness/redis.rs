//! A real `redis-server` (Debian's package, `make tools-redis`) for the
//! cluster tests: on a free port of 127.0.0.1, its data in a temporary
//! directory with an append-only file synced on every write (so a restart
//! after a kill keeps everything acknowledged), killed on drop. Optionally
//! with a password (`requirepass`) or TLS only (`--port 0 --tls-port`, a
//! certificate from a test CA, client certificates checked or not).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestCertificate;

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    options: RedisOptions,
}

/// How a [`RedisServer`] is started besides its defaults.
#[derive(Default)]
pub struct RedisOptions {
    /// `requirepass`: clients must `AUTH` with it.
    pub password: Option<String>,
    /// TLS only, with this certificate (and its CA, for client certificates).
    pub tls: Option<RedisTls>,
}

/// A TLS `redis-server`'s certificate, and whether it asks clients for
/// theirs (signed by the same CA).
pub struct RedisTls {
    pub certificate: TestCertificate,
    pub auth_clients: bool,
}

impl RedisTls {
    /// The test CA's certificate in a file of the server's folder: what a
    /// node must trust (`[cluster] ca`, `--redis-ca`).
    pub const CA_FILE: &str = "ca.pem";
    /// The leaf (certificate, key) files, which a node may also show as its
    /// client certificate: rcgen leaves carry no key-usage limits.
    pub const CERT_FILE: &str = "cert.pem";
    pub const KEY_FILE: &str = "key.pem";
}

impl RedisServer {
    /// Starts one on a free port; panics (naming `make tools-redis`) when
    /// `redis-server` is not installed.
    pub fn start() -> RedisServer {
        RedisServer::start_with(RedisOptions::default())
    }

    /// [`RedisServer::start`] with a password or TLS. The free port is
    /// found by binding port 0 and closing it, so another test's server may
    /// take it first: then this one cannot bind, and the one answering is
    /// not ours (a password-protected one answers a PING with NOAUTH). So
    /// the server must be ours ([`RedisServer::try_restart`]), or it starts
    /// again on another port.
    pub fn start_with(options: RedisOptions) -> RedisServer {
        let mut options = Some(options);
        for _ in 0..5 {
            let port = {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                listener.local_addr().unwrap().port()
            };
            let mut server = RedisServer::at(port, options.take().expect("options"));
            match server.try_restart() {
                Ok(()) => return server,
                Err(e) => {
                    eprintln!("redis-server on {port}: {e}; trying another port");
                    server.kill();
                    options = Some(std::mem::take(&mut server.options));
                }
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// A server on `port`, not started.
    fn at(port: u16, options: RedisOptions) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        if let Some(tls) = &options.tls {
            let certificate = &tls.certificate;
            std::fs::write(dir.path().join(RedisTls::CA_FILE), &certificate.ca_pem).unwrap();
            std::fs::write(dir.path().join(RedisTls::CERT_FILE), certificate.cert.pem()).unwrap();
            std::fs::write(
                dir.path().join(RedisTls::KEY_FILE),
                certificate.key.serialize_pem(),
            )
            .unwrap();
        }
        RedisServer {
            child: None,
            port,
            dir,
            options,
        }
    }

    /// `redis://127.0.0.1:PORT`, `rediss://` with TLS, with `:PASSWORD@`
    /// when there is one.
    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let auth = match &self.options.password {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        format!("{scheme}://{auth}127.0.0.1:{}", self.port)
    }

    /// A file of the server's folder ([`RedisTls::CA_FILE`] …).
    pub fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// SIGKILL: no chance to save anything more.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data (after [`RedisServer::kill`]).
    pub fn restart(&mut self) {
        if let Err(e) = self.try_restart() {
            panic!("redis-server on {}: {e}", self.port);
        }
    }

    /// Starts it, and waits until it answers and is ours: the process
    /// listening on the port is the child started here.
    pub fn try_restart(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "redis-server is running");
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        match &self.options.tls {
            None => command.args(["--port", &port]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &port])
                .arg("--tls-cert-file")
                .arg(self.file(RedisTls::CERT_FILE))
                .arg("--tls-key-file")
                .arg(self.file(RedisTls::KEY_FILE))
                .arg("--tls-ca-cert-file")
                .arg(self.file(RedisTls::CA_FILE))
                .args(["--tls-auth-clients", if tls.auth_clients { "yes" } else { "no" }]),
        };
        if let Some(password) = &self.options.password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it with `make tools-redis`")
            });
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("it exited ({status}): the port is taken"));
            }
            if self.answers() {
                // Over TLS this cannot be asked without a client; a TLS
                // server that lost its port exits, which the loop sees.
                match self.options.tls.is_some() || self.process_id() == Some(pid) {
                    true => return Ok(()),
                    false => return Err("another redis-server answers on its port".into()),
                }
            }
            if Instant::now() >= deadline {
                return Err("it did not answer PING within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `process_id` of `INFO server` of the redis answering on the
    /// port (after `AUTH` when there is a password).
    fn process_id(&self) -> Option<u32> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = String::new();
        if let Some(password) = &self.options.password {
            request.push_str(&format!(
                "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n",
                password.len()
            ));
        }
        request.push_str("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&answer);
            if let Some(rest) = text.split("process_id:").nth(1)
                && let Some((pid, _)) = rest.split_once("\r\n")
            {
                return pid.trim().parse().ok();
            }
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            answer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether it is up: PONG (or, with a password, NOAUTH) to a PING; with
    /// TLS (no plain port to PING), a TCP connection accepted.
    fn answers(&self) -> bool {
        if self.options.tls.is_some() {
            return TcpStream::connect(("127.0.0.1", self.port)).is_ok();
        }
        match self.command(&["PING"]) {
            Some(answer) => answer == "+PONG" || answer.starts_with("-NOAUTH"),
            None => false,
        }
    }

    /// Sends one command (inline arguments without spaces) on a plain
    /// connection and returns the first line of the answer, or `None` when
    /// nobody answers.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        while stream.read(&mut byte).ok()? == 1 {
            answer.push(byte[0]);
            if answer.ends_with(b"\r\n") {
                break;
            }
        }
        let line = String::from_utf8_lossy(&answer).trim_end().to_owned();
        (!line.is_empty()).then_some(line)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The race the cluster tests lost once (a test's plain redis "started"
    /// on a port where another test's password-protected one already ran,
    /// and its server got NOAUTH): a server that cannot bind its port is
    /// never taken for started.
    #[test]
    fn a_port_taken_by_another_redis_is_not_taken_for_ours() {
        let mut other = RedisServer::start_with(RedisOptions {
            password: Some("secret".into()),
            ..RedisOptions::default()
        });
        let mut ours = RedisServer::at(other.port, RedisOptions::default());
        let error = ours.try_restart().expect_err("started on a port that was taken");
        assert!(
            error.contains("port is taken") || error.contains("another redis-server"),
            "{error}"
        );
        other.kill();
    }
}
