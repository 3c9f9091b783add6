//! Outbound HTTP, as Tornado's `AsyncHTTPClient`: [`fetch`] an
//! [`HttpRequest`], get an [`HttpResponse`] whatever its status, or a
//! [`FetchError`] when there is no response.
//!
//! A handler may reach only the hosts its manifest section lists in
//! `allowed_outbound_hosts` (none by default). While the host fetches, this
//! request waits and the server serves others.
//!
//! ```no_run
//! use std::time::Duration;
//! use waterspout_sdk::http_client::{self, HttpRequest};
//!
//! # fn run() -> Result<(), http_client::FetchError> {
//! let response = http_client::fetch(
//!     &HttpRequest::new("https://api.example.com/items")
//!         .header("Accept", "application/json")
//!         .request_timeout(Duration::from_secs(5)),
//! )?;
//! assert_eq!(response.status, 200);
//! // Several at once, in the host:
//! let both = http_client::fetch_all(&[HttpRequest::new("http://a/"), HttpRequest::new("http://b/")]);
//! # let _ = both; Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use crate::bindings::raw_http_client as raw;

/// Tornado's `HTTPRequest`; options left unset take Tornado's defaults
/// (20 s timeouts, redirects followed up to 5) and a 10 MiB body limit.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// "GET" unless set.
    pub method: String,
    /// An absolute http(s) URL.
    pub url: String,
    /// Request headers, in order.
    pub headers: Vec<(String, String)>,
    /// The request body, if any.
    pub body: Option<Vec<u8>>,
    /// Time to connect.
    pub connect_timeout: Option<Duration>,
    /// Time for the whole fetch, redirects included.
    pub request_timeout: Option<Duration>,
    /// Whether 3xx responses are followed.
    pub follow_redirects: Option<bool>,
    /// How many redirects are followed at most.
    pub max_redirects: Option<u32>,
    /// The largest response body, bytes.
    pub max_response_size: Option<u64>,
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

impl HttpRequest {
    /// A GET of `url`.
    pub fn new(url: impl Into<String>) -> Self {
        HttpRequest {
            method: "GET".into(),
            url: url.into(),
            ..Default::default()
        }
    }

    /// Sets the method ("POST", …).
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Sets the timeout of the whole fetch.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Follows redirects or not.
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = Some(follow);
        self
    }

    /// Sets how many redirects are followed at most.
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = Some(n);
        self
    }

    /// Sets the largest response body, bytes.
    pub fn max_response_size(mut self, bytes: u64) -> Self {
        self.max_response_size = Some(bytes);
        self
    }

    fn to_raw(&self) -> raw::Request {
        raw::Request {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            connect_timeout_ms: self.connect_timeout.map(millis),
            request_timeout_ms: self.request_timeout.map(millis),
            follow_redirects: self.follow_redirects,
            max_redirects: self.max_redirects,
            max_response_size: self.max_response_size,
        }
    }
}

/// Tornado's `HTTPResponse`.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code (any: a 404 is a response).
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The URL the body came from, after redirects.
    pub effective_url: String,
    /// From the start of the fetch to the end of the body.
    pub request_time: Duration,
}

impl HttpResponse {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn from_raw(r: raw::Response) -> Self {
        HttpResponse {
            status: r.status,
            reason: r.reason,
            headers: r.headers,
            body: r.body,
            effective_url: r.effective_url,
            request_time: Duration::from_millis(r.request_time_ms),
        }
    }
}

/// Why a fetch produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The host (or a redirect's host) is not in `allowed_outbound_hosts`.
    Denied(String),
    /// Not an absolute http(s) URL, or a bad method or header.
    BadUrl(String),
    /// The host name did not resolve.
    Dns(String),
    /// The connection or TLS handshake failed.
    Connect(String),
    /// The connect or request timeout passed.
    Timeout(String),
    /// The body was larger than the limit (bytes).
    TooLarge(u64),
    /// Anything else.
    Other(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Denied(m) => write!(f, "denied: {m}"),
            FetchError::BadUrl(m) => write!(f, "bad url: {m}"),
            FetchError::Dns(m) => write!(f, "dns: {m}"),
            FetchError::Connect(m) => write!(f, "connect: {m}"),
            FetchError::Timeout(m) => write!(f, "timeout: {m}"),
            FetchError::TooLarge(n) => write!(f, "the response body is larger than {n} bytes"),
            FetchError::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for FetchError {}

impl From<FetchError> for crate::HttpError {
    fn from(e: FetchError) -> Self {
        crate::HttpError::new(502).with_log_message(format!("fetch failed: {e}"))
    }
}

impl From<raw::FetchError> for FetchError {
    fn from(e: raw::FetchError) -> Self {
        match e {
            raw::FetchError::Denied(m) => FetchError::Denied(m),
            raw::FetchError::BadUrl(m) => FetchError::BadUrl(m),
            raw::FetchError::Dns(m) => FetchError::Dns(m),
            raw::FetchError::Connect(m) => FetchError::Connect(m),
            raw::FetchError::Timeout(m) => FetchError::Timeout(m),
            raw::FetchError::TooLarge(n) => FetchError::TooLarge(n),
            raw::FetchError::Other(m) => FetchError::Other(m),
        }
    }
}

/// Fetches `request`; this request waits, the server does not.
pub fn fetch(request: &HttpRequest) -> Result<HttpResponse, FetchError> {
    Ok(HttpResponse::from_raw(raw::fetch(&request.to_raw())?))
}

/// Fetches every request at once (in the host); the results in order.
pub fn fetch_all(requests: &[HttpRequest]) -> Vec<Result<HttpResponse, FetchError>> {
    let raws: Vec<raw::Request> = requests.iter().map(HttpRequest::to_raw).collect();
    raw::fetch_all(&raws)
        .into_iter()
        .map(|r| r.map(HttpResponse::from_raw).map_err(FetchError::from))
        .collect()
}
