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

    /// [`RedisServer::start`] with a password or TLS.
    pub fn start_with(options: RedisOptions) -> RedisServer {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
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
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            options,
        };
        server.restart();
        server
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
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
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
