//! The version store on disk: its files, their hashes, and whether it is whole.

use std::path::{Path, PathBuf};

use reqwest::Method;
use sha2::{Digest, Sha256};

use super::{ServerProcess, admin_call};

/// SHA-256 of `bytes` in lowercase hex, as the admin API lists a version's.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every file below `dir`, at any depth (none if it cannot be read).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The store of `server` (a [`version_app`](super::version_app)) is whole:
/// the active version of handler `version` is listed, every listed version's
/// bytes are there and match their hash, no temporary file is left. `what`
/// says which moment of the test failed.
pub async fn check_store(server: &ServerProcess, store: &Path, what: &str) {
    let (_, versions) = admin_call(server.admin(Method::GET, "/handlers/version/versions")).await;
    let active = versions["active_version"].as_u64().expect("an active version");
    let listed = versions["versions"].as_array().unwrap();
    assert!(
        listed.iter().any(|v| v["version"] == active),
        "{what}: {versions}"
    );
    for v in listed {
        let file = store.join(format!("handlers/version/{}.wasm", v["version"]));
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{what}: {}: {e}", file.display()));
        assert_eq!(v["sha256"].as_str().unwrap(), sha256_hex(&bytes), "{what}");
    }
    let leftovers: Vec<_> = files_under(store)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{what}: leftovers {leftovers:?}");
}
