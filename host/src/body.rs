//! The one response body type the server hands to hyper.

use bytes::Bytes;
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

use futures_util::StreamExt as _;
