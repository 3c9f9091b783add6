//! Tornado's `AsyncHTTPTestCase` for Waterspout apps: test your handlers
//! against the real host, over real sockets.
//!
//! ```no_run
//! use waterspout_testing::TestApp;
//!
//! #[test]
//! fn hello() {
//!     // Builds the app once per test process (the `build` lines of its
//!     // waterspout.toml), then starts `waterspout serve` on 127.0.0.1:0.
//!     let app = TestApp::serve(env!("CARGO_MANIFEST_DIR"));
//!     let response = app.fetch("/");
//!     assert_eq!(response.code, 200);
//!     assert_eq!(response.text(), "Hello, world");
//!
//!     let mut ws = app.websocket_connect("/echo");
//!     ws.write_message("hi");
//!     assert_eq!(ws.read_message().as_deref(), Some("hi"));
//! } // the server stops here
//! ```
//!
//! The host is the `waterspout` binary: `$WATERSPOUT_BIN`, else `waterspout`
//! on the `PATH`. Each [`TestApp`] is a server of its own, with a fresh
//! version store (so a test sees the app as built, never a version another
//! test deployed); the compiled-code cache is the app's
//! (`APP/.waterspout/cache`), so only the first start compiles.
//!
//! Caveats: `serve` panics with the build's or the server's output when
//! either fails (that is what a test wants); [`TestApp::try_serve`] returns
//! it instead. Requests and WebSocket reads give up after 30 s.

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a request or a WebSocket read may take.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may take to listen (a large component compiles first).
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// What went wrong starting the app, with the output that says why.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// An app served by the real host on 127.0.0.1 (a free port), stopped when
/// dropped.
pub struct TestApp {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
    _scratch: tempfile::TempDir,
}

impl TestApp {
    /// Builds the app in `dir` (once per test process), serves it, and waits
    /// until it listens. Panics with the reason if it cannot.
    pub fn serve(dir: impl AsRef<Path>) -> TestApp {
        TestApp::try_serve(dir).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`TestApp::serve`], returning what went wrong.
    pub fn try_serve(dir: impl AsRef<Path>) -> Result<TestApp, Error> {
        let dir = std::path::absolute(dir.as_ref()).map_err(|e| Error(e.to_string()))?;
        let bin = waterspout_bin()?;
        build_once(&bin, &dir)?;
        TestApp::start(&bin, &dir)
    }

    /// Serves the app in `dir` as it is, without building it first.
    pub fn serve_built(dir: impl AsRef<Path>) -> Result<TestApp, Error> {
        let dir = std::path::absolute(dir.as_ref()).map_err(|e| Error(e.to_string()))?;
        TestApp::start(&waterspout_bin()?, &dir)
    }

    fn start(bin: &Path, dir: &Path) -> Result<TestApp, Error> {
        let scratch =
            tempfile::tempdir().map_err(|e| Error(format!("cannot make a temporary directory: {e}")))?;
        let port_file = scratch.path().join("port");
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--port-file"])
            .arg(&port_file)
            .arg("--store")
            .arg(scratch.path().join("store"))
            // No admin API: it would want port 8889 in every test.
            .env_remove("WATERSPOUT_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error(format!("cannot run {}: {e}", bin.display())))?;
        // The log is drained for the server's whole life (or it would block).
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let mut stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let started = Instant::now();
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.trim().parse::<u16>().ok())
            {
                break port;
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                let why = match exited {
                    Some(status) => format!("exited with {status}"),
                    None => format!("did not listen within {START_TIMEOUT:?}"),
                };
                return Err(Error(format!(
                    "waterspout serve {} {why}; its log:\n{}",
                    dir.display(),
                    log.lock().unwrap()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .max_redirects(0)
            .timeout_global(Some(IO_TIMEOUT))
            .build()
            .into();
        Ok(TestApp {
            child,
            port,
            log,
            agent,
            _scratch: scratch,
        })
    }

    /// The port the server listens on (Tornado's `get_http_port`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/PATH` (Tornado's `get_url`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET path`. Any status is a response, not an error (Tornado's
    /// `fetch(path, raise_error=False)`); redirects are not followed.
    pub fn fetch(&self, path: &str) -> Response {
        self.fetch_with("GET", path, &[], b"")
    }

    /// `method path` with `headers` and `body` (Tornado's
    /// `fetch(path, method=, headers=, body=)`). Panics if the server does not
    /// answer (within 30 s).
    pub fn fetch_with(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut request = ureq::http::Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let result = if body.is_empty() {
            self.agent.run(request.body(()).expect("a valid request"))
        } else {
            self.agent.run(request.body(body).expect("a valid request"))
        };
        let mut response =
            result.unwrap_or_else(|e| panic!("{method} {path}: {e}; the server's log:\n{}", self.log()));
        let code = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        Response { code, headers, body }
    }

    /// Opens a WebSocket to `path` (Tornado's `websocket_connect`). Panics if
    /// the handshake fails.
    pub fn websocket_connect(&self, path: &str) -> WebSocket {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to the server");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("a read timeout");
        let url = format!("ws://127.0.0.1:{}{path}", self.port);
        let (socket, _) = tungstenite::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("WebSocket {path}: {e}; the server's log:\n{}", self.log()));
        WebSocket { socket }
    }

    /// Everything the server has written to its log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response (Tornado's `HTTPResponse`: `code`, `headers`, `body`).
#[derive(Debug, Clone)]
pub struct Response {
    pub code: u16,
    /// In the order received; names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

/// A client WebSocket (Tornado's `WebSocketClientConnection`).
pub struct WebSocket {
    socket: tungstenite::WebSocket<TcpStream>,
}

impl WebSocket {
    /// Sends a text message.
    pub fn write_message(&mut self, text: impl Into<String>) {
        self.send(tungstenite::Message::text(text.into()));
    }

    /// Sends a binary message.
    pub fn write_binary(&mut self, data: impl Into<Vec<u8>>) {
        self.send(tungstenite::Message::binary(data.into()));
    }

    fn send(&mut self, message: tungstenite::Message) {
        self.socket.send(message).expect("sending a WebSocket message");
    }

    /// The next message, or `None` once the connection is closed (as
    /// Tornado's `read_message`). Panics after 30 s without one.
    pub fn read(&mut self) -> Option<Message> {
        loop {
            match self.socket.read() {
                Ok(tungstenite::Message::Text(text)) => return Some(Message::Text(text.as_str().to_owned())),
                Ok(tungstenite::Message::Binary(data)) => return Some(Message::Binary(data.to_vec())),
                Ok(tungstenite::Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return None,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("no WebSocket message within {IO_TIMEOUT:?}")
                }
                Err(_) => return None,
            }
        }
    }

    /// The next text message, or `None` once the connection is closed.
    /// Panics on a binary message.
    pub fn read_message(&mut self) -> Option<String> {
        match self.read()? {
            Message::Text(text) => Some(text),
            Message::Binary(data) => panic!("expected a text message, got {} binary bytes", data.len()),
        }
    }

    /// Closes the connection (code 1000) and waits for the server's close.
    pub fn close(mut self) {
        let _ = self.socket.close(None);
        while self.socket.read().is_ok() {}
    }
}

/// The host binary: `$WATERSPOUT_BIN`, else `waterspout` on the `PATH`.
fn waterspout_bin() -> Result<PathBuf, Error> {
    if let Some(bin) = std::env::var_os("WATERSPOUT_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(Error(format!("WATERSPOUT_BIN={} is not a file", bin.display())))
        };
    }
    let name = format!("waterspout{}", std::env::consts::EXE_SUFFIX);
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&name))
        .find(|bin| bin.is_file())
        .ok_or_else(|| {
            Error(
                "cannot find the `waterspout` binary: set WATERSPOUT_BIN to it, or put it on the PATH \
                 (`cargo install --path host` in the Waterspout checkout)"
                    .into(),
            )
        })
}

/// Runs `waterspout build DIR` the first time a test of this process asks
/// for DIR; the others wait for it and share its result.
fn build_once(bin: &Path, dir: &Path) -> Result<(), Error> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, Result<(), String>>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let result = built.entry(dir.to_owned()).or_insert_with(|| {
        let output = Command::new(bin)
            .arg("build")
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "waterspout build {} failed ({}):\n{}{}",
                dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    result.clone().map_err(Error)
}
