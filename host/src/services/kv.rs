//! The kv service: keys in namespaces, bytes as values, optional TTLs,
//! atomic increment and compare-and-swap. [`Kv`] is the backend trait (the
//! cluster issue adds Redis); [`EmbeddedKv`] is the default: in memory, with
//! an optional append-only log in the app's store directory
//! ([`super::kv_log`]) so the data survives a restart and a crash.
//!
//! Which namespaces a handler may use is the capability's business
//! (`capabilities/kv.rs`); a backend serves any namespace it is given.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::kv_log::{KvLog, Record};

/// The longest key, bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// The largest value, bytes.
pub const MAX_VALUE_LEN: usize = 4 << 20;

/// Why a kv operation failed (the namespace check is the capability's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// A key or value over the limits, or an empty key.
    #[error("{0}")]
    Invalid(String),
    /// `increment` on a value that is not a decimal i64, or an overflow.
    #[error("{0}")]
    NotANumber(String),
    /// The backend failed (e.g. its file could not be written).
    #[error("{0}")]
    Backend(String),
}

/// A kv backend. Every operation is atomic with respect to the others.
#[async_trait::async_trait]
pub trait Kv: Send + Sync {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    async fn set(&self, ns: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError>;
    /// True when the key was there.
    async fn delete(&self, ns: &str, key: &str) -> Result<bool, KvError>;
    /// Adds `delta` to the decimal integer under `key` (absent: 0); keeps its TTL.
    async fn increment(&self, ns: &str, key: &str, delta: i64) -> Result<i64, KvError>;
    /// Sets `value` if the current value is `expected` (`None`: absent).
    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, KvError>;
    /// Keys starting with `prefix`, sorted, at most `limit`.
    async fn list_keys(&self, ns: &str, prefix: &str, limit: Option<usize>) -> Result<Vec<String>, KvError>;
}

/// Checks a key against the limits every backend shares.
pub fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::Invalid("empty key".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KvError::Invalid(format!(
            "key of {} bytes (at most {MAX_KEY_LEN})",
            key.len()
        )));
    }
    Ok(())
}

/// Checks a value against the limits every backend shares.
pub fn check_value(value: &[u8]) -> Result<(), KvError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(KvError::Invalid(format!(
            "value of {} bytes (at most {MAX_VALUE_LEN})",
            value.len()
        )));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: expiry times survive a restart.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn expiry(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|ttl| now_ms().saturating_add(ttl.as_millis().min(u64::MAX as u128) as u64))
}

/// One stored value.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub value: Vec<u8>,
    /// Unix milliseconds after which the entry is gone.
    pub expires_at: Option<u64>,
}

impl Entry {
    fn live(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// Namespace → key → entry. Keys are sorted for prefix listing.
pub(super) type Data = HashMap<String, BTreeMap<String, Entry>>;

/// Writes between two sweeps of expired entries (each sweep walks every key).
const SWEEP_EVERY: u64 = 4096;

struct Inner {
    data: Data,
    log: Option<KvLog>,
    writes: u64,
}

/// The embedded kv backend: a map behind one mutex (no operation awaits
/// while holding it), optionally logged to a file.
pub struct EmbeddedKv {
    inner: Mutex<Inner>,
}

impl EmbeddedKv {
    /// Data in memory only: gone when the process ends.
    pub fn in_memory() -> EmbeddedKv {
        EmbeddedKv {
            inner: Mutex::new(Inner {
                data: Data::new(),
                log: None,
                writes: 0,
            }),
        }
    }

    /// Data in memory, every change appended to the log in `dir` first; the
    /// log is read back now (a torn last record from a crash is cut off).
    pub fn persistent(dir: &Path) -> Result<EmbeddedKv, std::io::Error> {
        let (log, data) = KvLog::open(dir, now_ms())?;
        Ok(EmbeddedKv {
            inner: Mutex::new(Inner {
                data,
                log: Some(log),
                writes: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves whole entries (every change
        // is one insert or remove): the data is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn live(&self, ns: &str, key: &str, now: u64) -> Option<&Entry> {
        self.data.get(ns)?.get(key).filter(|e| e.live(now))
    }

    /// Logs the change, then applies it: a change the log refused is not made.
    fn apply(&mut self, record: Record) -> Result<(), KvError> {
        if let Some(log) = &mut self.log {
            log.append(&record)
                .map_err(|e| KvError::Backend(format!("cannot write the kv log: {e}")))?;
        }
        match record {
            Record::Set {
                ns,
                key,
                value,
                expires_at,
            } => {
                self.data
                    .entry(ns)
                    .or_default()
                    .insert(key, Entry { value, expires_at });
            }
            Record::Delete { ns, key } => {
                if let Some(keys) = self.data.get_mut(&ns) {
                    keys.remove(&key);
                    if keys.is_empty() {
                        self.data.remove(&ns);
                    }
                }
            }
        }
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.sweep();
        }
        if let Some(log) = &mut self.log
            && log.wants_compaction()
        {
            // A failed compaction leaves the old log in place: nothing is lost.
            if let Err(e) = log.compact(&self.data, now_ms()) {
                tracing::warn!("cannot compact the kv log: {e}");
            }
        }
        Ok(())
    }

    /// Drops expired entries from memory (the log forgets them at its next
    /// compaction, and on load).
    fn sweep(&mut self) {
        let now = now_ms();
        for keys in self.data.values_mut() {
            keys.retain(|_, e| e.live(now));
        }
        self.data.retain(|_, keys| !keys.is_empty());
    }

    fn set(&mut self, ns: &str, key: &str, value: Vec<u8>, expires_at: Option<u64>) -> Result<(), KvError> {
        self.apply(Record::Set {
            ns: ns.to_owned(),
            key: key.to_owned(),
            value,
            expires_at,
        })
    }
}

#[async_trait::async_trait]
impl Kv for EmbeddedKv {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let inner = self.lock();
        Ok(inner.live(ns, key, now_ms()).map(|e| e.value.clone()))
    }

    async fn set(&self, ns: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError> {
        check_key(key)?;
        check_value(&value)?;
        self.lock().set(ns, key, value, expiry(ttl))
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let mut inner = self.lock();
        if inner.live(ns, key, now_ms()).is_none() {
            return Ok(false);
        }
        inner.apply(Record::Delete {
            ns: ns.to_owned(),
            key: key.to_owned(),
        })?;
        Ok(true)
    }

    async fn increment(&self, ns: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        check_key(key)?;
        let mut inner = self.lock();
        let (current, expires_at) = match inner.live(ns, key, now_ms()) {
            None => (0, None),
            Some(entry) => {
                let n = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or_else(|| {
                        KvError::NotANumber(format!("the value of {key:?} is not a decimal integer"))
                    })?;
                (n, entry.expires_at)
            }
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| KvError::NotANumber(format!("{current} + {delta} overflows a 64-bit integer")))?;
        inner.set(ns, key, next.to_string().into_bytes(), expires_at)?;
        Ok(next)
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
        let mut inner = self.lock();
        let current = inner.live(ns, key, now_ms()).map(|e| e.value.as_slice());
        if current != expected {
            return Ok(false);
        }
        inner.set(ns, key, value, expiry(ttl))?;
        Ok(true)
    }

    async fn list_keys(&self, ns: &str, prefix: &str, limit: Option<usize>) -> Result<Vec<String>, KvError> {
        let inner = self.lock();
        let Some(keys) = inner.data.get(ns) else {
            return Ok(Vec::new());
        };
        let now = now_ms();
        Ok(keys
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| e.live(now))
            .map(|(k, _)| k.clone())
            .take(limit.unwrap_or(usize::MAX))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_get_delete_increment_cas_list() {
        let kv = EmbeddedKv::in_memory();
        assert_eq!(kv.get("a", "k").await, Ok(None));
        kv.set("a", "k", b"v".to_vec(), None).await.unwrap();
        assert_eq!(kv.get("a", "k").await, Ok(Some(b"v".to_vec())));
        assert_eq!(kv.get("b", "k").await, Ok(None), "namespaces are apart");
        assert_eq!(kv.increment("a", "n", 5).await, Ok(5));
        assert_eq!(kv.increment("a", "n", -7).await, Ok(-2));
        assert!(matches!(
            kv.increment("a", "k", 1).await,
            Err(KvError::NotANumber(_))
        ));
        assert_eq!(
            kv.compare_and_swap("a", "c", None, b"1".to_vec(), None).await,
            Ok(true)
        );
        assert_eq!(
            kv.compare_and_swap("a", "c", None, b"2".to_vec(), None).await,
            Ok(false)
        );
        assert_eq!(
            kv.compare_and_swap("a", "c", Some(b"1"), b"2".to_vec(), None)
                .await,
            Ok(true)
        );
        kv.set("a", "p/1", vec![], None).await.unwrap();
        kv.set("a", "p/2", vec![], None).await.unwrap();
        kv.set("a", "q", vec![], None).await.unwrap();
        assert_eq!(kv.list_keys("a", "p/", None).await.unwrap(), ["p/1", "p/2"]);
        assert_eq!(kv.list_keys("a", "p/", Some(1)).await.unwrap(), ["p/1"]);
        assert_eq!(kv.delete("a", "q").await, Ok(true));
        assert_eq!(kv.delete("a", "q").await, Ok(false));
        assert!(matches!(kv.get("a", "").await, Err(KvError::Invalid(_))));
    }

    #[tokio::test]
    async fn an_expired_key_is_absent() {
        let kv = EmbeddedKv::in_memory();
        kv.set("a", "k", b"v".to_vec(), Some(Duration::from_millis(30)))
            .await
            .unwrap();
        assert!(kv.get("a", "k").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(kv.get("a", "k").await, Ok(None));
        assert!(kv.list_keys("a", "", None).await.unwrap().is_empty());
        assert_eq!(kv.increment("a", "k", 1).await, Ok(1));
    }
}
