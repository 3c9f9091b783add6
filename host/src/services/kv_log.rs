//! The embedded kv's file: an append-only log of checksummed records,
//! compacted by rewriting it atomically.
//!
//! `kv/data.log` in the app's store directory starts with [`MAGIC`]; then
//! one frame per change: payload length (u32 LE), CRC-32 of the payload
//! (u32 LE), the payload ([`Record`] in postcard). Every change is written
//! (one `write` call) before it is applied in memory and before the guest
//! hears it succeeded, so a process crash (kill -9) loses nothing a guest
//! was told was stored; the OS has it. The log is not fsynced per write: an
//! OS crash or power loss may lose the last writes, never the file.
//!
//! On open, frames are read until the first incomplete or corrupt one; the
//! file is cut there (a torn last write from a crash) and the loss logged.
//! A failed write is cut off at once, so later frames never follow garbage.
//!
//! Compaction, when the log has grown to twice its size after the last one
//! (and past 1 MiB): every live entry is written to `data.log.tmp`, fsynced,
//! renamed over `data.log`, and the directory fsynced. A crash leaves either
//! the old log or the new one; a leftover `.tmp` is removed on open.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::kv::{Data, Entry};

/// The file's first bytes: what it is and the format's version.
const MAGIC: &[u8; 8] = b"WSKV\x01\n\0\0";
const FILE: &str = "data.log";
const TMP: &str = "data.log.tmp";
/// Compaction does not start below this log size.
const MIN_COMPACT: u64 = 1 << 20;
/// A frame longer than this is corruption (values are at most 4 MiB).
const MAX_FRAME: u32 = 8 << 20;

/// One change, as logged.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Record {
    Set {
        ns: String,
        key: String,
        value: Vec<u8>,
        expires_at: Option<u64>,
    },
    Delete {
        ns: String,
        key: String,
    },
}

pub(super) struct KvLog {
    dir: PathBuf,
    file: File,
    len: u64,
    /// The log's size after the last compaction (or load).
    base: u64,
}

impl KvLog {
    /// Opens (creating) the log in `dir` and reads it back.
    pub(super) fn open(dir: &Path, now: u64) -> io::Result<(KvLog, Data)> {
        fs::create_dir_all(dir)?;
        let _ = fs::remove_file(dir.join(TMP));
        let path = dir.join(FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut data = Data::new();
        let len = if bytes.is_empty() {
            file.write_all(MAGIC)?;
            file.sync_all()?;
            sync_dir(dir)?;
            MAGIC.len() as u64
        } else {
            if !bytes.starts_with(MAGIC) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a Waterspout kv log", path.display()),
                ));
            }
            let good = replay(&bytes, &mut data, now);
            if good < bytes.len() {
                tracing::warn!(
                    file = %path.display(),
                    "the kv log ends in {} bytes of an incomplete or corrupt record \
                     (a write cut short by a crash); cutting them off",
                    bytes.len() - good
                );
                file.set_len(good as u64)?;
                file.sync_all()?;
            }
            good as u64
        };
        file.seek(SeekFrom::Start(len))?;
        let log = KvLog {
            dir: dir.to_owned(),
            file,
            len,
            base: len,
        };
        Ok((log, data))
    }

    /// Appends one record in a single write; on failure the file is cut
    /// back so the log stays readable.
    pub(super) fn append(&mut self, record: &Record) -> io::Result<()> {
        let frame = frame(record)?;
        if let Err(e) = self.file.write_all(&frame) {
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(e);
        }
        self.len += frame.len() as u64;
        Ok(())
    }

    pub(super) fn wants_compaction(&self) -> bool {
        self.len > MIN_COMPACT && self.len > self.base.saturating_mul(2)
    }

    /// Rewrites the log with only the live entries of `data`, atomically.
    pub(super) fn compact(&mut self, data: &Data, now: u64) -> io::Result<()> {
        let tmp = self.dir.join(TMP);
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        out.write_all(MAGIC)?;
        let mut len = MAGIC.len() as u64;
        for (ns, keys) in data {
            for (key, entry) in keys {
                if entry.expires_at.is_some_and(|t| t <= now) {
                    continue;
                }
                let frame = frame(&Record::Set {
                    ns: ns.clone(),
                    key: key.clone(),
                    value: entry.value.clone(),
                    expires_at: entry.expires_at,
                })?;
                out.write_all(&frame)?;
                len += frame.len() as u64;
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        let path = self.dir.join(FILE);
        fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
        file.seek(SeekFrom::Start(len))?;
        self.file = file;
        self.len = len;
        self.base = len;
        Ok(())
    }
}

impl Drop for KvLog {
    fn drop(&mut self) {
        let _ = self.file.sync_data();
    }
}

fn frame(record: &Record) -> io::Result<Vec<u8>> {
    let payload = postcard::to_allocvec(record).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Applies every good frame of `bytes` to `data`; returns where the good
/// frames end.
fn replay(bytes: &[u8], data: &mut Data, now: u64) -> usize {
    let mut at = MAGIC.len();
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        if len > MAX_FRAME {
            break;
        }
        let Some(payload) = bytes.get(at + 8..at + 8 + len as usize) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(record) = postcard::from_bytes::<Record>(payload) else {
            break;
        };
        match record {
            Record::Set {
                ns,
                key,
                value,
                expires_at,
            } => {
                let keys = data.entry(ns).or_default();
                if expires_at.is_some_and(|t| t <= now) {
                    keys.remove(&key);
                } else {
                    keys.insert(key, Entry { value, expires_at });
                }
            }
            Record::Delete { ns, key } => {
                if let Some(keys) = data.get_mut(&ns) {
                    keys.remove(&key);
                }
            }
        }
        at += 8 + len as usize;
    }
    data.retain(|_, keys| !keys.is_empty());
    at
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::kv::{EmbeddedKv, Kv};

    #[tokio::test]
    async fn survives_reopen_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = EmbeddedKv::persistent(dir.path()).unwrap();
            kv.set("a", "k", b"one".to_vec(), None).await.unwrap();
            kv.set("a", "gone", b"x".to_vec(), None).await.unwrap();
            kv.delete("a", "gone").await.unwrap();
            kv.increment("b", "n", 41).await.unwrap();
        }
        // A crash in the middle of a write: half a frame at the end.
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let kv = EmbeddedKv::persistent(dir.path()).unwrap();
        assert_eq!(kv.get("a", "k").await.unwrap(), Some(b"one".to_vec()));
        assert_eq!(kv.get("a", "gone").await.unwrap(), None);
        assert_eq!(kv.increment("b", "n", 1).await.unwrap(), 42);
        drop(kv);
        let kv = EmbeddedKv::persistent(dir.path()).unwrap();
        assert_eq!(kv.increment("b", "n", 1).await.unwrap(), 43);
    }

    #[tokio::test]
    async fn compaction_keeps_the_live_entries() {
        let dir = tempfile::tempdir().unwrap();
        let value = vec![7u8; 64 << 10];
        {
            let kv = EmbeddedKv::persistent(dir.path()).unwrap();
            for i in 0..100 {
                kv.set("a", &format!("k{}", i % 3), value.clone(), None)
                    .await
                    .unwrap();
            }
        }
        let size = fs::metadata(dir.path().join(FILE)).unwrap().len();
        assert!(
            size < 2 * MIN_COMPACT + 200_000,
            "log of {size} bytes was not compacted"
        );
        let kv = EmbeddedKv::persistent(dir.path()).unwrap();
        assert_eq!(kv.list_keys("a", "", None).await.unwrap(), ["k0", "k1", "k2"]);
        assert_eq!(kv.get("a", "k1").await.unwrap(), Some(value));
    }

    #[test]
    fn a_file_that_is_not_a_log_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), b"something else").unwrap();
        assert!(EmbeddedKv::persistent(dir.path()).is_err());
        assert_eq!(fs::read(dir.path().join(FILE)).unwrap(), b"something else");
    }
}
