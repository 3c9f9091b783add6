//! Tornado's `compress_response` and `decompress_request`, for guest and
//! static responses alike.
//!
//! Responses: tower-http's `Compression` (async-compression underneath),
//! gzip or brotli as the request's `Accept-Encoding` prefers, streamed (a
//! guest's flush reaches the client as soon as it is compressed). As
//! Tornado's `GZipContentEncoding`: only `text/*` and its `CONTENT_TYPES`,
//! only bodies of at least 1024 bytes (or of unknown length), never a range
//! (206), a 304 or an already encoded body; `Vary: Accept-Encoding` on every
//! response of a compressible type.
//!
//! Requests: a `Content-Encoding: gzip` body is inflated as it is read
//! (async-compression), so the edge's body limit counts inflated bytes and a
//! gzip bomb stops at the limit (413) with memory bounded by it.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http::header::{self, HeaderValue};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyDataStream, BodyExt, StreamBody};
use hyper::body::Frame;
use tokio_util::io::{ReaderStream, StreamReader};
use tower::ServiceExt as _;
use tower_http::compression::{Compression, Predicate};

use crate::body::Body;

/// Tornado's `GZipContentEncoding.MIN_LENGTH`.
const MIN_LENGTH: u64 = 1024;

/// Tornado's `GZipContentEncoding.CONTENT_TYPES` (besides every `text/*`).
const CONTENT_TYPES: [&str; 7] = [
    "application/javascript",
    "application/x-javascript",
    "application/xml",
    "application/atom+xml",
    "application/json",
    "application/xhtml+xml",
    "image/svg+xml",
];

/// A boxed error of a request body.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers `req` with `respond`, its response compressed as the request
/// accepts and [`Compressible`] allows.
pub(super) async fn compressed<B, F, Fut>(req: http::Request<B>, respond: F) -> http::Response<Body>
where
    F: FnOnce(http::Request<B>) -> Fut,
    Fut: Future<Output = http::Response<Body>>,
{
    let mut respond = Some(respond);
    let inner = tower::service_fn(move |req: http::Request<B>| {
        let respond = respond.take().expect("a one-shot service is called once");
        async move { Ok::<_, Infallible>(respond(req).await) }
    });
    let service = Compression::new(inner)
        .gzip(true)
        .br(true)
        .compress_when(Compressible);
    let Ok(response) = service.oneshot(req).await;
    let mut response = response.map(|body| body.map_err(io::Error::other).boxed_unsync());
    if compressible_type(response.headers()) {
        let headers = response.headers_mut();
        let varies = headers.get_all(header::VARY).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))
        });
        if !varies {
            headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
    }
    response
}

/// Tornado's rule for what to compress.
#[derive(Debug, Clone, Copy)]
struct Compressible;

impl Predicate for Compressible {
    fn should_compress<B>(&self, response: &http::Response<B>) -> bool
    where
        B: hyper::body::Body,
    {
        let status = response.status();
        let headers = response.headers();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .or(response.body().size_hint().exact());
        status.is_success()
            && status != http::StatusCode::NO_CONTENT
            && status != http::StatusCode::PARTIAL_CONTENT
            && compressible_type(headers)
            && length.is_none_or(|len| len >= MIN_LENGTH)
    }
}

/// `text/*` or one of Tornado's `CONTENT_TYPES`.
fn compressible_type(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.starts_with("text/") || CONTENT_TYPES.contains(&essence.as_str())
}

/// Whether a request body is gzip (Tornado inflates only `gzip`).
pub(super) fn is_gzip(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"gzip"))
}

/// The request body as the edge reads it: inflated when `gzip`. Its error
/// is an `io::Error` (no boxed trait object whose lifetime the edge's
/// future would have to prove `Send` for).
pub(super) fn request_body<B>(body: B, gzip: bool) -> UnsyncBoxBody<Bytes, io::Error>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if gzip {
        gunzip(body)
    } else {
        body.map_err(|e| io::Error::other(e.into())).boxed_unsync()
    }
}

/// `body` inflated as it is read (gzip, several members allowed); a
/// corrupt stream ends it with an `InvalidData` error.
fn gunzip<B>(body: B) -> UnsyncBoxBody<Bytes, io::Error>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let data = BodyDataStream::new(body).map_err(|e| io::Error::other(e.into()));
    let mut decoder = async_compression::tokio::bufread::GzipDecoder::new(StreamReader::new(data));
    decoder.multiple_members(true);
    let inflated = ReaderStream::with_capacity(decoder, 16 << 10).map_ok(Frame::data);
    StreamBody::new(inflated).boxed_unsync()
}
