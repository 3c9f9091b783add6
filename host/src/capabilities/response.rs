//! Capability `response` (WIT interface `response`): the response under
//! construction. The host owns
//! status, headers and the write buffer; `flush` streams a chunk to hyper
//! through a bounded channel, so a guest that flushes really waits for the
//! connection, and a slow client cannot make the host buffer without end.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use tokio::sync::{mpsc, oneshot};

use wasmtime::component::{HasData, Linker};

use crate::body::{Body, BodyChunk};
use crate::capabilities::bindings::{CookieOptions, response};

/// What the guest task hands to the hyper service.
pub type ResponseHead = http::Response<Body>;

/// Headers a guest may not set: the host frames the message itself.
const HOP_BY_HOP: [HeaderName; 5] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::UPGRADE,
    header::TRAILER,
];

/// Status, headers and buffered body of one response, and the way to the client.
pub struct ResponseState {
    status: StatusCode,
    reason: Option<String>,
    headers: HeaderMap,
    buffer: Vec<u8>,
    /// Sends the head (and the whole body, when nothing was flushed) once.
    head_tx: Option<oneshot::Sender<ResponseHead>>,
    /// Set once the head has been sent with a streaming body.
    body_tx: Option<mpsc::Sender<BodyChunk>>,
    finished: bool,
    /// HEAD requests get headers but no body.
    is_head: bool,
}

/// Why a response call was refused; becomes the guest's `result` error.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("cannot {0} after finish()")]
    Finished(&'static str),
    #[error("cannot {0} after headers have been flushed")]
    HeadersSent(&'static str),
    #[error("invalid status code {0}")]
    InvalidStatus(u16),
    #[error("unsafe header name {0:?}")]
    HeaderName(String),
    #[error("unsafe header value {0:?}")]
    HeaderValue(String),
    #[error("the client went away")]
    ClientGone,
    #[error("invalid cookie: {0}")]
    Cookie(String),
}

impl ResponseState {
    pub fn new(head_tx: oneshot::Sender<ResponseHead>, is_head: bool) -> Self {
        let mut state = ResponseState {
            status: StatusCode::OK,
            reason: None,
            headers: HeaderMap::new(),
            buffer: Vec::new(),
            head_tx: Some(head_tx),
            body_tx: None,
            finished: false,
            is_head,
        };
        state.set_default_headers();
        state
    }

    /// Tornado's defaults: HTML in UTF-8 and the server's name.
    fn set_default_headers(&mut self) {
        self.headers.clear();
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        );
        self.headers
            .insert(header::SERVER, HeaderValue::from_static(crate::SERVER_NAME));
    }

    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn headers_sent(&self) -> bool {
        self.head_tx.is_none()
    }

    pub fn set_status(&mut self, status: u16, reason: Option<String>) -> Result<(), ResponseError> {
        let code = StatusCode::from_u16(status).map_err(|_| ResponseError::InvalidStatus(status))?;
        if reason.is_none() && code.canonical_reason().is_none() {
            // Tornado: "unknown status code" needs an explicit reason.
            return Err(ResponseError::InvalidStatus(status));
        }
        if let Some(reason) = &reason
            && reason.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
        {
            return Err(ResponseError::HeaderValue(reason.clone()));
        }
        self.status = code;
        self.reason = reason;
        Ok(())
    }

    fn header_pair(name: &str, value: &str) -> Result<Option<(HeaderName, HeaderValue)>, ResponseError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ResponseError::HeaderName(name.to_owned()))?;
        let value = HeaderValue::from_str(value).map_err(|_| ResponseError::HeaderValue(value.to_owned()))?;
        if HOP_BY_HOP.contains(&name) {
            tracing::debug!(header = %name, "ignoring a framing header set by the guest");
            return Ok(None);
        }
        Ok(Some((name, value)))
    }

    pub fn set_header(&mut self, name: &str, value: &str) -> Result<(), ResponseError> {
        if let Some((name, value)) = Self::header_pair(name, value)? {
            self.headers.insert(name, value);
        }
        Ok(())
    }

    pub fn add_header(&mut self, name: &str, value: &str) -> Result<(), ResponseError> {
        if let Some((name, value)) = Self::header_pair(name, value)? {
            self.headers.append(name, value);
        }
        Ok(())
    }

    pub fn clear_header(&mut self, name: &str) {
        self.headers.remove(name);
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ResponseError> {
        if self.finished {
            return Err(ResponseError::Finished("write()"));
        }
        self.buffer.extend_from_slice(chunk);
        Ok(())
    }

    /// Tornado's `clear`: default headers, status 200, empty buffer.
    pub fn clear(&mut self) -> Result<(), ResponseError> {
        if self.headers_sent() {
            return Err(ResponseError::HeadersSent("clear()"));
        }
        self.set_default_headers();
        self.status = StatusCode::OK;
        self.reason = None;
        self.buffer.clear();
        self.finished = false;
        Ok(())
    }

    pub fn redirect(&mut self, url: &str, status: Option<u16>) -> Result<(), ResponseError> {
        if self.headers_sent() {
            return Err(ResponseError::HeadersSent("redirect()"));
        }
        let status = status.unwrap_or(302);
        if !(300..=399).contains(&status) {
            return Err(ResponseError::InvalidStatus(status));
        }
        self.set_status(status, None)?;
        self.set_header("Location", url)?;
        Ok(())
    }

    /// Adds a `Set-Cookie` header. The value is quoted as Tornado (Python's
    /// `http.cookies`) quotes it, so a Tornado app reads it (signed values
    /// hold `|`, `:` and `=`); values Tornado refuses are percent-encoded.
    pub fn set_cookie(&mut self, mut cookie: cookie::Cookie<'_>) -> Result<(), ResponseError> {
        let legal_name = cookie
            .name()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~:".contains(&b));
        let text = match crate::text::cookie_quote(cookie.value()) {
            Some(quoted) if legal_name => {
                cookie.set_value(quoted);
                cookie.to_string()
            }
            _ => cookie.encoded().to_string(),
        };
        let value = HeaderValue::from_str(&text).map_err(|_| ResponseError::Cookie(text.clone()))?;
        self.headers.append(header::SET_COOKIE, value);
        Ok(())
    }

    fn build_head(&mut self, body: Body) -> ResponseHead {
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = std::mem::take(&mut self.headers);
        if let Some(reason) = &self.reason
            && Some(reason.as_str()) != self.status.canonical_reason()
        {
            // hyper writes a custom reason phrase from this extension.
            if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason.clone().into_bytes()) {
                response.extensions_mut().insert(reason);
            }
        }
        response
    }

    /// Sends the headers (first time) and the buffer as one chunk. Waits until
    /// the connection has taken the previous chunk.
    pub async fn flush(&mut self) -> Result<(), ResponseError> {
        if self.finished {
            return Err(ResponseError::Finished("flush()"));
        }
        if let Some(head_tx) = self.head_tx.take() {
            let (tx, rx) = mpsc::channel(1);
            let head = self.build_head(crate::body::streaming(rx));
            head_tx.send(head).map_err(|_| ResponseError::ClientGone)?;
            self.body_tx = Some(tx);
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        if chunk.is_empty() || self.is_head {
            return Ok(());
        }
        let tx = self.body_tx.as_ref().ok_or(ResponseError::ClientGone)?;
        tx.send(Ok(chunk)).await.map_err(|_| ResponseError::ClientGone)
    }

    /// Ends the response: the whole body at once when nothing was flushed,
    /// otherwise the last chunk and the end of the stream.
    pub async fn finish(&mut self) -> Result<(), ResponseError> {
        if self.finished {
            return Err(ResponseError::Finished("finish()"));
        }
        self.finished = true;
        if let Some(head_tx) = self.head_tx.take() {
            let body = std::mem::take(&mut self.buffer);
            let len = body.len();
            let head = if self.is_head {
                let mut head = self.build_head(crate::body::empty());
                head.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                head
            } else {
                self.build_head(crate::body::full(body))
            };
            // The client may be gone; that is not the guest's problem.
            let _ = head_tx.send(head);
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        if let Some(tx) = self.body_tx.take()
            && !chunk.is_empty()
            && !self.is_head
        {
            let _ = tx.send(Ok(chunk)).await;
        }
        Ok(())
    }

    /// After a trap or timeout: if headers are out, end the body abnormally so
    /// the client sees a broken response rather than a truncated "success".
    pub async fn abort(&mut self) {
        self.finished = true;
        if let Some(tx) = self.body_tx.take() {
            let _ = tx
                .send(Err(std::io::Error::other(
                    "handler failed after the headers were sent",
                )))
                .await;
        }
    }

    /// The head sender, if the head was never sent (used for error pages
    /// produced by the host itself).
    pub fn take_unsent_head(&mut self) -> Option<oneshot::Sender<ResponseHead>> {
        self.head_tx.take()
    }
}

/// The response capability's per-instance context: the response under
/// construction when the instance serves an HTTP request (none for
/// WebSocket instances, whose calls then trap).
#[derive(Default)]
pub struct ResponseCtx(Option<ResponseState>);

impl ResponseCtx {
    pub fn new(state: ResponseState) -> Self {
        ResponseCtx(Some(state))
    }

    pub fn get(&mut self) -> Option<&mut ResponseState> {
        self.0.as_mut()
    }

    fn state(&mut self) -> wasmtime::Result<&mut ResponseState> {
        self.0
            .as_mut()
            .ok_or_else(|| wasmtime::format_err!("no response in this context"))
    }
}

struct HasResponse;

impl HasData for HasResponse {
    type Data<'a> = &'a mut ResponseCtx;
}

/// Links interface `response`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ResponseCtx,
) -> wasmtime::Result<()> {
    response::add_to_linker::<T, HasResponse>(linker, get)
}

/// Maps a refused response call to the guest's `result` error string.
fn refused<T>(r: std::result::Result<T, ResponseError>) -> std::result::Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl response::Host for ResponseCtx {
    async fn set_status(
        &mut self,
        status: u16,
        reason: Option<String>,
    ) -> wasmtime::Result<std::result::Result<(), String>> {
        Ok(refused(self.state()?.set_status(status, reason)))
    }
    async fn get_status(&mut self) -> wasmtime::Result<u16> {
        Ok(self.state()?.status())
    }
    async fn set_header(
        &mut self,
        name: String,
        value: String,
    ) -> wasmtime::Result<std::result::Result<(), String>> {
        Ok(refused(self.state()?.set_header(&name, &value)))
    }
    async fn add_header(
        &mut self,
        name: String,
        value: String,
    ) -> wasmtime::Result<std::result::Result<(), String>> {
        Ok(refused(self.state()?.add_header(&name, &value)))
    }
    async fn clear_header(&mut self, name: String) -> wasmtime::Result<()> {
        self.state()?.clear_header(&name);
        Ok(())
    }
    async fn write(&mut self, chunk: Vec<u8>) -> wasmtime::Result<std::result::Result<(), String>> {
        Ok(refused(self.state()?.write(&chunk)))
    }
    async fn flush(&mut self) -> wasmtime::Result<std::result::Result<(), String>> {
        Ok(refused(self.state()?.flush().await))
    }
    async fn finish(&mut self) -> wasmtime::Result<std::result::Result<(), String>> {
        Ok(refused(self.state()?.finish().await))
    }
    async fn finished(&mut self) -> wasmtime::Result<bool> {
        Ok(self.state()?.is_finished())
    }
    async fn clear(&mut self) -> wasmtime::Result<std::result::Result<(), String>> {
        Ok(refused(self.state()?.clear()))
    }
    async fn redirect(
        &mut self,
        url: String,
        status: Option<u16>,
    ) -> wasmtime::Result<std::result::Result<(), String>> {
        let response = self.state()?;
        if let Err(e) = response.redirect(&url, status) {
            return Ok(Err(e.to_string()));
        }
        Ok(refused(response.finish().await))
    }
    async fn set_cookie(
        &mut self,
        name: String,
        value: String,
        options: CookieOptions,
    ) -> wasmtime::Result<std::result::Result<(), String>> {
        let mut cookie = cookie::Cookie::new(name, value);
        cookie.set_path(options.path.unwrap_or_else(|| "/".to_owned()));
        if let Some(domain) = options.domain {
            cookie.set_domain(domain);
        }
        if let Some(max_age) = options.max_age {
            cookie.set_max_age(cookie::time::Duration::seconds(max_age));
        }
        cookie.set_secure(options.secure.then_some(true));
        cookie.set_http_only(options.http_only.then_some(true));
        if let Some(same_site) = options.same_site {
            let same_site = match same_site.to_ascii_lowercase().as_str() {
                "strict" => cookie::SameSite::Strict,
                "lax" => cookie::SameSite::Lax,
                "none" => cookie::SameSite::None,
                other => return Ok(Err(format!("invalid SameSite value {other:?}"))),
            };
            cookie.set_same_site(same_site);
        }
        Ok(refused(self.state()?.set_cookie(cookie)))
    }
    async fn clear_cookie(
        &mut self,
        name: String,
        path: Option<String>,
        domain: Option<String>,
    ) -> wasmtime::Result<()> {
        let mut cookie = cookie::Cookie::new(name, "");
        cookie.set_path(path.unwrap_or_else(|| "/".to_owned()));
        if let Some(domain) = domain {
            cookie.set_domain(domain);
        }
        cookie.make_removal();
        // A removal cookie is always valid.
        let _ = self.state()?.set_cookie(cookie);
        Ok(())
    }
}
