//! Static files: the part both the server (which serves them) and the
//! capabilities (templates' `static_url`) need. Resolving a request path
//! safely under the app's `static_path`, and the cache behind Tornado's
//! `static_url(path)` (`/static/site.css?v=…`) and the `ETag`: each file's
//! content hash and, for a file of up to 1 MiB, its content.
//!
//! A cached entry is used while the file is the same: same device, inode,
//! length, mtime and ctime (the kernel sets ctime at every change and no
//! call can set it back). And it is kept only for a file whose ctime was
//! at least [`SETTLED`] in the past when it was read: the file-system
//! clock ticks coarsely (a few ms), so a file changed twice within one tick
//! keeps its ctime, and a read between the two would otherwise be served
//! for ever. A file changed less than a second ago is read (and hashed)
//! again at every request until it settles.
//!
//! Plain data and std only: this is the bottom layer.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
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

/// The largest file read in one piece at every request when its content
/// is not cached (a larger one is streamed in pieces of this size).
pub const SMALL_FILE: u64 = 64 << 10;

/// The largest file whose content is cached.
const CACHED_FILE: u64 = 1 << 20;

/// The most content bytes cached per static directory; beyond it files are
/// read at every request (their hashes are still cached).
const CACHED_BYTES: usize = 32 << 20;

/// How long ago a file must have changed for its hash or content to be
/// cached: well over the file-system clock's tick.
const SETTLED: Duration = Duration::from_secs(1);

/// A file found under the root: where it is, the file itself (open for
/// reading) and its metadata (as it was when opened).
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub file: File,
    pub metadata: Metadata,
}

/// An app's static directory (`static_path`) and URL prefix
/// (`static_url_prefix`), with the version cache.
#[derive(Debug)]
pub struct Statics {
    /// Canonical (symlinks resolved): every served file must lie under it.
    root: PathBuf,
    prefix: String,
    cache: Mutex<Cache>,
}

/// A file's content hash (hex SHA-512, as Tornado's `get_content_version`)
/// and, for a file of at most [`SMALL_FILE`] bytes or a cached one, its
/// whole content.
#[derive(Debug, Clone)]
pub struct Content {
    pub hash: Arc<str>,
    pub body: Option<Bytes>,
}

#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<PathBuf, (Identity, Content)>,
    /// Content bytes held by `entries`, and held for a moment by requests
    /// reading a file larger than [`SMALL_FILE`] to cache it.
    bytes: usize,
}

/// What tells one state of a file from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(metadata: &Metadata) -> Identity {
        Identity {
            dev: metadata.dev(),
            ino: metadata.ino(),
            len: metadata.len(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    /// Whether the file last changed at least [`SETTLED`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let (secs, nanos) = self.ctime;
        let Ok(secs) = u64::try_from(secs) else {
            return false;
        };
        let changed = UNIX_EPOCH + Duration::new(secs, u32::try_from(nanos).unwrap_or(0));
        now.duration_since(changed).is_ok_and(|ago| ago >= SETTLED)
    }
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
            cache: Mutex::new(Cache::default()),
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
        // The root is canonical, so a path under it with no symlink on the
        // way is its own canonical path: one `openat2` decides. Anything
        // else (a symlink, an error other than a missing file, no
        // `openat2`) takes the full walk, which decides as it always has.
        let (path, file) = match open_without_symlinks(&joined) {
            Some(Ok(file)) => (joined, file),
            Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => return Err(Refused::NotFound),
            _ => {
                let path = match joined.canonicalize() {
                    Ok(path) => path,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Refused::NotFound),
                    Err(_) => return Err(Refused::Forbidden),
                };
                // A symlink may point anywhere: only what ends up under the root is served.
                if !path.starts_with(&self.root) {
                    return Err(Refused::Forbidden);
                }
                // What cannot be opened is refused as before `openat2`:
                // 403 if it is no regular file, 404 otherwise.
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(OPEN_FLAGS.bits() as i32)
                    .open(&path)
                    .map_err(|_| match std::fs::metadata(&path) {
                        Ok(metadata) if !metadata.is_file() => Refused::Forbidden,
                        _ => Refused::NotFound,
                    })?;
                (path, file)
            }
        };
        let metadata = file.metadata().map_err(|_| Refused::NotFound)?;
        if !metadata.is_file() {
            return Err(Refused::Forbidden);
        }
        Ok(Found { path, file, metadata })
    }

    /// The content hash of a found file (hex SHA-512, as Tornado's
    /// `get_content_version`). Reads the file unless cached: blocking.
    pub fn version(&self, found: &Found) -> io::Result<Arc<str>> {
        self.content(found).map(|content| content.hash)
    }

    /// The content hash of a found file and, if it is small or cached, its
    /// content: from the cache while the file is unchanged, else read (from
    /// its descriptor, at offsets: the file's position stays). Blocking.
    ///
    /// A file of up to [`CACHED_FILE`] bytes is cached whole once it has
    /// settled, while the directory's [`CACHED_BYTES`] allow. One larger
    /// than [`SMALL_FILE`] is read whole only to be cached, its bytes
    /// counted against that budget from before the read: so many requests
    /// missing it at once hold at most the budget between them, and the
    /// rest get only the hash (their bodies are streamed).
    pub fn content(&self, found: &Found) -> io::Result<Content> {
        let identity = Identity::of(&found.metadata);
        let settled = identity.settled(SystemTime::now());
        let reserved = {
            let mut cache = self.cache.lock().expect("static cache lock");
            if let Some((cached, content)) = cache.entries.get(&found.path)
                && *cached == identity
            {
                return Ok(content.clone());
            }
            let len = identity.len as usize;
            let large = identity.len > SMALL_FILE && identity.len <= CACHED_FILE;
            if large && settled && cache.bytes + len <= CACHED_BYTES {
                cache.bytes += len;
                len
            } else {
                0
            }
        };
        let read = if identity.len <= SMALL_FILE || reserved > 0 {
            read_at(&found.file, 0, identity.len as usize).map(|body| Content {
                hash: hex::encode(Sha512::digest(&body)).into(),
                body: Some(body),
            })
        } else {
            hash_file(&found.file).map(|hash| Content { hash, body: None })
        };
        let mut cache = self.cache.lock().expect("static cache lock");
        let cache = &mut *cache;
        cache.bytes -= reserved;
        let content = read?;
        // What was kept of an earlier state goes, whether or not this one
        // is kept.
        if let Some((_, old)) = cache.entries.remove(&found.path) {
            cache.bytes -= old.body.map_or(0, |body| body.len());
        }
        if settled {
            let mut kept = content.clone();
            let len = kept.body.as_ref().map_or(0, Bytes::len);
            if cache.bytes + len > CACHED_BYTES {
                kept.body = None;
            }
            cache.bytes += kept.body.as_ref().map_or(0, Bytes::len);
            cache.entries.insert(found.path.clone(), (identity, kept));
        }
        Ok(content)
    }
}

/// `len` bytes of `file` from `offset`, read (`pread`) into a buffer that
/// is not zeroed first; the file ending before them is an error.
pub fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank")),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The capacity may exceed `len`, and so may a read.
    buf.truncate(len);
    Ok(Bytes::from(buf))
}

/// The hex SHA-512 of a whole file, read at offsets.
fn hash_file(file: &File) -> io::Result<Arc<str>> {
    let mut hasher = Sha512::new();
    let mut buf = vec![0; SMALL_FILE as usize];
    let mut offset = 0;
    loop {
        match file.read_at(&mut buf, offset) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex::encode(hasher.finalize()).into())
}

/// How a static file is opened besides read-only and close-on-exec: a FIFO
/// or a terminal under the root must neither block the worker nor become
/// its controlling terminal before `fstat` refuses it.
const OPEN_FLAGS: rustix::fs::OFlags = rustix::fs::OFlags::NONBLOCK.union(rustix::fs::OFlags::NOCTTY);

/// `path` opened for reading if no component of it is a symlink (Linux's
/// `openat2` with `RESOLVE_NO_SYMLINKS`: one system call, where the full
/// walk is a `readlink` per component and an `open`); `None` where
/// `openat2` does not exist.
#[cfg(target_os = "linux")]
fn open_without_symlinks(path: &Path) -> Option<io::Result<File>> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OPEN_FLAGS;
    match rustix::fs::openat2(
        rustix::fs::CWD,
        path,
        flags,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    ) {
        Ok(fd) => Some(Ok(File::from(fd))),
        // Kernels before 5.6, and sandboxes that filter the call.
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => None,
        Err(e) => Some(Err(e.into())),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_without_symlinks(_path: &Path) -> Option<io::Result<File>> {
    None
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
    fn symlinks_are_followed_only_while_they_stay_under_the_root() {
        let (dir, statics) = statics();
        let root = dir.path().join("static");
        std::os::unix::fs::symlink("css/site.css", root.join("relative.css")).unwrap();
        std::os::unix::fs::symlink(root.join("css/site.css"), root.join("absolute.css")).unwrap();
        std::os::unix::fs::symlink("css", root.join("styles")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", root.join("escape.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("abs-escape.txt")).unwrap();
        std::os::unix::fs::symlink("missing.css", root.join("dangling.css")).unwrap();
        let canonical = root.canonicalize().unwrap().join("css/site.css");
        for inside in ["relative.css", "absolute.css", "styles/site.css", "css/site.css"] {
            let found = statics
                .resolve(inside)
                .unwrap_or_else(|e| panic!("{inside}: {e:?}"));
            assert_eq!(found.path, canonical, "{inside}");
            assert_eq!(found.metadata.len(), 6, "{inside}");
        }
        assert_eq!(statics.resolve("escape.txt").unwrap_err(), Refused::Forbidden);
        assert_eq!(statics.resolve("abs-escape.txt").unwrap_err(), Refused::Forbidden);
        assert_eq!(statics.resolve("dangling.css").unwrap_err(), Refused::NotFound);
        assert_eq!(statics.resolve("css/site.css/x").unwrap_err(), Refused::Forbidden);
        assert_eq!(
            statics.resolve("styles").unwrap_err(),
            Refused::Forbidden,
            "a directory"
        );
    }

    #[test]
    fn a_fifo_under_the_root_is_refused_without_blocking() {
        let (dir, statics) = statics();
        let fifo = dir.path().join("static/pipe.css");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // Opened without O_NONBLOCK, a FIFO with no writer blocks for ever.
        assert_eq!(statics.resolve("pipe.css").unwrap_err(), Refused::Forbidden);
    }

    #[test]
    fn the_version_is_read_without_moving_the_file() {
        use std::io::Read;
        let (_dir, statics) = statics();
        let mut found = statics.resolve("css/site.css").unwrap();
        statics.version(&found).unwrap();
        let mut body = String::new();
        found.file.read_to_string(&mut body).unwrap();
        assert_eq!(body, "body{}");
    }

    /// Rewrites `path` with `text` of the same length and gives it back
    /// its mtime: only ctime tells the two contents apart.
    fn rewrite_keeping_mtime(path: &Path, text: &str) {
        let modified = std::fs::metadata(path).unwrap().modified().unwrap();
        assert_eq!(std::fs::metadata(path).unwrap().len(), text.len() as u64);
        std::fs::write(path, text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), modified);
    }

    #[test]
    fn a_file_rewritten_with_its_length_and_mtime_gets_a_new_version() {
        let (dir, statics) = statics();
        let path = dir.path().join("static/css/site.css");
        let first = statics
            .version(&statics.resolve("css/site.css").unwrap())
            .unwrap();
        rewrite_keeping_mtime(&path, "BODY{}");
        let found = statics.resolve("css/site.css").unwrap();
        let content = statics.content(&found).unwrap();
        assert_ne!(content.hash, first, "the version of the old content");
        assert_eq!(content.body.as_deref(), Some(&b"BODY{}"[..]));
    }

    #[test]
    fn a_settled_file_is_cached_until_it_changes() {
        let (dir, statics) = statics();
        let path = dir.path().join("static/css/site.css");
        let cached = |statics: &Statics| {
            let cache = statics.cache.lock().unwrap();
            cache
                .entries
                .values()
                .filter_map(|(_, c)| c.body.clone())
                .collect::<Vec<_>>()
        };
        // Just written: read at every request, nothing kept.
        statics
            .content(&statics.resolve("css/site.css").unwrap())
            .unwrap();
        assert!(cached(&statics).is_empty());
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        let first = statics
            .content(&statics.resolve("css/site.css").unwrap())
            .unwrap();
        assert_eq!(cached(&statics), vec![Bytes::from_static(b"body{}")]);
        // Served from the cache: the descriptor is not read (it is at its end).
        let mut found = statics.resolve("css/site.css").unwrap();
        std::io::Read::read_to_end(&mut found.file, &mut Vec::new()).unwrap();
        assert_eq!(statics.content(&found).unwrap().hash, first.hash);

        rewrite_keeping_mtime(&path, "BODY{}");
        let second = statics
            .content(&statics.resolve("css/site.css").unwrap())
            .unwrap();
        assert_ne!(second.hash, first.hash);
        assert_eq!(second.body.as_deref(), Some(&b"BODY{}"[..]));
        assert!(cached(&statics).is_empty(), "a file changed just now is not kept");
    }

    #[test]
    fn the_cached_content_is_bounded_and_past_it_files_keep_only_their_hash() {
        let (dir, statics) = statics();
        let root = dir.path().join("static");
        let small = vec![b'x'; SMALL_FILE as usize];
        let count = CACHED_BYTES / small.len() + 2;
        for i in 0..count {
            std::fs::write(root.join(format!("{i}.bin")), &small).unwrap();
        }
        std::fs::write(root.join("big.bin"), vec![b'y'; SMALL_FILE as usize + 1]).unwrap();
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        for i in 0..count {
            let content = statics
                .content(&statics.resolve(&format!("{i}.bin")).unwrap())
                .unwrap();
            assert_eq!(content.body.as_deref(), Some(&small[..]), "{i}.bin");
        }
        let big = statics.content(&statics.resolve("big.bin").unwrap()).unwrap();
        assert!(big.body.is_none());
        assert_eq!(
            &*big.hash,
            hex::encode(Sha512::digest(vec![b'y'; SMALL_FILE as usize + 1]))
        );
        let cache = statics.cache.lock().unwrap();
        assert_eq!(cache.entries.len(), count + 1, "every hash is kept");
        let held: usize = cache
            .entries
            .values()
            .filter_map(|(_, c)| c.body.as_ref())
            .map(Bytes::len)
            .sum();
        assert_eq!(held, cache.bytes);
        assert!(
            held <= CACHED_BYTES && held > CACHED_BYTES - small.len(),
            "{held}"
        );
    }

    #[test]
    fn a_settled_file_of_up_to_a_mib_is_cached_whole_and_a_larger_one_only_hashed() {
        let (dir, statics) = statics();
        let root = dir.path().join("static");
        let body = |len: u64, seed: u8| -> Vec<u8> { (0..len).map(|i| (i % 251) as u8 ^ seed).collect() };
        std::fs::write(root.join("large.bin"), body(CACHED_FILE, 1)).unwrap();
        std::fs::write(root.join("larger.bin"), body(CACHED_FILE + 1, 2)).unwrap();
        // Changed just now: only hashed, its body to be streamed (a request
        // does not read a large file whole unless it is to be kept).
        let fresh = statics.content(&statics.resolve("large.bin").unwrap()).unwrap();
        assert!(fresh.body.is_none());
        assert_eq!(statics.cache.lock().unwrap().bytes, 0);

        std::thread::sleep(SETTLED + Duration::from_millis(100));
        let first = statics.content(&statics.resolve("large.bin").unwrap()).unwrap();
        assert_eq!(first.hash, fresh.hash);
        assert!(first.body.as_deref() == Some(&body(CACHED_FILE, 1)[..]));
        assert_eq!(statics.cache.lock().unwrap().bytes, CACHED_FILE as usize);
        // From the cache: the descriptor is at its end and is not read.
        let mut found = statics.resolve("large.bin").unwrap();
        std::io::Read::read_to_end(&mut found.file, &mut Vec::new()).unwrap();
        let again = statics.content(&found).unwrap();
        assert!(again.body == first.body);

        let larger = statics.content(&statics.resolve("larger.bin").unwrap()).unwrap();
        assert!(larger.body.is_none());
        assert_eq!(
            &*larger.hash,
            hex::encode(Sha512::digest(body(CACHED_FILE + 1, 2)))
        );
        assert_eq!(statics.cache.lock().unwrap().bytes, CACHED_FILE as usize);
    }

    #[test]
    fn a_large_file_that_shrank_before_its_read_is_an_error_and_holds_nothing() {
        let (dir, statics) = statics();
        let path = dir.path().join("static/large.bin");
        std::fs::write(&path, vec![b'z'; CACHED_FILE as usize]).unwrap();
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        // Found (and `fstat`ed) at its full length, then cut short.
        let found = statics.resolve("large.bin").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(10)
            .unwrap();
        let err = statics.content(&found).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let cache = statics.cache.lock().unwrap();
        assert_eq!(cache.bytes, 0, "the bytes set aside for the read are given back");
        assert!(cache.entries.is_empty());
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
