//! The services on Redis, for a node of a cluster (`[cluster] redis = URL`
//! or `waterspout serve --redis URL`): the same traits as the embedded
//! backends, so guests change nothing.
//!
//! [`Redis`] is the node's one handle on the server, shared by every backend
//! (and by cluster-wide deploys):
//!
//! - one multiplexed connection (the `redis` crate's `ConnectionManager`:
//!   reconnects by itself with exponential backoff), plus one dedicated
//!   subscriber connection for notifications ([`Redis::listen`]);
//! - everything runs on a runtime thread of its own, so the connections'
//!   tasks live as long as the handle, whichever worker thread calls;
//! - every call is bounded by the cluster's `timeout` (default 1 s): a Redis
//!   that is down answers [`RedisError::Unavailable`] fast, never a hang;
//! - a heartbeat every second measures the round trip, registers the node
//!   and counts the nodes seen; an outage is logged once when it starts and
//!   once when it ends, and `/metrics` shows it (`waterspout_redis_up`,
//!   `waterspout_redis_rtt_seconds`, `waterspout_redis_errors_total`,
//!   `waterspout_redis_reconnects_total`, `waterspout_cluster_nodes`).
//!
//! Keys and channels all start with the cluster's prefix: [`Redis::key`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub mod broker;
pub mod kv;
pub mod queues;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;

use crate::manifest::{ClusterConfig, RedisTls, redact_url};

/// How often the heartbeat runs.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node whose heartbeat is older than this is gone (its unfinished queue
/// items are redelivered).
pub const NODE_TTL: Duration = Duration::from_secs(5);

/// Why a Redis call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    /// Redis cannot be reached, or did not answer within the timeout.
    #[error("redis is unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error (a bug of ours or a foreign key type).
    #[error("redis refused the command: {0}")]
    Command(String),
}

/// What [`Redis::listen`] hands its callback.
#[derive(Debug)]
pub enum Notice<'a> {
    /// A message on a channel matching the pattern.
    Message { channel: &'a str, payload: &'a [u8] },
    /// The subscriber (re)connected: messages may have been missed since
    /// the last one, so whoever waits should look again.
    Subscribed,
}

/// What a node knows of its Redis connection now (for `/metrics`, the admin API).
#[allow(dead_code)] // read by cluster-wide deploys and the admin API (next)
#[derive(Debug, Clone, PartialEq)]
pub struct RedisStatus {
    pub node: String,
    /// The last call or heartbeat reached Redis.
    pub up: bool,
    /// The last heartbeat's round trip.
    pub rtt: Option<Duration>,
    /// Times Redis came back after an outage.
    pub reconnects: u64,
    /// Calls that failed (unavailable or refused).
    pub errors: u64,
    /// Nodes whose heartbeat is fresh, this one included (0 before the first).
    pub nodes: u64,
}

/// The node's handle on Redis. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClusterConfig,
    client: redis::Client,
    manager: ConnectionManager,
    runtime: tokio::runtime::Handle,
    /// Dropped with the handle: the runtime thread ends.
    _stop: tokio::sync::oneshot::Sender<()>,
    /// `None` before the first answer, then whether the last call got one.
    state: std::sync::Mutex<Option<(bool, Instant)>>,
    up: AtomicBool,
    reconnects: AtomicU64,
    errors: AtomicU64,
    rtt_micros: AtomicU64,
    nodes: AtomicU64,
}

impl Redis {
    /// Starts the node's Redis handle: checks the URL, starts the runtime
    /// thread and the heartbeat. Connecting happens in the background (a
    /// Redis that is down now is not an error: calls answer `Unavailable`
    /// until it is up).
    pub fn start(config: &ClusterConfig) -> Result<Redis, RedisError> {
        let client = client(&config.redis, &config.tls)?;
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("waterspout-redis".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                runtime.block_on(async move {
                    let _ = stop_rx.await;
                });
            })
            .map_err(|e| RedisError::Unavailable(format!("cannot start the redis thread: {e}")))?;
        let runtime = handle_rx
            .recv()
            .map_err(|e| RedisError::Unavailable(e.to_string()))?
            .map_err(RedisError::Unavailable)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(3);
        let manager = {
            // The manager spawns its tasks on the current runtime: ours.
            let _enter = runtime.enter();
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
                .map_err(|e| RedisError::Command(e.to_string()))?
        };
        let redis = Redis {
            inner: Arc::new(Inner {
                config: config.clone(),
                client,
                manager,
                runtime,
                _stop: stop_tx,
                state: std::sync::Mutex::new(None),
                up: AtomicBool::new(false),
                reconnects: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                rtt_micros: AtomicU64::new(0),
                nodes: AtomicU64::new(0),
            }),
        };
        let weak = Arc::downgrade(&redis.inner);
        redis.inner.runtime.spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                Redis { inner }.heartbeat().await;
            }
        });
        tracing::info!(
            "cluster node {:?} on redis {} (prefix {:?})",
            config.node,
            redact_url(&config.redis),
            config.prefix
        );
        Ok(redis)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.config.node
    }

    /// The cluster's settings.
    #[allow(dead_code)]
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// `PREFIX:part1:part2…`: every key and channel of the cluster.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.inner.config.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// Runs `f` with the shared connection on the Redis thread, bounded by
    /// the cluster's timeout; counts and logs failures.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, RedisError>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let started = Instant::now();
        let connection = self.inner.manager.clone();
        let timeout = self.inner.config.timeout;
        let task = self
            .inner
            .runtime
            .spawn(async move { tokio::time::timeout(timeout, f(connection)).await });
        let result = match task.await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(e))) => Err(classify(&e)),
            Ok(Err(_)) => Err(RedisError::Unavailable(format!(
                "no answer within {} ms",
                timeout.as_millis()
            ))),
            Err(e) => Err(RedisError::Unavailable(format!("the redis thread stopped: {e}"))),
        };
        self.observe(&result, started);
        result
    }

    /// Runs a task on the Redis thread (a backend's background loop).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.runtime.spawn(task);
    }

    /// One command.
    pub async fn query<T: redis::FromRedisValue + Send + 'static>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, RedisError> {
        self.run(move |mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// A pipeline (`redis::pipe().atomic()` for MULTI/EXEC).
    pub async fn pipeline<T: redis::FromRedisValue + Send + 'static>(
        &self,
        pipe: redis::Pipeline,
    ) -> Result<T, RedisError> {
        self.run(move |mut c| async move { pipe.query_async(&mut c).await })
            .await
    }

    /// A Lua script (EVALSHA, loaded on first use): atomic on the server.
    pub async fn script<T: redis::FromRedisValue + Send + 'static>(
        &self,
        invocation: redis::ScriptInvocation<'static>,
    ) -> Result<T, RedisError> {
        self.run(move |mut c| async move { invocation.invoke_async(&mut c).await })
            .await
    }

    /// Subscribes to channels matching `pattern` (PSUBSCRIBE) on a dedicated
    /// connection, for the life of the handle; `on_notice` runs on the Redis
    /// thread for each message (keep it short: no waiting) and after each
    /// (re)subscription. Reconnects with backoff when the connection drops.
    pub fn listen(&self, pattern: String, on_notice: impl Fn(Notice<'_>) + Send + Sync + 'static) {
        let weak = Arc::downgrade(&self.inner);
        self.inner.runtime.spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let client = inner.client.clone();
                let timeout = inner.config.timeout;
                drop(inner);
                let connected = tokio::time::timeout(timeout, async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.psubscribe(&pattern).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                })
                .await;
                match connected {
                    Ok(Ok(pubsub)) => {
                        backoff = Duration::from_millis(50);
                        on_notice(Notice::Subscribed);
                        let mut messages = pubsub.into_on_message();
                        while let Some(message) = messages.next().await {
                            on_notice(Notice::Message {
                                channel: message.get_channel_name(),
                                payload: message.get_payload_bytes(),
                            });
                        }
                        // The connection dropped: whoever waits looks again
                        // once we are back (Subscribed).
                    }
                    Ok(Err(_)) | Err(_) => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        });
    }

    /// How long Redis has answered without an outage (none while it is down).
    pub fn up_for(&self) -> Option<Duration> {
        match *self.inner.state.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((true, since)) => Some(since.elapsed()),
            _ => None,
        }
    }

    /// What this node knows of Redis now.
    #[allow(dead_code)]
    pub fn status(&self) -> RedisStatus {
        let rtt = self.inner.rtt_micros.load(Ordering::Relaxed);
        RedisStatus {
            node: self.inner.config.node.clone(),
            up: self.inner.up.load(Ordering::Relaxed),
            rtt: (rtt > 0).then(|| Duration::from_micros(rtt)),
            reconnects: self.inner.reconnects.load(Ordering::Relaxed),
            errors: self.inner.errors.load(Ordering::Relaxed),
            nodes: self.inner.nodes.load(Ordering::Relaxed),
        }
    }

    /// The nodes whose heartbeat is fresh (names, sorted).
    #[allow(dead_code)]
    pub async fn nodes(&self) -> Result<Vec<String>, RedisError> {
        let since = now_ms().saturating_sub(NODE_TTL.as_millis() as u64);
        self.query(
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.key(&["nodes"]))
                .arg(since)
                .arg("+inf")
                .clone(),
        )
        .await
    }

    /// Names of nodes that were seen and whose heartbeat is older than
    /// [`NODE_TTL`] (crashed or stopped).
    pub async fn dead_nodes(&self) -> Result<Vec<String>, RedisError> {
        let before = now_ms().saturating_sub(NODE_TTL.as_millis() as u64);
        self.query(
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.key(&["nodes"]))
                .arg("-inf")
                .arg(format!("({before}"))
                .clone(),
        )
        .await
    }

    /// Forgets a dead node (after its leftovers were handled).
    pub async fn forget_node(&self, node: &str) -> Result<(), RedisError> {
        self.query(redis::cmd("ZREM").arg(self.key(&["nodes"])).arg(node).clone())
            .await
    }

    /// Registers the node, measures the round trip, counts the nodes.
    async fn heartbeat(&self) {
        let now = now_ms();
        let since = now.saturating_sub(NODE_TTL.as_millis() as u64);
        let nodes = self.key(&["nodes"]);
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(&nodes)
            .arg(now)
            .arg(self.node())
            .ignore()
            .cmd("ZCOUNT")
            .arg(&nodes)
            .arg(since)
            .arg("+inf");
        let started = Instant::now();
        if let Ok((count,)) = self.pipeline::<(u64,)>(pipe).await {
            let rtt = started.elapsed();
            self.inner
                .rtt_micros
                .store(rtt.as_micros().max(1) as u64, Ordering::Relaxed);
            self.inner.nodes.store(count, Ordering::Relaxed);
            metrics::gauge!("waterspout_redis_rtt_seconds").set(rtt.as_secs_f64());
            metrics::gauge!("waterspout_cluster_nodes").set(count as f64);
        }
        // Set on every beat too: the first answer may come before the app
        // installs its metrics recorder.
        let up = self.inner.up.load(Ordering::Relaxed);
        metrics::gauge!("waterspout_redis_up").set(if up { 1.0 } else { 0.0 });
    }

    /// Counts an outcome; logs an outage once when it starts and once when
    /// it ends.
    fn observe<T>(&self, result: &Result<T, RedisError>, started: Instant) {
        let reached = !matches!(result, Err(RedisError::Unavailable(_)));
        if let Err(e) = result {
            self.inner.errors.fetch_add(1, Ordering::Relaxed);
            let kind = match e {
                RedisError::Unavailable(_) => "unavailable",
                RedisError::Command(_) => "command",
            };
            metrics::counter!("waterspout_redis_errors_total", "kind" => kind).increment(1);
            if let RedisError::Command(message) = e {
                tracing::warn!("redis refused a command: {message}");
            }
        }
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let url = redact_url(&self.inner.config.redis);
        match *state {
            Some((was, _)) if was == reached => return,
            // A call sent before Redis came back, failing late: not a new outage.
            Some((true, since)) if started < since => return,
            None if reached => tracing::info!("connected to redis {url}"),
            Some((_, since)) if reached => {
                self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("waterspout_redis_reconnects_total").increment(1);
                tracing::info!("redis {url} is back after {:.1} s", since.elapsed().as_secs_f64());
            }
            _ => {
                let why = result.as_ref().err().map(ToString::to_string).unwrap_or_default();
                tracing::error!(
                    "redis {url} is unreachable ({why}): service calls answer errors until it is back"
                );
            }
        }
        *state = Some((reached, Instant::now()));
        self.inner.up.store(reached, Ordering::Relaxed);
        metrics::gauge!("waterspout_redis_up").set(if reached { 1.0 } else { 0.0 });
    }
}

/// A client for `url` (not yet connected): for `rediss://` with `tls.ca`,
/// trusting only those CA certificates (else the system's roots, which
/// rustls-native-certs reads, `SSL_CERT_FILE` included), and showing
/// `tls.client` when set. Deploys (deploy/cluster.rs) connect with it too.
pub fn client(url: &str, tls: &RedisTls) -> Result<redis::Client, RedisError> {
    let bad = |what: String| RedisError::Command(format!("redis {}: {what}", redact_url(url)));
    if !tls.is_set() {
        return redis::Client::open(url).map_err(|e| bad(format!("bad URL: {e}")));
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))
    };
    let root_cert = tls.ca.as_deref().map(read).transpose()?;
    let client_tls = match &tls.client {
        Some((cert, key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        None => None,
    };
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(|e| bad(format!("bad URL or TLS files: {e}")))
}

/// An I/O failure, a refused or dropped connection, a timeout: Redis is
/// unavailable. Anything else is the server refusing the command.
fn classify(e: &redis::RedisError) -> RedisError {
    if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.is_unrecoverable_error()
    {
        RedisError::Unavailable(e.to_string())
    } else {
        RedisError::Command(e.to_string())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
