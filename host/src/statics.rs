//! Static files: the part both the server (which serves them) and the
//! capabilities (templates' `static_url`) need. Resolving a request path
//! safely under the app's `static_path`, and the content-hash version cache
//! behind Tornado's `static_url(path)` (`/static/site.css?v=…`).
//!
//! Plain data and std only: this is the bottom layer.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha512};

/// Tornado's `static_url_prefix` default.
pub const DEFAULT_PREFIX: &str = "/static/";

/// The files Tornado also serves from `static_path` at the root of the site.
pub const ROOT_FILES: [&str; 2] = ["favicon.ico", "robots.txt"];

/// Why a static path was refused: Tornado's 403 (outside the root, not a
/// file) or 404 (no such file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The path would leave the root, names a directory, or is malformed
    /// (`..`, a backslash, NUL): 403.
    Forbidden,
    /// No such file under the root: 404.
    NotFound,
}

/// A file found under the root: where it is and its metadata (as it was when
/// resolved).
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub metadata: Metadata,
}

/// An app's static directory (`static_path`) and URL prefix
/// (`static_url_prefix`), with the version cache.
#[derive(Debug)]
pub struct Statics {
    /// Canonical (symlinks resolved): every served file must lie under it.
    root: PathBuf,
    prefix: String,
    /// Content hash per file, kept while the file's mtime and length stay.
    versions: Mutex<HashMap<PathBuf, Version>>,
}

#[derive(Debug, Clone)]
struct Version {
    modified: Option<SystemTime>,
    len: u64,
    hash: Arc<str>,
}

impl Statics {
    /// The static directory `root` (must exist) served under `prefix`
    /// (which must start and end with `/`).
    pub fn open(root: &Path, prefix: &str) -> io::Result<Statics> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Statics {
            root,
            prefix: prefix.to_owned(),
            versions: Mutex::new(HashMap::new()),
        })
    }

    /// The canonical static directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The URL prefix, e.g. `/static/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The part of a request path that names a static file: what follows
    /// the prefix, or `favicon.ico` / `robots.txt` at the root (as Tornado
    /// routes them). `None` when the path is not a static one.
    pub fn match_path<'a>(&self, path: &'a str) -> Option<&'a str> {
        if let Some(rest) = path.strip_prefix(self.prefix.as_str()) {
            return Some(rest);
        }
        let name = path.strip_prefix('/')?;
        ROOT_FILES.contains(&name).then_some(name)
    }

    /// Tornado's `static_url(path)`: the prefix, the path, and `?v=` with
    /// the file's content hash, so the URL changes whenever the file does
    /// and may be cached for long. A file that cannot be read gets its URL
    /// without a version (Tornado logs it, as here).
    ///
    /// ```ignore
    /// statics.static_url("css/site.css") // "/static/css/site.css?v=9f86d0…"
    /// ```
    pub fn static_url(&self, path: &str) -> String {
        let url = format!("{}{}", self.prefix, path.trim_start_matches('/'));
        let version = self
            .resolve_decoded(path.trim_start_matches('/'))
            .map_err(|refused| io::Error::other(format!("{refused:?}")))
            .and_then(|found| self.version(&found));
        match version {
            Ok(hash) => format!("{url}?v={hash}"),
            Err(e) => {
                tracing::error!("could not open static file {path:?}: {e}");
                url
            }
        }
    }

    /// The file a request path names, `url_path` being what follows the
    /// prefix, still percent-encoded as sent. It is decoded once; then every
    /// segment must be a plain name: no `..`, `.` or empty segment (doubled
    /// slashes, a leading slash), no backslash, NUL or control character, and
    /// valid UTF-8 (an overlong encoding is not). The file, its symlinks
    /// resolved, must lie under the root and be a regular file. Blocking
    /// (file system calls).
    pub fn resolve(&self, url_path: &str) -> Result<Found, Refused> {
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(url_path).collect();
        // Not UTF-8 (an overlong `%c0%ae` among others): no file is named so.
        let decoded = String::from_utf8(bytes).map_err(|_| Refused::NotFound)?;
        self.resolve_decoded(&decoded)
    }

    /// [`resolve`](Self::resolve) for a path already decoded (templates').
    pub fn resolve_decoded(&self, path: &str) -> Result<Found, Refused> {
        let mut relative = PathBuf::new();
        for segment in path.split('/') {
            let plain = !segment.is_empty()
                && segment != "."
                && segment != ".."
                && !segment.chars().any(|c| c == '\\' || c.is_control());
            if !plain {
                return Err(Refused::Forbidden);
            }
            relative.push(segment);
        }
        // `push` of a plain name never leaves the root; check anyway.
        if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(Refused::Forbidden);
        }
        let joined = self.root.join(&relative);
        let path = match joined.canonicalize() {
            Ok(path) => path,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Refused::NotFound),
            Err(_) => return Err(Refused::Forbidden),
        };
        // A symlink may point anywhere: only what ends up under the root is served.
        if !path.starts_with(&self.root) {
            return Err(Refused::Forbidden);
        }
        let metadata = std::fs::metadata(&path).map_err(|_| Refused::NotFound)?;
        if !metadata.is_file() {
            return Err(Refused::Forbidden);
        }
        Ok(Found { path, metadata })
    }

    /// The content hash of a found file (hex SHA-512, as Tornado's
    /// `get_content_version`), cached until its mtime or length changes.
    /// Reads the file on a miss: blocking.
    pub fn version(&self, found: &Found) -> io::Result<Arc<str>> {
        let modified = found.metadata.modified().ok();
        let len = found.metadata.len();
        if let Some(v) = self.versions.lock().expect("versions lock").get(&found.path)
            && v.modified == modified
            && v.len == len
        {
            return Ok(v.hash.clone());
        }
        let mut file = std::fs::File::open(&found.path)?;
        let mut hasher = Sha512::new();
        io::copy(&mut file, &mut hasher)?;
        let hash: Arc<str> = hex::encode(hasher.finalize()).into();
        self.versions.lock().expect("versions lock").insert(
            found.path.clone(),
            Version {
                modified,
                len,
                hash: hash.clone(),
            },
        );
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statics() -> (tempfile::TempDir, Statics) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("static")).unwrap();
        std::fs::create_dir(dir.path().join("static/css")).unwrap();
        std::fs::write(dir.path().join("static/css/site.css"), "body{}").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        let statics = Statics::open(&dir.path().join("static"), DEFAULT_PREFIX).unwrap();
        (dir, statics)
    }

    #[test]
    fn resolves_files_under_the_root_only() {
        let (_dir, statics) = statics();
        assert!(statics.resolve("css/site.css").is_ok());
        assert!(statics.resolve("css%2fsite.css").is_ok());
        for bad in [
            "../secret.txt",
            "css/../../secret.txt",
            "%2e%2e/secret.txt",
            "..%2fsecret.txt",
            "css/..%5c..%5csecret.txt",
            "/secret.txt",
            "css//site.css",
            "./css/site.css",
            "css/site.css%00",
            "css",
        ] {
            assert_eq!(statics.resolve(bad).unwrap_err(), Refused::Forbidden, "{bad}");
        }
        assert_eq!(
            statics.resolve("%c0%ae%c0%ae/secret.txt").unwrap_err(),
            Refused::NotFound
        );
        assert_eq!(
            statics.resolve("%252e%252e/secret.txt").unwrap_err(),
            Refused::NotFound
        );
        assert_eq!(statics.resolve("nope.css").unwrap_err(), Refused::NotFound);
    }

    #[test]
    fn static_url_has_a_version_that_follows_the_content() {
        let (dir, statics) = statics();
        let first = statics.static_url("css/site.css");
        assert!(first.starts_with("/static/css/site.css?v="), "{first}");
        assert_eq!(first.len(), "/static/css/site.css?v=".len() + 128);
        assert_eq!(statics.static_url("css/site.css"), first);
        std::fs::write(dir.path().join("static/css/site.css"), "body{color:red}").unwrap();
        assert_ne!(statics.static_url("css/site.css"), first);
        assert_eq!(statics.static_url("missing.css"), "/static/missing.css");
    }

    #[test]
    fn root_files_and_prefix_match() {
        let (_dir, statics) = statics();
        assert_eq!(statics.match_path("/static/a/b.css"), Some("a/b.css"));
        assert_eq!(statics.match_path("/favicon.ico"), Some("favicon.ico"));
        assert_eq!(statics.match_path("/robots.txt"), Some("robots.txt"));
        assert_eq!(statics.match_path("/other"), None);
    }
}
