//! Cluster-wide deploys: the deploy log in Redis that every node follows.
//!
//! ```text
//! PREFIX deploy:seq              the last deploy id (INCR; 0/absent = none yet)
//! PREFIX deploy:active           hash handler → {"sha256", "version"}: the active set
//! PREFIX deploy:routes           the route table replaced over the API (JSON; absent = the manifest's)
//! PREFIX deploy:log              stream: one entry per change {id, kind, handler, node} (MAXLEN ~1000)
//! PREFIX version:HANDLER:SHA256  a version's bytes, content-addressed, written before the change
//! PREFIX deploy:applied          hash node → the deploy id it has applied
//! PREFIX nodes                   sorted set node → last heartbeat (unix ms)
//! ```
//!
//! A change made on any node's admin API (upload + activate, activate,
//! rollback, delete a handler, replace the routes) is validated there, its
//! bytes are put in Redis, and then one Lua script bumps the deploy id,
//! changes the active set and appends to the log, atomically. That script is
//! the commit point: before it nothing changed anywhere, after it every node
//! converges on the new set. Each node follows the log (XREAD BLOCK on a
//! connection of its own, and a check of the deploy id at least every second)
//! and applies the **whole active set** as of the newest id, not the
//! individual changes: fetch missing bytes, validate, compile, swap; then it
//! records the id in `deploy:applied`. So a node that was down, slow or
//! killed mid-deploy ends on the same set as every other once it runs again,
//! and a node that starts catches up before it serves.
//!
//! The local version store stays each node's cache (and what it serves when
//! Redis is unreachable at start).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::RouteDoc;

/// Entries kept in the deploy log stream (approximately).
const LOG_LENGTH: u64 = 1000;
/// How often a node says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node unheard of for this long is no longer counted as seen.
pub const NODE_TTL: Duration = Duration::from_secs(5);
/// Every Redis command's bound (a Redis that is down answers fast with an error).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one XREAD blocks; the deploy id is checked at least this often.
const FOLLOW_BLOCK_MS: u64 = 1000;

/// How a node joins a cluster's deploys.
#[derive(Debug, Clone)]
pub struct ClusterLink {
    /// `redis://…` or `rediss://…`.
    pub url: String,
    /// The CA and client certificate for `rediss://` (`[cluster] ca`, `cert`, `key`).
    pub tls: crate::manifest::RedisTls,
    /// This node's name (unique in the cluster).
    pub node: String,
    /// Key prefix shared by every node of one app, e.g. `ws:myapp:`.
    pub prefix: String,
}

/// A handler's entry in the active set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveEntry {
    pub sha256: String,
    /// The version number on the node that made the change; other nodes
    /// record the bytes under the same number when it is free in their store.
    pub version: u64,
}

/// The cluster's state as of one deploy id.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub seq: u64,
    pub handlers: BTreeMap<String, ActiveEntry>,
    pub routes: Option<Vec<RouteDoc>>,
}

/// One change to record.
pub enum Change<'a> {
    Activate { handler: &'a str, entry: ActiveEntry },
    Delete { handler: &'a str },
    Routes(&'a [RouteDoc]),
}

/// How far a deploy has reached.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// The cluster's newest deploy id when asked.
    pub deploy_id: u64,
    /// Live nodes that have applied it (or a newer one).
    pub nodes_applied: usize,
    /// Nodes heard of within the last few seconds.
    pub nodes_seen: usize,
}

/// A Redis failure, as a message for a person.
#[derive(Debug, thiserror::Error)]
#[error("the cluster's Redis ({what}): {message}")]
pub struct ClusterError {
    what: &'static str,
    message: String,
}

fn redis_error(what: &'static str) -> impl FnOnce(redis::RedisError) -> ClusterError {
    move |e| ClusterError {
        what,
        message: e.to_string(),
    }
}

const PUBLISH: &str = r#"
local id = redis.call('INCR', KEYS[1])
local kind = ARGV[1]
if kind == 'activate' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
elseif kind == 'delete' then
  redis.call('HDEL', KEYS[2], ARGV[2])
elseif kind == 'routes' then
  redis.call('SET', KEYS[3], ARGV[3])
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'id', id, 'kind', kind, 'handler', ARGV[2], 'node', ARGV[4])
return id
"#;

const SEED: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3]) end
redis.call('SET', KEYS[1], 1)
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'id', 1, 'kind', 'seed', 'handler', '', 'node', ARGV[1])
return 1
"#;

struct Keys {
    prefix: String,
    seq: String,
    active: String,
    routes: String,
    log: String,
    applied: String,
    nodes: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
            seq: format!("{prefix}deploy:seq"),
            active: format!("{prefix}deploy:active"),
            routes: format!("{prefix}deploy:routes"),
            log: format!("{prefix}deploy:log"),
            applied: format!("{prefix}deploy:applied"),
            nodes: format!("{prefix}nodes"),
        }
    }

    fn version(&self, handler: &str, sha256: &str) -> String {
        format!("{}version:{handler}:{sha256}", self.prefix)
    }
}

/// A node's link to the cluster's deploy log.
pub struct Cluster {
    client: redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    node: String,
    /// The deploy id this node has applied.
    applied: AtomicU64,
    /// Wakes the follower (a change recorded here that skipped ids).
    pub(super) wake: Notify,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl Cluster {
    /// Connects (bounded: a Redis that does not answer is an error).
    pub async fn connect(link: &ClusterLink) -> Result<Cluster, ClusterError> {
        let client = crate::services::redis::client(&link.url, &link.tls).map_err(|e| ClusterError {
            what: "its URL",
            message: e.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = tokio::time::timeout(
            COMMAND_TIMEOUT * 2,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| ClusterError {
            what: "connecting",
            message: format!("no answer within {:?}", COMMAND_TIMEOUT * 2),
        })?
        .map_err(redis_error("connecting"))?;
        Ok(Cluster {
            client,
            conn,
            keys: Keys::new(&link.prefix),
            node: link.node.clone(),
            applied: AtomicU64::new(0),
            wake: Notify::new(),
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }

    /// The cluster's newest deploy id (0: none yet).
    pub async fn seq(&self) -> Result<u64, ClusterError> {
        let mut conn = self.conn.clone();
        let seq: Option<u64> = conn
            .get(&self.keys.seq)
            .await
            .map_err(redis_error("reading the deploy id"))?;
        Ok(seq.unwrap_or(0))
    }

    /// The active set and routes as of the newest deploy id, read atomically.
    pub async fn snapshot(&self) -> Result<Snapshot, ClusterError> {
        let mut conn = self.conn.clone();
        let (seq, active, routes): (Option<u64>, BTreeMap<String, String>, Option<String>) = redis::pipe()
            .atomic()
            .get(&self.keys.seq)
            .hgetall(&self.keys.active)
            .get(&self.keys.routes)
            .query_async(&mut conn)
            .await
            .map_err(redis_error("reading the active set"))?;
        let mut handlers = BTreeMap::new();
        for (name, text) in active {
            let entry: ActiveEntry = serde_json::from_str(&text).map_err(|e| ClusterError {
                what: "reading the active set",
                message: format!("handler {name:?}: unreadable entry {text:?}: {e}"),
            })?;
            handlers.insert(name, entry);
        }
        let routes = routes
            .map(|text| serde_json::from_str::<Vec<RouteDoc>>(&text))
            .transpose()
            .map_err(|e| ClusterError {
                what: "reading the route table",
                message: e.to_string(),
            })?;
        Ok(Snapshot {
            seq: seq.unwrap_or(0),
            handlers,
            routes,
        })
    }

    /// Whether the bytes of `handler`'s version `sha256` are in Redis.
    pub async fn has_bytes(&self, handler: &str, sha256: &str) -> Result<bool, ClusterError> {
        let mut conn = self.conn.clone();
        conn.exists(self.keys.version(handler, sha256))
            .await
            .map_err(redis_error("checking a version's bytes"))
    }

    /// Stores a version's bytes (content-addressed: written once).
    pub async fn put_bytes(&self, handler: &str, sha256: &str, bytes: &[u8]) -> Result<(), ClusterError> {
        let mut conn = self.conn.clone();
        let _: () = redis::cmd("SET")
            .arg(self.keys.version(handler, sha256))
            .arg(bytes)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(redis_error("storing a version's bytes"))?;
        Ok(())
    }

    /// A version's bytes, checked against their SHA-256.
    pub async fn fetch_bytes(&self, handler: &str, sha256: &str) -> Result<Vec<u8>, ClusterError> {
        let mut conn = self.conn.clone();
        let bytes: Option<Vec<u8>> = conn
            .get(self.keys.version(handler, sha256))
            .await
            .map_err(redis_error("fetching a version's bytes"))?;
        let bytes = bytes.ok_or_else(|| ClusterError {
            what: "fetching a version's bytes",
            message: format!("{} is missing", self.keys.version(handler, sha256)),
        })?;
        if crate::registry::sha256_hex(&bytes) != sha256 {
            return Err(ClusterError {
                what: "fetching a version's bytes",
                message: format!("{} does not match its sha256", self.keys.version(handler, sha256)),
            });
        }
        Ok(bytes)
    }

    /// Records a change: the commit point. Returns its deploy id.
    pub async fn publish(&self, change: Change<'_>) -> Result<u64, ClusterError> {
        let (kind, handler, value) = match change {
            Change::Activate { handler, entry } => (
                "activate",
                handler,
                serde_json::to_string(&entry).expect("entries serialize"),
            ),
            Change::Delete { handler } => ("delete", handler, String::new()),
            Change::Routes(docs) => (
                "routes",
                "",
                serde_json::to_string(docs).expect("routes serialize"),
            ),
        };
        let mut conn = self.conn.clone();
        redis::Script::new(PUBLISH)
            .key(&self.keys.seq)
            .key(&self.keys.active)
            .key(&self.keys.routes)
            .key(&self.keys.log)
            .arg(kind)
            .arg(handler)
            .arg(value)
            .arg(&self.node)
            .arg(LOG_LENGTH)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error("recording the change"))
    }

    /// The first node of a cluster records its own active set as deploy 1.
    /// Returns false when the cluster already had one.
    pub async fn seed(
        &self,
        handlers: &BTreeMap<String, ActiveEntry>,
        routes: Option<&[RouteDoc]>,
    ) -> Result<bool, ClusterError> {
        let script = redis::Script::new(SEED);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&self.keys.seq)
            .key(&self.keys.active)
            .key(&self.keys.routes)
            .key(&self.keys.log)
            .arg(&self.node)
            .arg(LOG_LENGTH)
            .arg(
                routes
                    .map(|r| serde_json::to_string(r).expect("routes serialize"))
                    .unwrap_or_default(),
            );
        for (name, entry) in handlers {
            invocation
                .arg(name)
                .arg(serde_json::to_string(entry).expect("entries serialize"));
        }
        let mut conn = self.conn.clone();
        let seeded: u64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error("recording the first active set"))?;
        Ok(seeded == 1)
    }

    /// Notes that this node now serves deploy `seq`.
    pub async fn mark_applied(&self, seq: u64) -> Result<(), ClusterError> {
        self.applied.fetch_max(seq, Ordering::SeqCst);
        crate::metrics::cluster_deploy_applied(self.applied());
        let mut conn = self.conn.clone();
        let _: () = conn
            .hset(&self.keys.applied, &self.node, self.applied())
            .await
            .map_err(redis_error("recording the applied deploy"))?;
        Ok(())
    }

    /// Says this node is alive; returns how many nodes were seen lately.
    pub async fn heartbeat(&self) -> Result<(), ClusterError> {
        let now = unix_ms();
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            // The same sorted set (and member) as the services' heartbeat
            // (services/redis): dead nodes are forgotten there, after their
            // queue items were redelivered.
            .zadd(&self.keys.nodes, &self.node, now)
            .ignore()
            .hset(&self.keys.applied, &self.node, self.applied())
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(redis_error("heartbeat"))?;
        Ok(())
    }

    /// How far the newest deploy has reached.
    pub async fn status(&self) -> Result<ClusterStatus, ClusterError> {
        let now = unix_ms();
        let mut conn = self.conn.clone();
        let (seq, live, applied): (Option<u64>, Vec<String>, BTreeMap<String, u64>) = redis::pipe()
            .atomic()
            .get(&self.keys.seq)
            .zrangebyscore(
                &self.keys.nodes,
                now.saturating_sub(NODE_TTL.as_millis() as u64),
                "+inf",
            )
            .hgetall(&self.keys.applied)
            .query_async(&mut conn)
            .await
            .map_err(redis_error("reading the nodes' progress"))?;
        let seq = seq.unwrap_or(0);
        let mut live = live;
        if !live.contains(&self.node) {
            live.push(self.node.clone());
        }
        let nodes_applied = live
            .iter()
            .filter(|n| applied.get(*n).copied().unwrap_or(0) >= seq)
            .count();
        crate::metrics::cluster_nodes(live.len(), nodes_applied, seq);
        Ok(ClusterStatus {
            deploy_id: seq,
            nodes_applied,
            nodes_seen: live.len(),
        })
    }

    /// [`Cluster::status`], repeated until every live node has applied the
    /// newest deploy or `wait` has passed.
    pub async fn wait_all(&self, wait: Duration) -> Result<ClusterStatus, ClusterError> {
        let deadline = Instant::now() + wait;
        loop {
            let status = self.status().await?;
            if status.nodes_applied >= status.nodes_seen || Instant::now() >= deadline {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A connection of its own for XREAD BLOCK (a blocked command would
    /// hold up every other command on a shared one).
    pub(super) async fn follow_connection(&self) -> Result<MultiplexedConnection, ClusterError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT + Duration::from_millis(FOLLOW_BLOCK_MS)));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(redis_error("connecting the deploy follower"))
    }

    /// The id of the deploy log's newest entry ("0-0" when empty).
    pub(super) async fn log_end(&self) -> Result<String, ClusterError> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = conn
            .xrevrange_count(&self.keys.log, "+", "-", 1)
            .await
            .map_err(redis_error("reading the deploy log"))?;
        Ok(reply
            .ids
            .into_iter()
            .next()
            .map(|e| e.id)
            .unwrap_or_else(|| "0-0".to_owned()))
    }

    /// Waits for new entries in the deploy log after `last` (a stream id;
    /// "$" for "from now"), at most [`FOLLOW_BLOCK_MS`]. Returns the newest
    /// id read (or `last`).
    pub(super) async fn wait_log(
        &self,
        conn: &mut MultiplexedConnection,
        last: &str,
    ) -> Result<String, ClusterError> {
        let options = redis::streams::StreamReadOptions::default()
            .block(FOLLOW_BLOCK_MS as usize)
            .count(100);
        let reply: Option<redis::streams::StreamReadReply> = conn
            .xread_options(&[&self.keys.log], &[last], &options)
            .await
            .map_err(redis_error("following the deploy log"))?;
        let newest = reply
            .and_then(|r| r.keys.into_iter().next())
            .and_then(|k| k.ids.into_iter().last())
            .map(|e| e.id);
        Ok(newest.unwrap_or_else(|| last.to_owned()))
    }

    pub(super) const fn heartbeat_every() -> Duration {
        HEARTBEAT
    }
}
