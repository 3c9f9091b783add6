//! `waterspout.toml`: an app's routes, handlers and settings. Parsing keeps
//! source spans so every error names the file, the line and the problem.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The manifest's file name inside an app directory.
pub const MANIFEST_FILE: &str = "waterspout.toml";

/// A manifest problem a person can fix: file, line (when known), what is wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ManifestError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// App-wide settings (`[app]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    /// Address to serve on, e.g. "127.0.0.1:8888".
    pub listen: Option<String>,
    /// Largest request body in bytes (Tornado's `max_body_size`, 100 MB default).
    pub max_body_size: Option<u64>,
    /// Seconds a client has to send the request headers.
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client has to send the whole request body.
    pub body_timeout_secs: Option<u64>,
    /// Seconds an idle HTTP/2 connection stays open (HTTP/1 keep-alive: header_timeout_secs).
    pub idle_timeout_secs: Option<u64>,
    /// Threads serving HTTP, each with its own event loop (default: one per core).
    pub workers: Option<std::num::NonZeroUsize>,
    /// Connections beyond this many are refused at accept (default 20,000).
    pub max_connections: Option<usize>,
    /// Tornado's `backlog`: connections the kernel queues before the
    /// server accepts them (default 1024; the kernel caps it at
    /// `net.core.somaxconn`).
    pub backlog: Option<u32>,
    /// Seconds graceful shutdown waits for requests in flight (default 30).
    pub shutdown_grace_secs: Option<u64>,
    /// Tornado's `static_path`: a directory (relative to the manifest) the
    /// host serves under `static_url_prefix`, without a guest.
    pub static_path: Option<Spanned<String>>,
    /// Tornado's `static_url_prefix` (default "/static/").
    pub static_url_prefix: Option<Spanned<String>>,
    /// Tornado's `compress_response`: gzip or brotli by Accept-Encoding.
    pub compress_response: Option<bool>,
    /// Tornado's `decompress_request`: gzip request bodies are inflated
    /// (the body limit applies to the inflated size).
    pub decompress_request: Option<bool>,
    /// Tornado's `xheaders`: trust X-Real-IP / X-Forwarded-For and
    /// X-Scheme / X-Forwarded-Proto for `remote_ip` and `protocol`.
    pub xheaders: Option<bool>,
    /// Tornado's `trusted_downstream`: proxies skipped in X-Forwarded-For.
    pub trusted_downstream: Option<Spanned<Vec<String>>>,
    /// `[app.tls]`: serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN).
    pub tls: Option<Spanned<TlsSettings>>,
    /// `[app.admin_tls]`: the admin API over HTTPS.
    pub admin_tls: Option<Spanned<TlsSettings>>,
    /// kv data kept in the store directory (`kv/data.log`), surviving a
    /// restart; default false (in memory only).
    #[serde(default)]
    pub kv_persist: bool,
    /// A PEM file (relative to the manifest) of root certificates the http
    /// client trusts besides the public ones (a private CA for `https://`
    /// fetches); the certificates of standard wasi:http components are not changed.
    pub http_client_ca: Option<Spanned<String>>,
    // Tornado's web settings (signed cookies, XSRF, templates, login): docs/web.md.
    /// A string, or a table of versioned keys (`{ 1 = "old", 2 = "new" }`) with `key_version`.
    pub cookie_secret: Option<Spanned<CookieSecret>>,
    /// Which key of a versioned `cookie_secret` signs new values.
    pub key_version: Option<Spanned<u32>>,
    /// Check `_xsrf` on every POST, PUT, PATCH and DELETE (Tornado: every method but GET, HEAD, OPTIONS).
    pub xsrf_cookies: Option<bool>,
    /// The XSRF cookie's name (default `_xsrf`; e.g. `__Host-xsrf`).
    pub xsrf_cookie_name: Option<String>,
    /// 2 (masked, the default) or 1 (plain hex), as Tornado's `xsrf_cookie_version`.
    pub xsrf_cookie_version: Option<Spanned<u8>>,
    /// Options of the XSRF cookie (Tornado's `xsrf_cookie_kwargs`).
    pub xsrf_cookie_kwargs: Option<CookieKwargs>,
    /// Tornado 6.6's `cross_origin_protection`: refuse cross-origin unsafe requests.
    pub cross_origin_protection: Option<bool>,
    /// Origins `cross_origin_protection` lets through (e.g. "https://example.com").
    pub trusted_origins: Option<Vec<String>>,
    /// The template directory, relative to the manifest.
    pub template_path: Option<String>,
    /// Where `authenticated` sends a visitor who is not signed in.
    pub login_url: Option<String>,
}

/// `[app.tls]`: PEM files, relative to the manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain (PEM), leaf first.
    pub cert: String,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

/// `cookie_secret`: one key, or versioned keys (table keys are the versions).
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum CookieSecret {
    One(String),
    Versioned(BTreeMap<String, String>),
}

/// Never shows the secret.
impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret(<redacted>)")
    }
}

/// Options of a cookie the host sets (the XSRF cookie).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieKwargs {
    pub domain: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub secure: bool,
    #[serde(default)]
    pub httponly: bool,
    /// "Strict", "Lax" or "None".
    pub samesite: Option<String>,
    pub expires_days: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    app: AppSettings,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
    #[serde(default, rename = "handler")]
    handlers: BTreeMap<String, Spanned<RawHandler>>,
    #[serde(default, rename = "queue")]
    queues: BTreeMap<String, Spanned<RawQueue>>,
    #[serde(default, rename = "worker")]
    workers: BTreeMap<String, Spanned<RawWorker>>,
    #[serde(default)]
    cluster: Option<Spanned<RawCluster>>,
}

/// `[queue.NAME]`: an app-wide named queue (Tornado's `Queue(maxsize=…)`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    /// Items held at most; 0 (the default): unbounded.
    #[serde(default)]
    max_size: usize,
    /// Bytes one item may have at most (default 1 MiB).
    #[serde(default = "default_max_item_size")]
    max_item_size: usize,
}

fn default_max_item_size() -> usize {
    1 << 20
}

/// `[worker.NAME]`: background workers running a worker-world handler.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    handler: Spanned<String>,
    #[serde(default = "default_worker_concurrency")]
    concurrency: Spanned<u32>,
    #[serde(default)]
    settings: toml::Table,
}

fn default_worker_concurrency() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    pattern: Spanned<String>,
    handler: Spanned<String>,
    name: Option<String>,
    /// Which handler class of a component holding several serves the route
    /// (Tornado's `(r"/", MainHandler)`); reaches `initialize` as the
    /// setting [`CLASS_SETTING`].
    class: Option<String>,
    #[serde(default)]
    settings: toml::Table,
}

/// The route setting that names the handler class (a route's `class`).
pub const CLASS_SETTING: &str = "waterspout:class";

/// Limits and options of one handler (`[handler.NAME]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerLimits {
    /// Wall-clock limit per request (or per WebSocket callback), ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Linear memory limit, MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_limit_mb: u64,
    /// Instances of this handler alive at once; more requests wait.
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// Handler world and wasi:http 0.3 components: an instance serves up to
    /// this many requests, one after another, before it is dropped (0 or 1: a fresh instance per request,
    /// the default). State a guest keeps in memory then lasts from one
    /// request to the next of this handler, never across handlers.
    #[serde(default)]
    pub reuse: u32,
    /// wasi:http 0.3 components: requests one instance serves at the same
    /// time (1, the default: one at a time). With more, the requests in
    /// flight on an instance share its memory and its fate (a trap or a
    /// request past its time limit stops them all); needs `reuse` > 1.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// wasi:http components: hosts outbound requests may go to (none by default).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Queues (`[queue.NAME]`) this handler may use (none by default).
    #[serde(default)]
    pub queues: Vec<String>,
    /// WebSocket: origins allowed besides the request's own host.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// kv namespaces the handler may use (none by default); the first is
    /// its default namespace.
    #[serde(default)]
    pub kv: Vec<String>,
    /// A directory (relative to the manifest) the handler may read and write
    /// as `/data` through WASI files; none by default.
    #[serde(default)]
    pub data_dir: Option<String>,
    /// WebSocket: largest message, bytes (Tornado: 10 MiB).
    #[serde(default = "default_ws_max_message")]
    pub max_message_size: usize,
    /// WebSocket: seconds without any frame before the connection is closed.
    #[serde(default = "default_ws_idle")]
    pub idle_timeout_secs: u64,
    /// Longest time one request (or WebSocket callback) may spend waiting
    /// on the host (pubsub `wait`), ms; raise it for long polls. Waiting does
    /// not use up `timeout_ms`. Default: `timeout_ms`.
    #[serde(default)]
    pub wait_timeout_ms: Option<u64>,
    /// Long polls hold no instance: a pub/sub `wait` of an HTTP request that
    /// would block ends the guest's run instead (its instance is dropped),
    /// the request waits in the host, and when the topic has a message (or
    /// the wait's time is up) the request runs again from the start, where
    /// that same `wait` answers at once. For handlers that only read before
    /// they wait (Tornado's chat demo's `MessageUpdatesHandler`); off by default.
    #[serde(default)]
    pub park_waits: bool,
    /// Pub/sub topics this handler may use: names, or prefixes ending in
    /// `*` (none by default).
    #[serde(default)]
    pub pubsub_topics: Vec<String>,
    /// WebSocket groups this handler may join or broadcast to: names, or
    /// prefixes ending in `*` (none by default).
    #[serde(default)]
    pub groups: Vec<String>,
}

impl HandlerLimits {
    /// The waiting budget per call (`wait_timeout_ms`, else `timeout_ms`).
    pub fn wait_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.wait_timeout_ms.unwrap_or(self.timeout_ms))
    }
}

fn default_timeout_ms() -> u64 {
    30_000
}
fn default_memory_mb() -> u64 {
    64
}
fn default_max_instances() -> u32 {
    1000
}
fn default_concurrency() -> u32 {
    1
}
fn default_ws_max_message() -> usize {
    10 << 20
}
fn default_ws_idle() -> u64 {
    300
}

impl Default for HandlerLimits {
    fn default() -> Self {
        HandlerLimits {
            timeout_ms: default_timeout_ms(),
            memory_limit_mb: default_memory_mb(),
            max_instances: default_max_instances(),
            reuse: 0,
            concurrency: default_concurrency(),
            allowed_outbound_hosts: Vec::new(),
            queues: Vec::new(),
            allowed_origins: Vec::new(),
            kv: Vec::new(),
            data_dir: None,
            max_message_size: default_ws_max_message(),
            idle_timeout_secs: default_ws_idle(),
            wait_timeout_ms: None,
            park_waits: false,
            pubsub_topics: Vec::new(),
            groups: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandler {
    wasm: Spanned<String>,
    build: Option<String>,
    #[serde(flatten)]
    limits: HandlerLimits,
}

/// A route as written in the manifest.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub pattern: String,
    pub handler: String,
    pub name: Option<String>,
    pub settings: Vec<(String, String)>,
    pub line: usize,
}

/// A handler as written in the manifest, with its wasm path made absolute.
#[derive(Debug, Clone)]
pub struct HandlerSpec {
    pub name: String,
    pub wasm: PathBuf,
    pub build: Option<String>,
    pub limits: HandlerLimits,
    pub line: usize,
}

/// A queue as written in the manifest (`[queue.NAME]`).
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    /// 0: unbounded.
    pub max_size: usize,
    pub max_item_size: usize,
    pub line: usize,
}

/// Background workers as written in the manifest (`[worker.NAME]`): run
/// `concurrency` instances of `handler` (a worker-world component).
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub name: String,
    pub handler: String,
    pub concurrency: u32,
    pub settings: Vec<(String, String)>,
    pub line: usize,
}

/// A parsed and checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    pub dir: PathBuf,
    pub app: AppSettings,
    pub routes: Vec<RouteSpec>,
    pub handlers: Vec<HandlerSpec>,
    pub queues: Vec<QueueSpec>,
    pub workers: Vec<WorkerSpec>,
    /// `[cluster]` (or `waterspout serve --redis URL`): the services on Redis.
    pub cluster: Option<ClusterConfig>,
}

impl Manifest {
    /// Reads `APP_DIR/waterspout.toml` (or a manifest file given directly).
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let file = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_owned()
        };
        let text = std::fs::read_to_string(&file).map_err(|e| ManifestError {
            file: file.clone(),
            line: None,
            message: format!("cannot read the manifest: {e}"),
        })?;
        Self::parse(&file, &text)
    }

    /// Parses manifest text; `file` is used for relative paths and errors.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ManifestError> {
        let err = |line: Option<usize>, message: String| ManifestError {
            file: file.to_owned(),
            line,
            message,
        };
        let line_of = |offset: usize| Some(line_at(text, offset));
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_at(text, s.start));
            err(line, e.message().trim().to_owned())
        })?;
        let dir = file
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));

        let mut handlers = Vec::new();
        for (name, handler) in &raw.handlers {
            let line = line_at(text, handler.span().start);
            let h = handler.get_ref();
            if h.wasm.get_ref().trim().is_empty() {
                return Err(err(
                    line_of(h.wasm.span().start),
                    format!("handler {name:?}: `wasm` is empty"),
                ));
            }
            if h.limits.timeout_ms == 0 || h.limits.memory_limit_mb == 0 || h.limits.max_instances == 0 {
                return Err(err(
                    Some(line),
                    format!(
                        "handler {name:?}: timeout_ms, memory_limit_mb and max_instances must be positive"
                    ),
                ));
            }
            if let Some(bad) = h.limits.kv.iter().find(|ns| !valid_namespace(ns)) {
                return Err(err(
                    Some(line),
                    format!(
                        "handler {name:?}: kv namespace {bad:?} must be 1 to 64 letters, digits, '_', '-' or '.'"
                    ),
                ));
            }
            if h.limits.concurrency == 0 {
                return Err(err(
                    Some(line),
                    format!("handler {name:?}: concurrency must be positive (1: one request at a time)"),
                ));
            }
            if h.limits.concurrency > 1 && h.limits.reuse < 2 {
                return Err(err(
                    Some(line),
                    format!(
                        "handler {name:?}: concurrency = {} shares an instance between requests, so it \
                         needs reuse = N too (requests an instance serves in all, e.g. reuse = 1000)",
                        h.limits.concurrency
                    ),
                ));
            }
            for (field, patterns) in [
                ("pubsub_topics", &h.limits.pubsub_topics),
                ("groups", &h.limits.groups),
            ] {
                if let Some(bad) = patterns
                    .iter()
                    .find(|p| p.is_empty() || p.trim_end_matches('*').contains('*'))
                {
                    return Err(err(
                        Some(line),
                        format!(
                            "handler {name:?}: {field} entry {bad:?} must be a name, or a prefix ending in `*`"
                        ),
                    ));
                }
            }
            handlers.push(HandlerSpec {
                name: name.clone(),
                wasm: dir.join(h.wasm.get_ref()),
                build: h.build.clone(),
                limits: h.limits.clone(),
                line: line_at(text, h.wasm.span().start),
            });
        }

        let mut queues = Vec::new();
        for (name, queue) in &raw.queues {
            let q = queue.get_ref();
            if q.max_item_size == 0 {
                return Err(err(
                    line_of(queue.span().start),
                    format!("queue {name:?}: max_item_size must be positive"),
                ));
            }
            queues.push(QueueSpec {
                name: name.clone(),
                max_size: q.max_size,
                max_item_size: q.max_item_size,
                line: line_at(text, queue.span().start),
            });
        }
        for (name, handler) in &raw.handlers {
            for queue in &handler.get_ref().limits.queues {
                if !raw.queues.contains_key(queue) {
                    let declared: Vec<&str> = raw.queues.keys().map(String::as_str).collect();
                    return Err(err(
                        line_of(handler.span().start),
                        format!(
                            "handler {name:?} is granted queue {queue:?}, which no [queue.{queue}] section declares (queues: {declared:?})"
                        ),
                    ));
                }
            }
        }

        let mut workers = Vec::new();
        for (name, worker) in &raw.workers {
            let w = worker.get_ref();
            let handler = w.handler.get_ref();
            let Some(spec) = raw.handlers.get(handler) else {
                let known: Vec<&str> = raw.handlers.keys().map(String::as_str).collect();
                return Err(err(
                    line_of(w.handler.span().start),
                    format!("worker {name:?} names unknown handler {handler:?} (handlers: {known:?})"),
                ));
            };
            let concurrency = *w.concurrency.get_ref();
            let max_instances = spec.get_ref().limits.max_instances;
            if concurrency == 0 || concurrency > max_instances {
                return Err(err(
                    line_of(worker.span().start),
                    format!(
                        "worker {name:?}: concurrency must be between 1 and handler {handler:?}'s max_instances ({max_instances}); it is {concurrency}"
                    ),
                ));
            }
            if raw.routes.iter().any(|r| r.handler.get_ref() == handler) {
                return Err(err(
                    line_of(w.handler.span().start),
                    format!(
                        "worker {name:?}: handler {handler:?} is routed; a worker's handler serves no route"
                    ),
                ));
            }
            workers.push(WorkerSpec {
                name: name.clone(),
                handler: handler.clone(),
                concurrency,
                settings: settings_pairs(&w.settings),
                line: line_at(text, worker.span().start),
            });
        }

        let cluster = match &raw.cluster {
            None => None,
            Some(section) => Some(
                ClusterConfig::from_raw(section.get_ref(), &dir)
                    .map_err(|message| err(line_of(section.span().start), message))?,
            ),
        };

        let mut routes = Vec::new();
        for route in &raw.routes {
            let pattern = route.pattern.get_ref();
            let handler = route.handler.get_ref();
            let known: Vec<&str> = raw.handlers.keys().map(String::as_str).collect();
            if let Err((field, message)) = check_route(pattern, handler, &known) {
                let span = match field {
                    RouteField::Pattern => route.pattern.span(),
                    RouteField::Handler => route.handler.span(),
                };
                return Err(err(line_of(span.start), message));
            }
            let mut settings = settings_pairs(&route.settings);
            if let Some(class) = &route.class {
                settings.insert(0, (CLASS_SETTING.to_owned(), class.clone()));
            }
            routes.push(RouteSpec {
                pattern: pattern.clone(),
                handler: handler.clone(),
                name: route.name.clone(),
                settings,
                line: line_at(text, route.pattern.span().start),
            });
        }
        check_web(&raw.app, &|offset| line_at(text, offset)).map_err(|(line, m)| err(line, m))?;
        if routes.is_empty() {
            return Err(err(
                None,
                "no [[route]] entries: nothing would be served".to_owned(),
            ));
        }
        Ok(Manifest {
            file: file.to_owned(),
            dir,
            app: raw.app,
            routes,
            handlers,
            queues,
            workers,
            cluster,
        })
    }

    pub fn handler(&self, name: &str) -> Option<&HandlerSpec> {
        self.handlers.iter().find(|h| h.name == name)
    }

    /// The 1-based line of a byte offset in this manifest (re-read from
    /// disk; `None` when it cannot be).
    pub fn line_of(&self, offset: usize) -> Option<usize> {
        let text = std::fs::read_to_string(&self.file).ok()?;
        Some(line_at(&text, offset))
    }

    /// An error about this manifest at `line`.
    pub fn error(&self, line: Option<usize>, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }
}

/// Which field of a route a [`check_route`] error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteField {
    Pattern,
    Handler,
}

/// Checks one route the way the manifest does (the admin API's route replace
/// uses it too): the pattern must be a valid regex and the handler must be
/// one of `handlers`. The message names the route and what is wrong.
pub fn check_route(pattern: &str, handler: &str, handlers: &[&str]) -> Result<(), (RouteField, String)> {
    if let Err(e) = regex::Regex::new(pattern) {
        return Err((
            RouteField::Pattern,
            format!(
                "invalid route pattern {pattern:?}: {}",
                first_line(&e.to_string())
            ),
        ));
    }
    if !handlers.contains(&handler) {
        return Err((
            RouteField::Handler,
            format!("route {pattern:?} names unknown handler {handler:?} (handlers: {handlers:?})"),
        ));
    }
    Ok(())
}

/// A kv namespace name: short, and safe in a log line and a Redis key.
fn valid_namespace(ns: &str) -> bool {
    (1..=64).contains(&ns.len())
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Checks `[app]`'s web settings: versioned `cookie_secret` keys are
/// integers, `key_version` names one of them, `xsrf_cookie_version` is 1 or 2.
fn check_web(app: &AppSettings, line: &dyn Fn(usize) -> usize) -> Result<(), (Option<usize>, String)> {
    if let Some(secret) = &app.cookie_secret {
        let at = Some(line(secret.span().start));
        match secret.get_ref() {
            CookieSecret::One(s) if s.is_empty() => {
                return Err((at, "[app] cookie_secret is empty".to_owned()));
            }
            CookieSecret::One(_) => {}
            CookieSecret::Versioned(keys) => {
                if keys.is_empty() {
                    return Err((
                        at,
                        "[app] cookie_secret: a table needs at least one key".to_owned(),
                    ));
                }
                for key in keys.keys() {
                    if key.parse::<u32>().is_err() {
                        return Err((
                            at,
                            format!("[app] cookie_secret: key version {key:?} is not a whole number"),
                        ));
                    }
                }
                let Some(version) = &app.key_version else {
                    return Err((
                        at,
                        "[app] cookie_secret is a table of versioned keys: set key_version too".to_owned(),
                    ));
                };
                if !keys
                    .keys()
                    .any(|k| k.parse::<u32>().ok() == Some(*version.get_ref()))
                {
                    return Err((
                        Some(line(version.span().start)),
                        format!(
                            "[app] key_version = {} is not a key of cookie_secret",
                            version.get_ref()
                        ),
                    ));
                }
            }
        }
    }
    if let Some(v) = &app.xsrf_cookie_version
        && !matches!(v.get_ref(), 1 | 2)
    {
        return Err((
            Some(line(v.span().start)),
            format!("[app] xsrf_cookie_version = {}: must be 1 or 2", v.get_ref()),
        ));
    }
    Ok(())
}

/// Settings values reach the guest as strings; non-strings as JSON text.
fn settings_pairs(table: &toml::Table) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(k, v)| {
            let value = match v {
                toml::Value::String(s) => s.clone(),
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            (k.clone(), value)
        })
        .collect()
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

/// 1-based line number of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `[cluster]`: the app's services (kv, pub/sub, queues, WebSocket groups)
/// on Redis, shared by every node that names the same server and prefix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    redis: String,
    node: Option<String>,
    prefix: Option<String>,
    timeout_ms: Option<u64>,
    /// PEM file of the CA(s) that signed the server's certificate (rediss://).
    ca: Option<String>,
    /// PEM files of this node's client certificate and key, for a Redis
    /// that checks clients (`tls-auth-clients yes`).
    cert: Option<String>,
    key: Option<String>,
}

/// How a node checks a `rediss://` server and shows itself to it: files,
/// absolute or relative to the manifest's folder. Without `ca` the system's
/// roots are trusted; with it, only its certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    pub ca: Option<PathBuf>,
    /// The client certificate and its key (both or neither).
    pub client: Option<(PathBuf, PathBuf)>,
}

impl RedisTls {
    /// Whether anything is set (then the URL must be `rediss://`).
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.client.is_some()
    }
}

/// Where the cluster's services live (`[cluster]` or `serve --redis URL`).
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
    pub redis: String,
    /// This node's name, unique in the cluster (default: hostname-pid).
    pub node: String,
    /// Prefix of every Redis key and channel (default "waterspout"): apps
    /// sharing one Redis server use different prefixes.
    pub prefix: String,
    /// The longest one Redis call may take before the guest gets an error
    /// value (default 1000 ms).
    pub timeout: std::time::Duration,
    /// `ca`, `cert`, `key`: TLS settings for a `rediss://` URL.
    pub tls: RedisTls,
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis", &redact_url(&self.redis))
            .field("node", &self.node)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

/// `url` with its password replaced by `***` (for logs and errors).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let user = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl ClusterConfig {
    /// A cluster on `redis` with the defaults (what `--redis URL` gives).
    pub fn new(redis: &str) -> Result<ClusterConfig, String> {
        ClusterConfig::from_raw(
            &RawCluster {
                redis: redis.to_owned(),
                node: None,
                prefix: None,
                timeout_ms: None,
                ca: None,
                cert: None,
                key: None,
            },
            Path::new("."),
        )
    }

    /// `dir`: the folder relative file names are in (the manifest's).
    fn from_raw(raw: &RawCluster, dir: &Path) -> Result<ClusterConfig, String> {
        let redis = raw.redis.trim();
        if !(redis.starts_with("redis://") || redis.starts_with("rediss://")) {
            return Err(format!(
                "[cluster] redis = {:?} must be a redis:// or rediss:// URL",
                redact_url(redis)
            ));
        }
        let node = match &raw.node {
            Some(node) => ClusterConfig::checked_node(node).map_err(|e| format!("[cluster] {e}"))?,
            None => default_node_name(),
        };
        let prefix = raw.prefix.clone().unwrap_or_else(|| "waterspout".to_owned());
        if !cluster_name_ok(&prefix) {
            return Err(format!(
                "[cluster] prefix = {prefix:?} must be 1 to 64 letters, digits, '_', '-' or '.'"
            ));
        }
        let timeout_ms = raw.timeout_ms.unwrap_or(1000);
        if timeout_ms == 0 {
            return Err("[cluster] timeout_ms must be positive".into());
        }
        let file = |name: &Option<String>| name.as_ref().map(|n| dir.join(n.trim()));
        let client = match (file(&raw.cert), file(&raw.key)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("[cluster] cert and key go together: give both or neither".into()),
        };
        let tls = RedisTls {
            ca: file(&raw.ca),
            client,
        };
        let config = ClusterConfig {
            redis: redis.to_owned(),
            node,
            prefix,
            timeout: std::time::Duration::from_millis(timeout_ms),
            tls,
        };
        config.check_tls()?;
        Ok(config)
    }
}

impl ClusterConfig {
    /// TLS settings need a `rediss://` URL (a plain connection would ignore them).
    pub fn check_tls(&self) -> Result<(), String> {
        if self.tls.is_set() && !self.redis.starts_with("rediss://") {
            return Err(format!(
                "[cluster] ca, cert and key are for TLS: redis = {:?} must be a rediss:// URL",
                redact_url(&self.redis)
            ));
        }
        Ok(())
    }

    /// `node` if it is a valid node name.
    pub fn checked_node(node: &str) -> Result<String, String> {
        if cluster_name_ok(node) {
            Ok(node.to_owned())
        } else {
            Err(format!(
                "node = {node:?} must be 1 to 64 letters, digits, '_', '-' or '.'"
            ))
        }
    }
}

fn cluster_name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// hostname-pid: unique per process on a host, new after a restart (a
/// restarted node's unfinished queue items are redelivered like a dead one's).
fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "_-.".contains(*c))
                .take(40)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("/app/waterspout.toml"), text)
    }

    #[test]
    fn parses_routes_handlers_and_settings() {
        let m = parse(
            r#"
[[route]]
pattern = "/items/([0-9]+)"
handler = "items"
name = "item"
[route.settings]
greeting = "hi"
count = 3

[handler.items]
wasm = "items.wasm"
timeout_ms = 500
"#,
        )
        .unwrap();
        assert_eq!(
            m.routes[0].settings,
            [("count".into(), "3".into()), ("greeting".into(), "hi".into())]
        );
        assert_eq!(m.handlers[0].wasm, Path::new("/app/items.wasm"));
        assert_eq!(m.handlers[0].limits.timeout_ms, 500);
        assert_eq!(m.handlers[0].limits.memory_limit_mb, 64);
    }

    #[test]
    fn a_route_class_becomes_the_first_setting() {
        let m = parse(
            "[[route]]\npattern = \"/\"\nhandler = \"app\"\nclass = \"MainHandler\"\n[route.settings]\nx = \"1\"\n\n[handler.app]\nwasm = \"app.wasm\"\n",
        )
        .unwrap();
        assert_eq!(
            m.routes[0].settings,
            [
                (CLASS_SETTING.into(), "MainHandler".into()),
                ("x".into(), "1".into())
            ]
        );
    }

    #[test]
    fn concurrency_defaults_to_one_and_needs_reuse() {
        let handler = |options: &str| {
            parse(&format!(
                "[[route]]\npattern = \"/\"\nhandler = \"h\"\n\n[handler.h]\nwasm = \"h.wasm\"\n{options}\n"
            ))
        };
        assert_eq!(handler("").unwrap().handlers[0].limits.concurrency, 1);
        let m = handler("concurrency = 8\nreuse = 1000").unwrap();
        assert_eq!(m.handlers[0].limits.concurrency, 8);
        let e = handler("concurrency = 8").unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("needs reuse = N"), "{e}");
        let e = handler("concurrency = 0\nreuse = 10").unwrap_err();
        assert!(e.message.contains("concurrency must be positive"), "{e}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let e = parse("[[route]]\npattern = \"/\"\nhandler = \n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().starts_with("/app/waterspout.toml:3:"), "{e}");
    }

    #[test]
    fn unknown_handler_names_the_line() {
        let e = parse("[[route]]\npattern = \"/\"\nhandler = \"nope\"\n\n[handler.h]\nwasm = \"h.wasm\"\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("unknown handler \"nope\""), "{e}");
    }

    #[test]
    fn invalid_regex_names_the_line() {
        let e =
            parse("\n[[route]]\npattern = \"/(unclosed\"\nhandler = \"h\"\n[handler.h]\nwasm = \"h.wasm\"\n")
                .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("invalid route pattern"), "{e}");
    }

    #[test]
    fn kv_namespaces_are_read_and_checked() {
        let m = parse("[[route]]\npattern = \"/\"\nhandler = \"h\"\n[handler.h]\nwasm = \"h.wasm\"\nkv = [\"chat\", \"s-1\"]\n")
            .unwrap();
        assert_eq!(m.handlers[0].limits.kv, ["chat", "s-1"]);
        let e = parse(
            "[[route]]\npattern = \"/\"\nhandler = \"h\"\n\n[handler.h]\nwasm = \"h.wasm\"\nkv = [\"a b\"]\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("kv namespace \"a b\""), "{e}");
    }

    #[test]
    fn unknown_field_is_refused() {
        let e = parse(
            "[[route]]\npattern = \"/\"\nhandler = \"h\"\nhandlr = 1\n[handler.h]\nwasm = \"h.wasm\"\n",
        )
        .unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        assert!(e.line.is_some());
    }

    #[test]
    fn cluster_section_parses_checks_and_hides_the_password() {
        let app = "[[route]]\npattern = \"/\"\nhandler = \"h\"\n[handler.h]\nwasm = \"h.wasm\"\n";
        let parse = |text: &str| parse(&format!("{text}{app}"));
        let m = parse("[cluster]\nredis = \"redis://:s3cret@127.0.0.1:6379/0\"\nnode = \"a-1\"\n").unwrap();
        let cluster = m.cluster.expect("cluster");
        assert_eq!(cluster.node, "a-1");
        assert_eq!(cluster.prefix, "waterspout");
        assert_eq!(cluster.timeout, std::time::Duration::from_millis(1000));
        let shown = format!("{cluster:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains(":***@127.0.0.1"),
            "{shown}"
        );
        assert!(parse("").unwrap().cluster.is_none());
        let e = parse("[cluster]\nredis = \"http://x\"\n").unwrap_err();
        assert!(
            e.message.contains("redis:// or rediss://") && e.line == Some(1),
            "{e}"
        );
        let e = parse("[cluster]\nredis = \"redis://x\"\nnode = \"a b\"\n").unwrap_err();
        assert!(e.message.contains("node"), "{e}");
        let node = ClusterConfig::new("rediss://u:p@h:1").unwrap().node;
        assert!(node.ends_with(&format!("-{}", std::process::id())), "{node}");
        assert_eq!(redact_url("redis://u:p@h"), "redis://u:***@h");
        assert_eq!(redact_url("redis://p@h"), "redis://***@h");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn cluster_tls_files_are_relative_to_the_manifest_and_need_rediss() {
        let app = "[[route]]\npattern = \"/\"\nhandler = \"h\"\n[handler.h]\nwasm = \"h.wasm\"\n";
        let parse =
            |text: &str| Manifest::parse(Path::new("/srv/app/waterspout.toml"), &format!("{text}{app}"));
        let m = parse(
            "[cluster]\nredis = \"rediss://r:6380\"\nca = \"ca.pem\"\ncert = \"/etc/n.pem\"\nkey = \"n.key\"\n",
        )
        .unwrap();
        let tls = m.cluster.unwrap().tls;
        assert_eq!(tls.ca.as_deref(), Some(Path::new("/srv/app/ca.pem")));
        assert_eq!(
            tls.client,
            Some((PathBuf::from("/etc/n.pem"), PathBuf::from("/srv/app/n.key")))
        );
        assert_eq!(
            parse("[cluster]\nredis = \"rediss://r\"\n")
                .unwrap()
                .cluster
                .unwrap()
                .tls,
            RedisTls::default()
        );
        let e = parse("[cluster]\nredis = \"redis://r\"\nca = \"ca.pem\"\n").unwrap_err();
        assert!(
            e.message.contains("must be a rediss:// URL") && e.line == Some(1),
            "{e}"
        );
        let e = parse("[cluster]\nredis = \"rediss://r\"\nkey = \"n.key\"\n").unwrap_err();
        assert!(e.message.contains("cert and key go together"), "{e}");
    }
}
