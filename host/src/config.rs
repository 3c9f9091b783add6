//! Server-wide settings: what the manifest's `[app]` table and the command
//! line set before an app is loaded. Plain data, no behaviour.

use std::fmt;
use std::net::SocketAddr;
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8888)),
            max_body_size: 100 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 20_000,
            shutdown_grace: Duration::from_secs(30),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            engine: EngineConfig::default(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8889)),
            admin_token: None,
            max_upload_size: 100 * 1024 * 1024,
            store_dir: None,
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
