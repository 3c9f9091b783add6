//! The app's key-value store: keys in namespaces, bytes as values, TTLs,
//! atomic [`increment`] and [`compare_and_swap`].
//!
//! A handler may use only the namespaces its manifest section grants
//! (`kv = ["chat", "sessions"]` under `[handler.NAME]`). The free functions
//! use the handler's first namespace; [`namespace`] picks another granted
//! one. A namespace not granted is a [`KvError::Denied`].
//!
//! ```no_run
//! use std::time::Duration;
//! use waterspout_sdk::kv;
//!
//! # fn run() -> Result<(), kv::KvError> {
//! kv::set("greeting", "hello")?;
//! assert_eq!(kv::get_string("greeting")?.as_deref(), Some("hello"));
//! let visits = kv::increment("visits", 1)?;
//! kv::set_with_ttl("session:ann", b"{}", Duration::from_secs(3600))?;
//! let won = kv::compare_and_swap("leader", None, "me")?; // only if absent
//! let users = kv::namespace("users").list_keys("ann", None)?;
//! # let _ = (visits, won, users); Ok(()) }
//! ```
//!
//! A [`KvError`] converts into a 500 [`HttpError`](crate::HttpError), so `?`
//! works inside a handler method.

use std::fmt;
use std::time::Duration;

use crate::bindings::raw_kv;

/// Why a kv call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The namespace is not granted to this handler (or none is).
    Denied(String),
    /// An empty key, a key over 1 KiB or a value over 4 MiB.
    Invalid(String),
    /// `increment` on a value that is not a decimal integer, or an overflow.
    NotANumber(String),
    /// The store failed (its file could not be written…).
    Backend(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::Denied(m) => write!(f, "kv denied: {m}"),
            KvError::Invalid(m) => write!(f, "kv invalid: {m}"),
            KvError::NotANumber(m) => write!(f, "kv not a number: {m}"),
            KvError::Backend(m) => write!(f, "kv backend: {m}"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<KvError> for crate::HttpError {
    fn from(e: KvError) -> Self {
        crate::HttpError::new(500).with_log_message(e.to_string())
    }
}

impl From<raw_kv::KvError> for KvError {
    fn from(e: raw_kv::KvError) -> Self {
        match e {
            raw_kv::KvError::Denied(m) => KvError::Denied(m),
            raw_kv::KvError::Invalid(m) => KvError::Invalid(m),
            raw_kv::KvError::NotANumber(m) => KvError::NotANumber(m),
            raw_kv::KvError::Backend(m) => KvError::Backend(m),
        }
    }
}

/// One granted namespace; [`namespace`] makes it.
#[derive(Debug, Clone, Copy)]
pub struct Namespace<'a> {
    name: &'a str,
}

/// A namespace the handler was granted by name (the free functions use its
/// first one).
pub fn namespace(name: &str) -> Namespace<'_> {
    Namespace { name }
}

const DEFAULT: Namespace<'static> = Namespace { name: "" };

fn millis(ttl: Duration) -> u64 {
    ttl.as_millis().min(u64::MAX as u128) as u64
}

impl Namespace<'_> {
    /// The value of `key` (`None`: absent or expired).
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(raw_kv::get(self.name, key)?)
    }

    /// The value of `key` as text (invalid UTF-8 is replaced).
    pub fn get_string(&self, key: &str) -> Result<Option<String>, KvError> {
        Ok(self.get(key)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stores `value` under `key`, without expiry.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
        Ok(raw_kv::set(self.name, key, value.as_ref(), None)?)
    }

    /// Stores `value` under `key`; it expires after `ttl`.
    pub fn set_with_ttl(&self, key: &str, value: impl AsRef<[u8]>, ttl: Duration) -> Result<(), KvError> {
        Ok(raw_kv::set(self.name, key, value.as_ref(), Some(millis(ttl)))?)
    }

    /// Removes `key`; true when it was there.
    pub fn delete(&self, key: &str) -> Result<bool, KvError> {
        Ok(raw_kv::delete(self.name, key)?)
    }

    /// Adds `delta` to the integer under `key` (absent counts as 0); the new value.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        Ok(raw_kv::increment(self.name, key, delta)?)
    }

    /// Sets `key` to `value` only if it currently holds `expected` (`None`:
    /// only if absent). True when it was set; atomic across requests.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<bool, KvError> {
        Ok(raw_kv::compare_and_swap(
            self.name,
            key,
            expected,
            value.as_ref(),
            None,
        )?)
    }

    /// [`Namespace::compare_and_swap`], the new value expiring after `ttl`.
    pub fn compare_and_swap_with_ttl(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<bool, KvError> {
        Ok(raw_kv::compare_and_swap(
            self.name,
            key,
            expected,
            value.as_ref(),
            Some(millis(ttl)),
        )?)
    }

    /// The keys starting with `prefix`, sorted, at most `limit` (`None`: all).
    pub fn list_keys(&self, prefix: &str, limit: Option<u32>) -> Result<Vec<String>, KvError> {
        Ok(raw_kv::list_keys(self.name, prefix, limit)?)
    }
}

/// [`Namespace::get`] in the handler's first namespace.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    DEFAULT.get(key)
}

/// [`Namespace::get_string`] in the handler's first namespace.
pub fn get_string(key: &str) -> Result<Option<String>, KvError> {
    DEFAULT.get_string(key)
}

/// [`Namespace::set`] in the handler's first namespace.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
    DEFAULT.set(key, value)
}

/// [`Namespace::set_with_ttl`] in the handler's first namespace.
pub fn set_with_ttl(key: &str, value: impl AsRef<[u8]>, ttl: Duration) -> Result<(), KvError> {
    DEFAULT.set_with_ttl(key, value, ttl)
}

/// [`Namespace::delete`] in the handler's first namespace.
pub fn delete(key: &str) -> Result<bool, KvError> {
    DEFAULT.delete(key)
}

/// [`Namespace::increment`] in the handler's first namespace.
pub fn increment(key: &str, delta: i64) -> Result<i64, KvError> {
    DEFAULT.increment(key, delta)
}

/// [`Namespace::compare_and_swap`] in the handler's first namespace.
pub fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    value: impl AsRef<[u8]>,
) -> Result<bool, KvError> {
    DEFAULT.compare_and_swap(key, expected, value)
}

/// [`Namespace::list_keys`] in the handler's first namespace.
pub fn list_keys(prefix: &str, limit: Option<u32>) -> Result<Vec<String>, KvError> {
    DEFAULT.list_keys(prefix, limit)
}
