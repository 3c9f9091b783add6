//! Server-wide settings: what the manifest's `[app]` table and the command
//! line set before an app is loaded. Plain data, no behaviour.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::manifest::{Manifest, ManifestError};

/// Server-wide settings; the manifest's `[app]` table and the CLI fill them.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Tornado's `max_body_size`: 100 MB.
    pub max_body_size: u64,
    /// A client must send its request headers within this time; hyper also
    /// closes a keep-alive connection idle this long between requests.
    pub header_timeout: Duration,
    /// A client must send the whole request body within this time (→ 408).
    pub body_timeout: Duration,
    /// An HTTP/2 connection with no request in flight and no traffic for this
    /// long is closed (HTTP/1 keep-alive is bounded by `header_timeout`).
    pub idle_timeout: Duration,
    /// Connections beyond this many are refused at accept.
    pub max_connections: usize,
    /// Connections the kernel queues for `accept` (Tornado's `backlog`).
    pub backlog: u32,
    /// How long graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Threads serving HTTP, each with its own event loop (default: one per core).
    pub workers: usize,
    pub engine: EngineConfig,
    /// Where the admin API listens (never the public port unless set so).
    pub admin_listen: SocketAddr,
    /// The admin API's bearer token; `None` turns the admin API off.
    pub admin_token: Option<AdminToken>,
    /// The largest component the admin API accepts, bytes.
    pub max_upload_size: u64,
    /// The store directory; `None` keeps versions in memory only.
    pub store_dir: Option<PathBuf>,
    /// Tornado's `static_path` (absolute): served by the host under
    /// `static_url_prefix`, and `/favicon.ico`, `/robots.txt`.
    pub static_path: Option<PathBuf>,
    /// Tornado's `static_url_prefix`, starting and ending with `/`.
    pub static_url_prefix: String,
    /// Tornado's `compress_response`: gzip or brotli by Accept-Encoding.
    pub compress_response: bool,
    /// Tornado's `decompress_request`: gzip request bodies are inflated.
    pub decompress_request: bool,
    /// Tornado's `xheaders`: the client address and scheme from a proxy's headers.
    pub xheaders: bool,
    /// Tornado's `trusted_downstream`: proxies skipped in X-Forwarded-For.
    pub trusted_downstream: Vec<IpAddr>,
    /// Serve HTTPS with these files (`[app.tls]`).
    pub tls: Option<TlsFiles>,
    /// The admin API over HTTPS (`[app.admin_tls]`).
    pub admin_tls: Option<TlsFiles>,
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Connections the kernel queues for `accept` by default (`[app] backlog`):
/// a burst of new clients (a thousand long polls reconnecting at once)
/// waits in the queue instead of having its SYNs dropped and retried a
/// second later. Rust's std listens with 128, as Tornado does; tokio's
/// `TcpListener::bind` with 1024.
const DEFAULT_BACKLOG: u32 = 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8888)),
            max_body_size: 100 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 20_000,
            backlog: DEFAULT_BACKLOG,
            shutdown_grace: Duration::from_secs(30),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            engine: EngineConfig::default(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8889)),
            admin_token: None,
            max_upload_size: 100 * 1024 * 1024,
            store_dir: None,
            static_path: None,
            static_url_prefix: crate::statics::DEFAULT_PREFIX.to_owned(),
            compress_response: false,
            decompress_request: false,
            xheaders: false,
            trusted_downstream: Vec::new(),
            tls: None,
            admin_tls: None,
        }
    }
}

impl ServerConfig {
    /// Applies the manifest's `[app]` settings (the CLI may override after).
    pub fn apply_manifest(&mut self, manifest: &Manifest) -> Result<(), ManifestError> {
        if let Some(listen) = &manifest.app.listen {
            self.listen = listen
                .parse()
                .map_err(|e| manifest.error(None, format!("[app] listen = {listen:?}: {e}")))?;
        }
        if let Some(max) = manifest.app.max_body_size {
            self.max_body_size = max;
        }
        if let Some(workers) = manifest.app.workers {
            self.workers = workers.get();
        }
        if let Some(max) = manifest.app.max_connections {
            self.max_connections = max;
        }
        if let Some(backlog) = manifest.app.backlog {
            self.backlog = backlog;
        }
        if let Some(secs) = manifest.app.shutdown_grace_secs {
            self.shutdown_grace = Duration::from_secs(secs);
        }
        if let Some(secs) = manifest.app.header_timeout_secs {
            self.header_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = manifest.app.idle_timeout_secs {
            self.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = manifest.app.body_timeout_secs {
            self.body_timeout = Duration::from_secs(secs);
        }
        self.apply_web_settings(manifest)
    }

    /// The web layers' `[app]` settings: static files, compression,
    /// xheaders, TLS. Paths are relative to the manifest and must exist.
    fn apply_web_settings(&mut self, manifest: &Manifest) -> Result<(), ManifestError> {
        let app = &manifest.app;
        let at = |span: std::ops::Range<usize>, message: String| {
            manifest.error(manifest.line_of(span.start), message)
        };
        if let Some(path) = &app.static_path {
            let dir = manifest.dir.join(path.get_ref());
            if !dir.is_dir() {
                return Err(at(
                    path.span(),
                    format!(
                        "[app] static_path = {:?}: {} is not a directory",
                        path.get_ref(),
                        dir.display()
                    ),
                ));
            }
            self.static_path = Some(dir);
        }
        if let Some(prefix) = &app.static_url_prefix {
            let p = prefix.get_ref();
            if !p.starts_with('/') || !p.ends_with('/') || p.len() < 2 {
                return Err(at(
                    prefix.span(),
                    format!(
                        "[app] static_url_prefix = {p:?}: must start and end with \"/\", e.g. \"/static/\""
                    ),
                ));
            }
            self.static_url_prefix = p.clone();
        }
        if let Some(on) = app.compress_response {
            self.compress_response = on;
        }
        if let Some(on) = app.decompress_request {
            self.decompress_request = on;
        }
        if let Some(on) = app.xheaders {
            self.xheaders = on;
        }
        if let Some(hosts) = &app.trusted_downstream {
            self.trusted_downstream = hosts
                .get_ref()
                .iter()
                .map(|h| h.parse::<IpAddr>())
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    at(
                        hosts.span(),
                        format!("[app] trusted_downstream: {e} (IP addresses only)"),
                    )
                })?;
        }
        let tls_files = |table: &str, tls: &toml::Spanned<crate::manifest::TlsSettings>| {
            let files = TlsFiles {
                cert: manifest.dir.join(&tls.get_ref().cert),
                key: manifest.dir.join(&tls.get_ref().key),
            };
            for (name, file) in [("cert", &files.cert), ("key", &files.key)] {
                if !file.is_file() {
                    return Err(at(
                        tls.span(),
                        format!("[app.{table}] {name}: {} is not a readable file", file.display()),
                    ));
                }
            }
            Ok(files)
        };
        if let Some(tls) = &app.tls {
            self.tls = Some(tls_files("tls", tls)?);
        }
        if let Some(tls) = &app.admin_tls {
            self.admin_tls = Some(tls_files("admin_tls", tls)?);
        }
        Ok(())
    }
}

/// Sizing of the engine, from the server configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How many guest instances may be alive at once (requests in flight plus
    /// open WebSockets).
    pub max_instances: u32,
    /// The largest linear memory any handler may be configured with.
    pub max_memory_bytes: usize,
    /// Where compiled components are cached; `None` turns the cache off.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_instances: 1000,
            max_memory_bytes: 512 << 20,
            cache_dir: None,
        }
    }
}

/// The admin bearer token. Its `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl AdminToken {
    /// `None` for an empty token (which would turn authentication off).
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        let token = token.trim();
        (!token.is_empty()).then(|| AdminToken(token.into()))
    }

    /// Constant-time comparison; hashing first keeps the length secret too.
    pub fn matches(&self, presented: &str) -> bool {
        let expected = Sha256::digest(self.0.as_bytes());
        let presented = Sha256::digest(presented.as_bytes());
        expected.ct_eq(&presented).into()
    }

    /// The token itself (for clients and tests).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}
