//! kv on Redis. A value is the string key `PREFIX:kv:NS:KEY` (TTL by Redis:
//! `PX`); each namespace keeps a sorted set of its keys
//! (`PREFIX:kvidx:NS`) for `list_keys` (ZRANGEBYLEX), whose expired members
//! are dropped when a listing meets them. Each operation is one Redis
//! transaction or Lua script, so increment and compare-and-swap are atomic
//! across every node. Namespaces are checked by the manifest (letters,
//! digits, `_-.`), so `NS:` cannot be confused with part of a key.

use std::sync::LazyLock;
use std::time::Duration;

use super::{Redis, RedisError};
use crate::services::kv::{Kv, KvError, check_key, check_value};

/// The Redis kv backend.
pub struct RedisKv {
    redis: Redis,
}

impl RedisKv {
    pub fn new(redis: Redis) -> RedisKv {
        RedisKv { redis }
    }

    fn value_key(&self, ns: &str, key: &str) -> String {
        self.redis.key(&["kv", ns, key])
    }

    fn index_key(&self, ns: &str) -> String {
        self.redis.key(&["kvidx", ns])
    }
}

fn backend(e: RedisError) -> KvError {
    match e {
        RedisError::Command(m) if m.contains("not an integer") || m.contains("overflow") => {
            KvError::NotANumber(format!(
                "the value is not a decimal 64-bit integer, or the sum overflows ({m})"
            ))
        }
        e => KvError::Backend(e.to_string()),
    }
}

fn ttl_arg(ttl: Option<Duration>) -> String {
    // At least 1 ms: PX 0 is an error in Redis.
    ttl.map(|t| t.as_millis().clamp(1, i64::MAX as u128).to_string())
        .unwrap_or_default()
}

/// KEYS: value, index. ARGV: expected-present ("0"/"1"), expected, value, ttl-ms or "", key.
static CAS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
elseif (not cur) or cur ~= ARGV[2] then
  return 0
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
redis.call('ZADD', KEYS[2], 0, ARGV[5])
return 1
",
    )
});

/// KEYS: index. ARGV: prefix, limit, value-key prefix. Live keys in order;
/// members whose value expired are removed.
static LIST: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local lo, hi = '-', '+'
if ARGV[1] ~= '' then
  lo = '[' .. ARGV[1]
  hi = '[' .. ARGV[1] .. '\255'
end
local limit = tonumber(ARGV[2])
local out = {}
if limit == 0 then return out end
for _, k in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], lo, hi)) do
  if redis.call('EXISTS', ARGV[3] .. k) == 1 then
    out[#out + 1] = k
    if #out >= limit then break end
  else
    redis.call('ZREM', KEYS[1], k)
  end
end
return out
",
    )
});

#[async_trait::async_trait]
impl Kv for RedisKv {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        self.redis
            .query(redis::cmd("GET").arg(self.value_key(ns, key)).clone())
            .await
            .map_err(backend)
    }

    async fn set(&self, ns: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError> {
        check_key(key)?;
        check_value(&value)?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        let set = pipe.cmd("SET").arg(self.value_key(ns, key)).arg(value);
        if let Some(ttl) = ttl {
            set.arg("PX").arg(ttl_arg(Some(ttl)));
        }
        set.ignore()
            .cmd("ZADD")
            .arg(self.index_key(ns))
            .arg(0)
            .arg(key)
            .ignore();
        self.redis.pipeline::<()>(pipe).await.map_err(backend)
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.value_key(ns, key))
            .cmd("ZREM")
            .arg(self.index_key(ns))
            .arg(key)
            .ignore();
        let (deleted,): (u64,) = self.redis.pipeline(pipe).await.map_err(backend)?;
        Ok(deleted > 0)
    }

    async fn increment(&self, ns: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        check_key(key)?;
        // INCRBY keeps the key's TTL and refuses a value that is not an integer.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("INCRBY")
            .arg(self.value_key(ns, key))
            .arg(delta)
            .cmd("ZADD")
            .arg(self.index_key(ns))
            .arg(0)
            .arg(key)
            .ignore();
        let (value,): (i64,) = self.redis.pipeline(pipe).await.map_err(backend)?;
        Ok(value)
    }

    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, KvError> {
        check_key(key)?;
        check_value(&value)?;
        let mut invocation = CAS.prepare_invoke();
        invocation
            .key(self.value_key(ns, key))
            .key(self.index_key(ns))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(value)
            .arg(ttl_arg(ttl))
            .arg(key);
        let set: i64 = self.redis.script(invocation).await.map_err(backend)?;
        Ok(set == 1)
    }

    async fn list_keys(&self, ns: &str, prefix: &str, limit: Option<usize>) -> Result<Vec<String>, KvError> {
        let mut invocation = LIST.prepare_invoke();
        invocation
            .key(self.index_key(ns))
            .arg(prefix)
            .arg(limit.unwrap_or(i64::MAX as usize).min(i64::MAX as usize))
            .arg(self.value_key(ns, ""));
        self.redis.script(invocation).await.map_err(backend)
    }
}
