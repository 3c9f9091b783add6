//! The edge: what every request passes before and after its handler.
//! Head checks hyper leaves to us (414, 400), routing (404), the body read
//! under its size limit and deadline (413, 408, 400), then the handler
//! driver; and the access line, written once per request when hyper is done
//! with the response body (Tornado's `200 GET /path (127.0.0.1) 0.52ms`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};

use super::listener::Service;
use super::{compression, static_files};
use crate::app::App;
use crate::body::{Body, close, error_page};
use crate::client::Client;
use crate::text::sanitize;

/// The longest request target (path and query) served; longer ones get 414.
/// hyper alone only stops at 65,534 bytes (its own 414) or at the head limit
/// below (431).
pub const MAX_URI_LEN: usize = 8 * 1024;

/// The largest request head (request line and header lines) served; larger
/// ones get 431. hyper refuses a head without an end once its read buffer
/// holds this much (`max_buf_size`), but a whole head that arrives in fewer,
/// larger reads parses first (its buffer grows by doubling, past the limit),
/// so the edge counts too.
pub(super) const MAX_HEAD_LEN: usize = 64 * 1024;

/// The app as a listener's service.
pub(super) struct Edge(pub(super) Arc<App>);

impl Service for Edge {
    type Body = Logged;

    fn call(
        self: Arc<Self>,
        req: http::Request<Incoming>,
        remote: SocketAddr,
    ) -> impl Future<Output = http::Response<Logged>> + Send + 'static {
        handle(self.0.clone(), req, remote)
    }
}

/// Handles one request; never fails (every failure is a response).
pub(super) async fn handle<B>(
    app: Arc<App>,
    mut req: http::Request<B>,
    remote: SocketAddr,
) -> http::Response<Logged>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Who the client is: the peer (https over TLS), or what a trusted proxy
    // says (`xheaders`). The guest, the WebSocket handshake and the access
    // line all see this address.
    let config = app.config();
    let direct = req
        .extensions()
        .get::<Client>()
        .copied()
        .unwrap_or_else(|| Client::direct(remote.ip(), false));
    let client = if config.xheaders {
        direct.with_xheaders(req.headers(), &config.trusted_downstream)
    } else {
        direct
    };
    req.extensions_mut().insert(client);
    let remote = SocketAddr::new(client.remote_ip, remote.port());
    let compress = config.compress_response && req.method() != Method::HEAD;
    let line = AccessLine {
        method: req.method().clone(),
        // A copy, as the line's text: the URI's own bytes are a slice of
        // hyper's read buffer, which a long request (a long poll) would
        // otherwise keep for as long as it waits.
        uri: req.uri().to_string(),
        remote,
        start: Instant::now(),
        status: 0,
    };
    let response = if compress {
        compression::compressed(req, |req| respond(app, req, remote)).await
    } else {
        respond(app, req, remote).await
    };
    let mut line = line;
    line.status = response.status().as_u16();
    response.map(|body| Logged {
        body,
        line: Some(line),
    })
}

async fn respond<B>(app: Arc<App>, req: http::Request<B>, remote: SocketAddr) -> http::Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // The connection closes after these answers, as the body stays unread.
    if let Some(status) = refuse_head(&req) {
        return close(error_page(status));
    }
    // Tornado puts its static routes first.
    if let Some(statics) = app.statics()
        && let Some(name) = statics.match_path(req.uri().path())
    {
        // Boxed, as the drivers are (handlers::serve): a long request's
        // future then does not carry this branch's size.
        return Box::pin(static_files::serve(
            statics.clone(),
            req.method(),
            req.uri(),
            req.headers(),
            name,
        ))
        .await;
    }
    let target = match crate::handlers::find(&app, req.uri().path()) {
        Ok(target) => target,
        Err(status) => return error_page(status),
    };
    if target.is_websocket() {
        let (mut parts, _body) = req.into_parts();
        let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        return crate::handlers::upgrade(&app, target, parts, on_upgrade, remote).await;
    }

    // Refuse an over-long body before reading it (also skips `100 Continue`).
    let config = app.config();
    let max = config.max_body_size;
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return close(error_page(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let (mut parts, body) = req.into_parts();
    // `decompress_request`: the limit counts inflated bytes.
    let gzip = config.decompress_request && compression::is_gzip(&parts.headers);
    // A request without a body (most GETs): nothing to read, no timer.
    if body.is_end_stream() && !gzip {
        return crate::handlers::serve(app, target, parts, Bytes::new(), remote).await;
    }
    let body = compression::request_body(body, gzip);
    // hyper times out slow headers, never a slow body: bound the whole read.
    let collect = http_body_util::Limited::new(body, max as usize).collect();
    let Ok(collected) = tokio::time::timeout(config.body_timeout, collect).await else {
        return close(error_page(StatusCode::REQUEST_TIMEOUT));
    };
    let body = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return close(error_page(StatusCode::PAYLOAD_TOO_LARGE));
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading the request body failed");
            return close(error_page(StatusCode::BAD_REQUEST));
        }
    };
    if gzip {
        // Tornado's `_GzipMessageDelegate`: the guest sees the inflated body.
        let headers = &mut parts.headers;
        headers.remove(http::header::CONTENT_ENCODING);
        headers.insert(
            "x-consumed-content-encoding",
            http::HeaderValue::from_static("gzip"),
        );
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(body.len()));
    }
    crate::handlers::serve(app, target, parts, body, remote).await
}

/// What hyper accepts but we refuse before routing (RFC 9112 §3.2, §6.1):
/// an over-long target (414), HTTP/1.1 without exactly one `Host` (400), and a
/// `Transfer-Encoding` other than a single `chunked` (400; hyper decodes
/// `gzip, chunked` or `chunked, chunked` as plain chunked, which a proxy in
/// front may read differently).
fn refuse_head<B>(req: &http::Request<B>) -> Option<StatusCode> {
    if head_len(req) > MAX_HEAD_LEN {
        return Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    if req.uri().path_and_query().map_or(0, |pq| pq.as_str().len()) > MAX_URI_LEN {
        return Some(StatusCode::URI_TOO_LONG);
    }
    let headers = req.headers();
    let hosts = headers.get_all(http::header::HOST).iter().count();
    if hosts > 1 || (hosts == 0 && req.version() == http::Version::HTTP_11) {
        return Some(StatusCode::BAD_REQUEST);
    }
    let mut codings = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','));
    match (codings.next(), codings.next()) {
        (None, _) => None,
        (Some(only), None) if only.trim_ascii().eq_ignore_ascii_case(b"chunked") => None,
        _ => Some(StatusCode::BAD_REQUEST),
    }
}

/// The request head's length as HTTP/1.1 sends it: `METHOD target
/// HTTP/1.1`, each `name: value`, every line with its CRLF, and the empty
/// line.
fn head_len<B>(req: &http::Request<B>) -> usize {
    let uri = req.uri();
    let target = uri.scheme_str().map_or(0, |s| s.len() + "://".len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    let line = req.method().as_str().len() + " ".len() + target + " HTTP/1.1\r\n".len();
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + "\r\n".len())
        .sum();
    line + headers + "\r\n".len()
}

/// What the access line says, kept until the response body is done.
struct AccessLine {
    status: u16,
    method: Method,
    /// The request target as the client sent it (not yet sanitized).
    uri: String,
    remote: SocketAddr,
    start: Instant,
}

impl AccessLine {
    /// Tornado's access log line: `200 GET /path (127.0.0.1) 0.52ms`, at
    /// error level for 5xx and warning level for 4xx.
    fn write(&self) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        let (status, method, ip) = (self.status, &self.method, self.remote.ip());
        let uri = sanitize(&self.uri);
        if status >= 500 {
            tracing::error!(target: "waterspout::access", "{status} {method} {uri} ({ip}) {ms:.2}ms");
        } else if status >= 400 {
            tracing::warn!(target: "waterspout::access", "{status} {method} {uri} ({ip}) {ms:.2}ms");
        } else {
            tracing::info!(target: "waterspout::access", "{status} {method} {uri} ({ip}) {ms:.2}ms");
        }
    }
}

/// A response body that writes its request's access line when hyper drops
/// it: after the last byte was written, or when the client went away. So
/// every request is logged exactly once, whichever way it ended, and a
/// streamed response is logged when it finishes, as Tornado does.
pub struct Logged {
    body: Body,
    line: Option<AccessLine>,
}

impl hyper::body::Body for Logged {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            line.write();
        }
    }
}
