//! Static files, served by the host without a guest, as Tornado's
//! `StaticFileHandler`: GET and HEAD, `ETag` (the content hash),
//! `Last-Modified`, `If-None-Match` / `If-Modified-Since` → 304,
//! `Accept-Ranges: bytes`, one `Range` → 206 (a range covering the whole file
//! → 200, one starting past the end → 416 with `Content-Range: bytes */size`,
//! a malformed or multiple one ignored), and ten years of caching for a
//! versioned URL (`?v=`). Paths are resolved by [`Statics::resolve`]: nothing
//! outside the root is ever read, and nothing is redirected.
//!
//! Hand-written over `http-range-header` (the syntax) and `httpdate`:
//! tower-http's `ServeDir` gives no `ETag`, answers a whole-file range with
//! 206, and follows symlinks out of its root.
//!
//! A file is opened once per request (by `openat2` when no symlink is on
//! its path: [`Statics::resolve`]) and `fstat`ed. A file whose content is
//! cached (up to 1 MiB, while unchanged) or of up to 64 KiB comes with its
//! hash from [`Statics::content`] and goes out as one frame with its length
//! known; another is read from that descriptor, 64 KiB as hyper asks.
//!
//! The file system calls (resolve, stat, open, read) run on the worker
//! thread, as Tornado's `StaticFileHandler` and nginx (without `aio
//! threads`) do theirs on their event loops: a hop to tokio's blocking pool
//! per call cost more than the calls on files in the page cache (scenario i
//! of BENCHMARKS.md: 74 µs of CPU per 1 KiB file with the hops). A file
//! system that blocks for long (a network mount) would stall the worker's
//! other connections meanwhile.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use crate::body::{Body, empty, error_page, full};
use crate::statics::{Refused, Statics, read_at};

/// Tornado's `CACHE_MAX_AGE`: ten years, for versioned URLs.
const CACHE_MAX_AGE: Duration = Duration::from_secs(86400 * 365 * 10);

/// Read size of a file body.
const CHUNK: usize = crate::statics::SMALL_FILE as usize;

/// Serves the static file `name` (what follows the prefix, as sent).
pub(super) async fn serve(
    statics: Arc<Statics>,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    name: &str,
) -> http::Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return error_page(StatusCode::METHOD_NOT_ALLOWED);
    }
    let found = match statics.resolve(name) {
        Ok(found) => found,
        Err(Refused::Forbidden) => return error_page(StatusCode::FORBIDDEN),
        Err(Refused::NotFound) => return error_page(StatusCode::NOT_FOUND),
    };
    let content = match statics.content(&found) {
        Ok(content) => content,
        // A small file shrank since `fstat`: nothing is sent yet.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return error_page(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Err(_) => return error_page(StatusCode::NOT_FOUND),
    };
    let size = found.metadata.len();
    let modified = found.metadata.modified().ok();
    let etag = format!("\"{}\"", content.hash);

    let mut response = http::Response::new(empty());
    let h = response.headers_mut();
    h.insert(header::SERVER, HeaderValue::from_static(crate::SERVER_NAME));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    if let Some(modified) = modified
        && let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified))
    {
        h.insert(header::LAST_MODIFIED, value);
    }
    // Tornado's get_cache_time: long caching only when the URL is versioned.
    let versioned = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).any(|(name, _)| name == "v");
    if versioned {
        let expires = SystemTime::now() + CACHE_MAX_AGE;
        h.insert(header::EXPIRES, date(expires));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("max-age={}", CACHE_MAX_AGE.as_secs())).expect("digits"),
        );
    }

    if not_modified(headers, &etag, modified) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }

    let content_type = mime_guess::from_path(&found.path).first_or_octet_stream();
    let range = match requested_range(headers, size) {
        Ok(range) => range,
        Err(Unsatisfiable) => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("digits"),
            );
            return response;
        }
    };
    let (start, end) = range.unwrap_or((0, size));
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type.as_ref()) {
        h.insert(header::CONTENT_TYPE, value);
    }
    if (start, end) != (0, size) {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1)).expect("digits"),
        );
    }
    let len = end - start;
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if (start, end) != (0, size) {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    if method == Method::HEAD || len == 0 {
        return response;
    }
    // A cached or small file's content came with its hash (read once for
    // both): sent whole, as one frame.
    if let Some(body) = content.body {
        *response.body_mut() = full(body.slice(start as usize..end as usize));
        return response;
    }
    // A body of one read is read now and sent whole: its length known to
    // hyper, so over HTTP/2 the one DATA frame ends the stream (a streamed
    // body costs an empty DATA frame more, and a poll per frame).
    if len <= CHUNK as u64 {
        return match read_at(&found.file, start, len as usize) {
            Ok(bytes) => {
                *response.body_mut() = full(bytes);
                response
            }
            // The file shrank since `fstat`: nothing is sent yet.
            Err(_) => error_page(StatusCode::INTERNAL_SERVER_ERROR),
        };
    }
    let chunks = Chunks {
        file: found.file,
        offset: start,
        left: len,
    };
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    *response.body_mut() = BodyExt::boxed_unsync(body);
    response
}

/// A file's body: up to [`CHUNK`] bytes read per frame, when hyper asks for
/// the next one (so no more is read than the connection takes); a read
/// error ends the body with it (hyper then drops the connection).
struct Chunks {
    file: File,
    offset: u64,
    left: u64,
}

impl Iterator for Chunks {
    type Item = io::Result<Frame<Bytes>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let want = CHUNK.min(usize::try_from(self.left).unwrap_or(CHUNK));
        let read = read_at(&self.file, self.offset, want);
        if read.is_err() {
            // The body ends with the error: nothing more is read.
            self.left = 0;
        } else {
            self.offset += want as u64;
            self.left -= want as u64;
        }
        Some(read.map(Frame::data))
    }
}

fn date(at: SystemTime) -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(at)).expect("an HTTP date is a valid header")
}

/// Tornado's `should_return_304`: `If-None-Match` decides when present
/// (`*`, or one of its tags, weak or not, equal to ours); else
/// `If-Modified-Since` at or after the file's mtime (in whole seconds).
fn not_modified(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> bool {
    if let Some(none_match) = headers.get(header::IF_NONE_MATCH) {
        let Ok(none_match) = none_match.to_str() else {
            return false;
        };
        let ours = etag.trim_start_matches("W/");
        return none_match.trim() == "*"
            || none_match
                .split(',')
                .map(|tag| tag.trim().trim_start_matches("W/"))
                .any(|tag| tag == ours);
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified) {
        (Some(since), Some(modified)) => {
            let secs = |t: SystemTime| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            };
            secs(modified) <= secs(since)
        }
        _ => false,
    }
}

/// A range that starts past the end of the file (→ 416).
struct Unsatisfiable;

/// The one byte range asked for, as `[start, end)` clamped to the file, as
/// Tornado reads it: no or a malformed header, or several ranges → `None`
/// (the whole file); a start at or past the end → [`Unsatisfiable`]; a
/// suffix longer than the file → all of it.
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    use http_range_header::{EndPosition, StartPosition};
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Ok(parsed) = http_range_header::parse_range_header(value) else {
        return Ok(None);
    };
    let [range] = parsed.ranges.as_slice() else {
        return Ok(None);
    };
    let start = match range.start {
        StartPosition::Index(start) => start,
        StartPosition::FromLast(suffix) => size.saturating_sub(suffix),
    };
    if start >= size {
        return Err(Unsatisfiable);
    }
    let end = match range.end {
        EndPosition::Index(last) => last.saturating_add(1).min(size),
        EndPosition::LastByte => size,
    };
    if end <= start {
        return Ok(None);
    }
    Ok(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &'static str, size: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static(value));
        requested_range(&headers, size).map_err(|_| ())
    }

    #[test]
    fn read_at_reads_the_range_whole_or_fails() {
        let mut file = tempfile::tempfile().unwrap();
        io::Write::write_all(&mut file, b"0123456789").unwrap();
        assert_eq!(read_at(&file, 0, 10).unwrap(), &b"0123456789"[..]);
        assert_eq!(read_at(&file, 3, 4).unwrap(), &b"3456"[..]);
        let short = read_at(&file, 5, 10).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        let mut chunks = Chunks {
            file,
            offset: 8,
            left: 5,
        };
        assert!(chunks.next().unwrap().is_err(), "a file shorter than its fstat");
        assert!(chunks.next().is_none(), "the body ends with its error");
    }

    #[test]
    fn ranges_as_tornado_reads_them() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 100))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 100))));
        assert_eq!(range("bytes=0-999", 100), Ok(Some((0, 100))));
        assert_eq!(range("bytes=-1000", 100), Ok(Some((0, 100))));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("bytes=x", 100), Ok(None));
        assert_eq!(range("items=0-1", 100), Ok(None));
    }
}
