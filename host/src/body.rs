//! The one response body type the server hands to hyper, and Tornado's
//! default error page.

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::StatusCode;
use http::header::{self, HeaderValue};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

/// A response body: whole, empty or streamed from a guest's flushes.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// One chunk of a streamed body, or the error that ends it abnormally.
pub type BodyChunk = Result<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body fed by a channel; the stream ends when the sender is dropped.
pub fn streaming(mut rx: mpsc::Receiver<BodyChunk>) -> Body {
    let stream =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(|chunk| chunk.map(Frame::data));
    BodyExt::boxed_unsync(StreamBody::new(stream))
}

/// A complete host-generated response (404, 500, ...), Tornado's default page.
pub fn error_page(status: StatusCode) -> http::Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Unknown");
    let code = status.as_u16();
    let body = format!("<html><title>{code}: {reason}</title><body>{code}: {reason}</body></html>");
    let mut response = http::Response::new(full(body.into_bytes()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    headers.insert(header::SERVER, HeaderValue::from_static(crate::SERVER_NAME));
    response
}

/// Tornado's error page with the handler's own reason phrase, when it gave one.
pub fn page(status: StatusCode, reason: Option<&str>) -> http::Response<Body> {
    let mut response = error_page(status);
    if let Some(reason) = reason {
        let code = status.as_u16();
        let reason = crate::text::html_escape(reason);
        *response.body_mut() = full(format!(
            "<html><title>{code}: {reason}</title><body>{code}: {reason}</body></html>"
        ));
    }
    response
}

/// Asks hyper to close the connection after this response (framing in doubt
/// or a body we chose not to read).
pub fn close(mut response: http::Response<Body>) -> http::Response<Body> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
