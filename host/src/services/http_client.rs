//! The http-client service: Tornado's `AsyncHTTPClient` for guests.
//! [`HttpClient`] is the backend trait; [`ReqwestClient`] the default:
//! reqwest with rustls, pooled connections, no proxy from the environment.
//!
//! Redirects are followed here, hop by hop, so each hop is checked against
//! the handler's [`AllowedHosts`] and `Authorization`, `Cookie` and
//! `Proxy-Authorization` are dropped when a hop leaves the origin (as
//! Tornado 6.5 does). The response body is read chunk by chunk and refused
//! as soon as it passes the size limit. The whole fetch, redirects included,
//! is bounded by the request timeout; the caller's own deadline (the
//! handler's `timeout_ms`) bounds it too.
//!
//! [`AllowedHosts`] is also the policy of standard wasi:http components
//! (`capabilities/outbound_http.rs`): one list per handler for both.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

/// Tornado's `connect_timeout` default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Tornado's `request_timeout` default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Tornado's `max_redirects` default.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;
/// The largest response body by default (a guest's memory is 64 MiB by default).
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 10 << 20;

/// Which hosts a handler may reach (`allowed_outbound_hosts`; none by default).
///
/// An entry is `*` (anything), `host` or `host:*` (that host, any port),
/// `host:port`, or `*.domain` (any subdomain of domain, any port). Host names
/// compare without case.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    entries: Arc<[String]>,
}

impl AllowedHosts {
    pub fn new(entries: &[String]) -> Self {
        AllowedHosts {
            entries: entries.iter().map(|e| e.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether `host` on `port` is allowed. `host` as in a URL (IPv6 in brackets).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = match entry.rsplit_once(':') {
                // `[::1]` alone has colons but no port.
                Some((name, p)) if !p.ends_with(']') => (name, Some(p)),
                _ => (entry.as_str(), None),
            };
            let port_ok = match entry_port {
                None | Some("*") => true,
                Some(p) => p.parse::<u16>() == Ok(port),
            };
            let name_ok = match name.strip_prefix("*.") {
                Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
                None => name == host,
            };
            port_ok && name_ok
        })
    }

    /// Whether `url`'s host and port (the scheme's default when none) are allowed.
    pub fn allows_url(&self, url: &Url) -> bool {
        match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => self.allows(host, port),
            _ => false,
        }
    }
}

/// One fetch, with every option resolved.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub follow_redirects: bool,
    pub max_redirects: u32,
    pub max_response_size: u64,
}

impl FetchRequest {
    /// A GET of `url` with Tornado's defaults.
    pub fn get(url: impl Into<String>) -> Self {
        FetchRequest {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            follow_redirects: true,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
        }
    }
}

/// A response, whatever its status.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub effective_url: String,
    pub request_time: Duration,
}

/// Why a fetch produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    BadUrl(String),
    #[error("{0}")]
    Dns(String),
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Timeout(String),
    #[error("the response body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    Other(String),
}

/// An outbound HTTP backend.
#[async_trait::async_trait]
pub trait HttpClient: Send + Sync {
    /// Fetches `request`, every hop checked against `allowed`.
    async fn fetch(&self, request: FetchRequest, allowed: &AllowedHosts)
    -> Result<FetchResponse, FetchError>;
}

/// The default backend: reqwest clients (each with its connection pool),
/// one per worker thread and connect timeout, so a pooled connection is
/// always driven by the thread that uses it.
#[derive(Default)]
pub struct ReqwestClient {
    clients: Mutex<HashMap<(ThreadId, Duration), reqwest::Client>>,
    roots: RootCertificates,
}

/// Root certificates trusted besides the public ones (webpki-roots), e.g.
/// a private CA (`[app] http_client_ca`).
#[derive(Debug, Clone, Default)]
pub struct RootCertificates(Vec<reqwest::Certificate>);

impl RootCertificates {
    /// Every certificate of a PEM bundle; an error when there is none or
    /// one does not parse.
    pub fn from_pem(pem: &[u8]) -> Result<RootCertificates, String> {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        if certificates.is_empty() {
            return Err("no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".to_owned());
        }
        Ok(RootCertificates(certificates))
    }
}

/// Distinct connect timeouts kept per thread; beyond, a client is built per fetch.
const MAX_CLIENTS: usize = 64;

impl ReqwestClient {
    /// A client that also trusts `roots`.
    pub fn with_roots(roots: RootCertificates) -> ReqwestClient {
        ReqwestClient {
            clients: Mutex::default(),
            roots,
        }
    }

    fn client(&self, connect_timeout: Duration) -> Result<reqwest::Client, FetchError> {
        let key = (std::thread::current().id(), connect_timeout);
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(connect_timeout)
            .user_agent(concat!("Waterspout/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(Resolver));
        for root in &self.roots.0 {
            builder = builder.add_root_certificate(root.clone());
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Other(format!("cannot build the HTTP client: {e}")))?;
        if clients.len() < MAX_CLIENTS {
            clients.insert(key, client.clone());
        }
        Ok(client)
    }

    async fn run(
        &self,
        request: FetchRequest,
        allowed: &AllowedHosts,
        start: Instant,
    ) -> Result<FetchResponse, FetchError> {
        let mut url =
            Url::parse(&request.url).map_err(|e| FetchError::BadUrl(format!("{:?}: {e}", request.url)))?;
        let mut method = if request.method.is_empty() {
            Method::GET
        } else {
            Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
                .map_err(|_| FetchError::BadUrl(format!("bad method {:?}", request.method)))?
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| FetchError::BadUrl(format!("bad header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| FetchError::BadUrl(format!("bad value for header {name}")))?;
            headers.append(name, value);
        }
        let mut body = request.body;
        let client = self.client(request.connect_timeout)?;
        let mut redirects = 0;
        loop {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(FetchError::BadUrl(format!("{url}: not an absolute http(s) URL")));
            }
            if !allowed.allows_url(&url) {
                return Err(FetchError::Denied(format!(
                    "{} is not in the handler's allowed_outbound_hosts",
                    authority(&url)
                )));
            }
            let mut builder = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let mut response = builder.send().await.map_err(|e| classify(&e, &url))?;
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            if request.follow_redirects
                && status.is_redirection()
                && status != StatusCode::NOT_MODIFIED
                && redirects < request.max_redirects
                && let Some(location) = location
            {
                let next = url
                    .join(&location)
                    .map_err(|e| FetchError::BadUrl(format!("redirect to {location:?}: {e}")))?;
                redirects += 1;
                if next.origin() != url.origin() {
                    for name in [header::AUTHORIZATION, header::COOKIE, header::PROXY_AUTHORIZATION] {
                        headers.remove(name);
                    }
                }
                // Tornado: 303 becomes GET (but HEAD); 301/302 turn a POST into a GET.
                let to_get = (status == StatusCode::SEE_OTHER && method != Method::HEAD)
                    || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                        && method == Method::POST);
                if to_get {
                    method = Method::GET;
                    body = None;
                    for name in [
                        header::CONTENT_LENGTH,
                        header::CONTENT_TYPE,
                        header::CONTENT_ENCODING,
                        header::TRANSFER_ENCODING,
                    ] {
                        headers.remove(name);
                    }
                }
                url = next;
                continue;
            }
            let limit = request.max_response_size;
            if response.content_length().is_some_and(|n| n > limit) {
                return Err(FetchError::TooLarge(limit));
            }
            let mut data = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e, &url))? {
                if data.len() as u64 + chunk.len() as u64 > limit {
                    return Err(FetchError::TooLarge(limit));
                }
                data.extend_from_slice(&chunk);
            }
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            return Ok(FetchResponse {
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("Unknown").to_owned(),
                headers,
                body: data,
                effective_url: url.to_string(),
                request_time: start.elapsed(),
            });
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for ReqwestClient {
    async fn fetch(
        &self,
        request: FetchRequest,
        allowed: &AllowedHosts,
    ) -> Result<FetchResponse, FetchError> {
        let start = Instant::now();
        let timeout = request.request_timeout;
        match tokio::time::timeout(timeout, self.run(request, allowed, start)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(format!(
                "no complete response within the request timeout of {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => url.to_string(),
    }
}

/// reqwest's error as the guest's: timeouts, DNS (found by our resolver's
/// error type in the chain), connect, the rest.
fn classify(error: &reqwest::Error, url: &Url) -> FetchError {
    let mut detail = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut dns = None;
    while let Some(e) = source {
        if let Some(d) = e.downcast_ref::<DnsError>() {
            dns = Some(d.to_string());
        }
        if !detail.is_empty() {
            detail.push_str(": ");
        }
        detail.push_str(&e.to_string());
        source = e.source();
    }
    let target = authority(url);
    if let Some(dns) = dns {
        FetchError::Dns(format!("{target}: {dns}"))
    } else if error.is_timeout() {
        FetchError::Timeout(format!("{target}: connect timeout ({detail})"))
    } else if error.is_connect() {
        FetchError::Connect(format!("{target}: {detail}"))
    } else {
        FetchError::Other(format!("{target}: {detail}"))
    }
}

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {name}: {reason}")]
struct DnsError {
    name: String,
    reason: String,
}

/// The system resolver (tokio's `lookup_host`), with its failures typed so
/// they can be told from connection failures.
struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map(|addrs| addrs.collect::<Vec<SocketAddr>>());
            let failed = |reason: String| -> Box<dyn std::error::Error + Send + Sync> {
                Box::new(DnsError {
                    name: name.clone(),
                    reason,
                })
            };
            match found {
                Ok(addrs) if addrs.is_empty() => Err(failed("no addresses".into())),
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(e) => Err(failed(e.to_string())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_match_names_ports_wildcards() {
        let allowed = AllowedHosts::new(&[
            "api.example.com".into(),
            "127.0.0.1:8080".into(),
            "localhost:*".into(),
            "*.Internal.test".into(),
        ]);
        assert!(allowed.allows("API.example.com", 443));
        assert!(allowed.allows("127.0.0.1", 8080));
        assert!(!allowed.allows("127.0.0.1", 8081));
        assert!(allowed.allows("localhost", 1));
        assert!(allowed.allows("a.internal.test", 80));
        assert!(!allowed.allows("internal.test", 80));
        assert!(!allowed.allows("evilinternal.test", 80));
        assert!(!allowed.allows("example.com", 443));
        assert!(!AllowedHosts::default().allows("example.com", 80));
        assert!(AllowedHosts::new(&["*".into()]).allows("anything", 1));
        let url = Url::parse("https://api.example.com/x").unwrap();
        assert!(allowed.allows_url(&url));
        let with_port = AllowedHosts::new(&["example.com:443".into()]);
        assert!(with_port.allows_url(&Url::parse("https://example.com/").unwrap()));
        assert!(!with_port.allows_url(&Url::parse("http://example.com/").unwrap()));
    }
}
