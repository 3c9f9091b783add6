//! The version store: every handler version's bytes and metadata, the active
//! set and the route table, kept in a directory so a restart serves what was
//! last activated.
//!
//! ```text
//! STORE/state.json                      active version per handler, rollback history,
//!                                       the route table once replaced over the API
//! STORE/handlers/NAME/VERSION.wasm      the component exactly as uploaded
//! STORE/handlers/NAME/VERSION.json      its metadata (sha256, size, world, time, source)
//! ```
//!
//! Every file is written atomically: a temporary file in the same directory,
//! fsync, rename over the target, fsync the directory. A version is complete
//! once its `.json` exists (the `.wasm` is written first), and it is active
//! once `state.json` says so; a crash at any point leaves either the old or
//! the new state, never a mix. Leftovers of an interrupted write are removed
//! when the store is opened.
//!
//! Without a directory ([`VersionStore::in_memory`]) the same bookkeeping lives in
//! memory only: versions can still be listed, activated and rolled back, but
//! nothing survives a restart.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::registry::{World, sha256_hex};

/// The file holding the active set and the route table.
pub const STATE_FILE: &str = "state.json";
const FORMAT: u32 = 1;
const TMP_PREFIX: &str = ".tmp-";

/// A store problem: which file, and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("store {}: {message}", path.display())]
pub struct StoreError {
    pub path: PathBuf,
    pub message: String,
}

impl StoreError {
    fn io(path: &Path, what: &str, e: io::Error) -> Self {
        StoreError {
            path: path.to_owned(),
            message: format!("{what}: {e}"),
        }
    }
}

/// How a version came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The wasm file named in `waterspout.toml`, read at start.
    Manifest,
    /// Uploaded through the admin API.
    Upload,
    /// Picked up by `serve --watch` when the file changed.
    Watch,
    /// Deployed on another node of the cluster and fetched from Redis.
    Cluster,
}

/// What `state.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoreState {
    pub format: u32,
    #[serde(default)]
    pub handlers: BTreeMap<String, HandlerRecord>,
    /// Set once the route table was replaced over the admin API; from then on
    /// it wins over the manifest's routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteDoc>>,
}

/// One handler's entry in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandlerRecord {
    /// The version new requests get.
    pub active: u64,
    /// Earlier active versions, most recent last: where rollback returns to.
    #[serde(default)]
    pub previous: Vec<u64>,
    /// SHA-256 of the manifest's wasm file when last recorded. A different
    /// file at start is taken as a new deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
}

/// A version's metadata (`VERSION.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionMeta {
    pub handler: String,
    pub version: u64,
    pub sha256: String,
    pub size: u64,
    pub world: World,
    /// RFC 3339, UTC.
    pub uploaded_at: String,
    pub uploaded_at_unix_ms: u64,
    pub source: Source,
}

impl VersionMeta {
    pub fn uploaded_at_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.uploaded_at_unix_ms)
    }
}

/// A route as the admin API and `state.json` spell it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDoc {
    pub pattern: String,
    pub handler: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Passed to the handler's `initialize`; non-string values as JSON text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// Whether `name` may name a handler in the store (it becomes a directory).
pub fn valid_handler_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

/// The store; see the module docs for the layout.
pub struct VersionStore {
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    state: StoreState,
    /// Whether `state.json` existed when opened (or has been written since).
    has_state: bool,
    versions: BTreeMap<String, BTreeMap<u64, VersionMeta>>,
    next_version: HashMap<String, u64>,
    /// Version bytes, for a store without a directory.
    memory: HashMap<(String, u64), Arc<[u8]>>,
}

impl VersionStore {
    /// A store that keeps everything in memory (nothing survives a restart).
    pub fn in_memory() -> VersionStore {
        VersionStore {
            dir: None,
            inner: Mutex::new(Inner {
                state: StoreState {
                    format: FORMAT,
                    ..Default::default()
                },
                ..Default::default()
            }),
        }
    }

    /// Opens (creating if needed) the store in `dir`, removing what an
    /// interrupted write left behind. Blocking.
    pub fn open(dir: &Path) -> Result<VersionStore, StoreError> {
        let handlers_dir = dir.join("handlers");
        fs::create_dir_all(&handlers_dir)
            .map_err(|e| StoreError::io(dir, "cannot create the store directory", e))?;
        remove_temporaries(dir);

        let state_path = dir.join(STATE_FILE);
        let (state, has_state) = match fs::read(&state_path) {
            Ok(bytes) => {
                let state: StoreState = serde_json::from_slice(&bytes).map_err(|e| StoreError {
                    path: state_path.clone(),
                    message: format!(
                        "unreadable ({e}); it is written atomically, so this is damage from outside: \
                         move it away to start again from the manifest"
                    ),
                })?;
                if state.format != FORMAT {
                    return Err(StoreError {
                        path: state_path,
                        message: format!(
                            "format {} is not supported by this server (expects {FORMAT})",
                            state.format
                        ),
                    });
                }
                (state, true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (
                StoreState {
                    format: FORMAT,
                    ..Default::default()
                },
                false,
            ),
            Err(e) => return Err(StoreError::io(&state_path, "cannot read", e)),
        };

        let mut versions = BTreeMap::new();
        let mut next_version = HashMap::new();
        let entries =
            fs::read_dir(&handlers_dir).map_err(|e| StoreError::io(&handlers_dir, "cannot list", e))?;
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !valid_handler_name(&name) || !entry.path().is_dir() {
                continue;
            }
            remove_temporaries(&entry.path());
            let (metas, max) = scan_handler_dir(&entry.path(), &name);
            next_version.insert(name.clone(), max + 1);
            versions.insert(name, metas);
        }
        Ok(VersionStore {
            dir: Some(dir.to_owned()),
            inner: Mutex::new(Inner {
                state,
                has_state,
                versions,
                next_version,
                memory: HashMap::new(),
            }),
        })
    }

    /// The store's directory (`None` when in memory).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the current state.
    pub fn state(&self) -> StoreState {
        self.lock().state.clone()
    }

    /// Whether a state was saved before (by this or an earlier run).
    #[cfg(test)]
    fn has_state(&self) -> bool {
        self.lock().has_state
    }

    /// Every complete version of `handler`, oldest first.
    pub fn versions(&self, handler: &str) -> Vec<VersionMeta> {
        self.lock()
            .versions
            .get(handler)
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn meta(&self, handler: &str, version: u64) -> Option<VersionMeta> {
        self.lock().versions.get(handler)?.get(&version).cloned()
    }

    /// Saves `bytes` (whose SHA-256 is `sha256`) as the next version of
    /// `handler`, not activating it. Blocking (writes and fsyncs); callers
    /// serialize writes.
    pub fn record_version(
        &self,
        handler: &str,
        bytes: &[u8],
        sha256: &str,
        world: World,
        source: Source,
    ) -> Result<VersionMeta, StoreError> {
        self.record_version_as(handler, bytes, sha256, world, source, None)
    }

    /// [`VersionStore::record_version`], under the number `wanted` when this
    /// store has not used it yet (a cluster's nodes keep the numbers the
    /// deploying node gave), else the next one.
    pub fn record_version_as(
        &self,
        handler: &str,
        bytes: &[u8],
        sha256: &str,
        world: World,
        source: Source,
        wanted: Option<u64>,
    ) -> Result<VersionMeta, StoreError> {
        let version = {
            let mut inner = self.lock();
            let next = *inner.next_version.get(handler).unwrap_or(&1);
            let version = match wanted {
                Some(n) if n >= next => n,
                _ => next,
            };
            inner.next_version.insert(handler.to_owned(), version + 1);
            version
        };
        let now = SystemTime::now();
        let unix_ms = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let meta = VersionMeta {
            handler: handler.to_owned(),
            version,
            sha256: sha256.to_owned(),
            size: bytes.len() as u64,
            world,
            uploaded_at: rfc3339(now),
            uploaded_at_unix_ms: unix_ms,
            source,
        };
        match &self.dir {
            Some(dir) => {
                let handler_dir = dir.join("handlers").join(handler);
                fs::create_dir_all(&handler_dir)
                    .map_err(|e| StoreError::io(&handler_dir, "cannot create", e))?;
                // The bytes first: a version exists once its metadata does.
                let wasm = handler_dir.join(format!("{version}.wasm"));
                write_atomic(&wasm, bytes).map_err(|e| StoreError::io(&wasm, "cannot write", e))?;
                let json = handler_dir.join(format!("{version}.json"));
                let text = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
                write_atomic(&json, &text).map_err(|e| StoreError::io(&json, "cannot write", e))?;
            }
            None => {
                self.lock()
                    .memory
                    .insert((handler.to_owned(), version), Arc::from(bytes));
            }
        }
        self.lock()
            .versions
            .entry(handler.to_owned())
            .or_default()
            .insert(version, meta.clone());
        Ok(meta)
    }

    /// The bytes of a version, checked against its recorded SHA-256. Blocking.
    pub fn read_version(&self, handler: &str, version: u64) -> Result<Vec<u8>, StoreError> {
        let meta = self.meta(handler, version).ok_or_else(|| StoreError {
            path: self.version_path(handler, version, "json"),
            message: format!("handler {handler:?} has no version {version}"),
        })?;
        let bytes = match &self.dir {
            Some(_) => {
                let path = self.version_path(handler, version, "wasm");
                fs::read(&path).map_err(|e| StoreError::io(&path, "cannot read", e))?
            }
            None => self
                .lock()
                .memory
                .get(&(handler.to_owned(), version))
                .map(|b| b.to_vec())
                .unwrap_or_default(),
        };
        if sha256_hex(&bytes) != meta.sha256 {
            return Err(StoreError {
                path: self.version_path(handler, version, "wasm"),
                message: format!("content does not match its recorded sha256 {}", meta.sha256),
            });
        }
        Ok(bytes)
    }

    fn version_path(&self, handler: &str, version: u64, ext: &str) -> PathBuf {
        self.dir
            .as_deref()
            .unwrap_or(Path::new("(memory)"))
            .join("handlers")
            .join(handler)
            .join(format!("{version}.{ext}"))
    }

    /// Changes the state with `change` and saves it atomically; if `change`
    /// fails or the save fails, nothing changes. Blocking.
    pub fn update<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut StoreState) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut inner = self.lock();
        let mut state = inner.state.clone();
        let out = change(&mut state)?;
        if let Some(dir) = &self.dir {
            let path = dir.join(STATE_FILE);
            let text = serde_json::to_vec_pretty(&state).expect("state serializes");
            write_atomic(&path, &text).map_err(|e| StoreError::io(&path, "cannot write", e))?;
        }
        inner.state = state;
        inner.has_state = true;
        Ok(out)
    }

    /// Removes a version's files; the state must no longer refer to it. Blocking.
    pub fn forget_version(&self, handler: &str, version: u64) -> Result<(), StoreError> {
        {
            let mut inner = self.lock();
            if let Some(v) = inner.versions.get_mut(handler) {
                v.remove(&version);
            }
            inner.memory.remove(&(handler.to_owned(), version));
        }
        if self.dir.is_some() {
            // Metadata first: without it the version no longer exists.
            for ext in ["json", "wasm"] {
                let path = self.version_path(handler, version, ext);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io(&path, "cannot remove", e)),
                }
            }
        }
        Ok(())
    }

    /// Removes every version of a handler; the state must no longer refer to it.
    pub fn forget_handler(&self, handler: &str) -> Result<(), StoreError> {
        let versions: Vec<u64> = self
            .lock()
            .versions
            .get(handler)
            .map(|v| v.keys().copied().collect())
            .unwrap_or_default();
        for version in versions {
            self.forget_version(handler, version)?;
        }
        let mut inner = self.lock();
        inner.versions.remove(handler);
        if let Some(dir) = &self.dir {
            let _ = fs::remove_dir(dir.join("handlers").join(handler));
        }
        Ok(())
    }
}

/// Reads a handler directory's complete versions; removes incomplete ones.
/// Returns them and the highest version number seen.
fn scan_handler_dir(dir: &Path, name: &str) -> (BTreeMap<u64, VersionMeta>, u64) {
    let mut metas = BTreeMap::new();
    let mut max = 0;
    let mut wasm_files = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some((stem, ext)) = path
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.rsplit_once('.'))
        else {
            continue;
        };
        let Ok(version) = stem.parse::<u64>() else {
            continue;
        };
        max = max.max(version);
        match ext {
            "wasm" => wasm_files.push((version, path.clone())),
            "json" => {
                let meta = fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<VersionMeta>(&b).ok());
                let wasm_len = fs::metadata(path.with_extension("wasm")).map(|m| m.len()).ok();
                match meta {
                    Some(meta)
                        if meta.version == version && meta.handler == name && wasm_len == Some(meta.size) =>
                    {
                        metas.insert(version, meta);
                    }
                    _ => {
                        tracing::warn!(path = %path.display(), "store: removing an incomplete version");
                        let _ = fs::remove_file(&path);
                    }
                }
            }
            _ => {}
        }
    }
    for (version, path) in wasm_files {
        if !metas.contains_key(&version) {
            // Written, but its metadata never was: the upload did not finish.
            tracing::warn!(path = %path.display(), "store: removing an unfinished upload");
            let _ = fs::remove_file(&path);
        }
    }
    (metas, max)
}

fn remove_temporaries(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that a crash leaves either the old file or the
/// new one: temporary file in the same directory, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{}-{}-{}",
        path.file_name().and_then(|f| f.to_str()).unwrap_or("file"),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `2026-11-24T10:31:02Z`: RFC 3339 in UTC, to the second.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_602_662);
        assert_eq!(rfc3339(t), "2026-11-25T10:31:02Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn versions_and_state_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = VersionStore::open(dir.path()).unwrap();
        assert!(!store.has_state());
        let v1 = store
            .record_version(
                "hello",
                b"\0asm one",
                &sha256_hex(b"\0asm one"),
                World::Handler,
                Source::Manifest,
            )
            .unwrap();
        let v2 = store
            .record_version(
                "hello",
                b"\0asm two",
                &sha256_hex(b"\0asm two"),
                World::Handler,
                Source::Upload,
            )
            .unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        store
            .update(|s| {
                s.handlers.insert(
                    "hello".into(),
                    HandlerRecord {
                        active: 2,
                        previous: vec![1],
                        manifest_sha256: None,
                    },
                );
                Ok::<_, StoreError>(())
            })
            .unwrap();
        drop(store);

        let store = VersionStore::open(dir.path()).unwrap();
        assert!(store.has_state());
        assert_eq!(store.state().handlers["hello"].active, 2);
        assert_eq!(store.versions("hello").len(), 2);
        assert_eq!(store.read_version("hello", 1).unwrap(), b"\0asm one");
        let v3 = store
            .record_version(
                "hello",
                b"\0asm three",
                &sha256_hex(b"\0asm three"),
                World::Handler,
                Source::Upload,
            )
            .unwrap();
        assert_eq!(v3.version, 3);
    }

    #[test]
    fn interrupted_writes_are_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = VersionStore::open(dir.path()).unwrap();
        store
            .record_version(
                "h",
                b"\0asm ok",
                &sha256_hex(b"\0asm ok"),
                World::Handler,
                Source::Manifest,
            )
            .unwrap();
        drop(store);
        let hdir = dir.path().join("handlers/h");
        // A crash after the bytes but before the metadata, and mid temp-file.
        fs::write(hdir.join("2.wasm"), b"\0asm half").unwrap();
        fs::write(hdir.join(".tmp-2.json-1-1"), b"{").unwrap();
        fs::write(dir.path().join(".tmp-state.json-1-2"), b"{").unwrap();

        let store = VersionStore::open(dir.path()).unwrap();
        assert_eq!(store.versions("h").len(), 1);
        assert!(!hdir.join("2.wasm").exists());
        assert!(!hdir.join(".tmp-2.json-1-1").exists());
        assert!(!dir.path().join(".tmp-state.json-1-2").exists());
    }

    #[test]
    fn a_failed_change_changes_nothing() {
        let store = VersionStore::in_memory();
        let r: Result<(), StoreError> = store.update(|s| {
            s.routes = Some(vec![]);
            Err(StoreError {
                path: "x".into(),
                message: "refused".into(),
            })
        });
        assert!(r.is_err());
        assert!(store.state().routes.is_none());
        assert!(!store.has_state());
    }

    #[test]
    fn handler_names_are_safe_file_names() {
        assert!(valid_handler_name("hello-world_2.v1"));
        for bad in ["", ".", "..", ".hidden", "a/b", "a\\b", "é"] {
            assert!(!valid_handler_name(bad), "{bad:?}");
        }
    }
}
