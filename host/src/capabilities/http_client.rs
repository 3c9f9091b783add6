//! Capability `http-client` (WIT interface `http-client`): Tornado's
//! `AsyncHTTPClient` through the app's backend (`services::HttpClient`),
//! limited to the handler's `allowed_outbound_hosts` (none by default). A
//! denied fetch, a bad URL, a timeout… are the guest's `fetch-error`, never
//! a trap. The guest's fiber waits for the response, holding no thread.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use wasmtime::component::{HasData, Linker};

use crate::capabilities::bindings::http_client::{self, FetchError, Request, Response};
use crate::services::http_client::{
    AllowedHosts, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_REDIRECTS, DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_REQUEST_TIMEOUT, FetchError as BackendError, FetchRequest, FetchResponse, HttpClient,
};

/// Fetches of one `fetch-all` in flight at once.
const FETCH_ALL_CONCURRENCY: usize = 16;

/// The http-client context of one instance: the backend and the handler's allowlist.
#[derive(Clone, Default)]
pub struct HttpClientCtx {
    backend: Option<Arc<dyn HttpClient>>,
    allowed: AllowedHosts,
}

impl HttpClientCtx {
    pub fn new(backend: Arc<dyn HttpClient>, allowed_hosts: &[String]) -> Self {
        HttpClientCtx {
            backend: Some(backend),
            allowed: AllowedHosts::new(allowed_hosts),
        }
    }

    async fn fetch_one(
        backend: Arc<dyn HttpClient>,
        allowed: AllowedHosts,
        request: Request,
    ) -> Result<Response, FetchError> {
        let request = FetchRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            connect_timeout: request
                .connect_timeout_ms
                .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_millis),
            request_timeout: request
                .request_timeout_ms
                .map_or(DEFAULT_REQUEST_TIMEOUT, Duration::from_millis),
            follow_redirects: request.follow_redirects.unwrap_or(true),
            max_redirects: request.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
            max_response_size: request.max_response_size.unwrap_or(DEFAULT_MAX_RESPONSE_SIZE),
        };
        let url = request.url.clone();
        match backend.fetch(request, &allowed).await {
            Ok(r) => Ok(wit_response(r)),
            Err(e) => {
                tracing::debug!(url = %crate::text::sanitize(&url), "fetch failed: {e}");
                Err(wit_error(e))
            }
        }
    }
}

fn wit_response(r: FetchResponse) -> Response {
    Response {
        status: r.status,
        reason: r.reason,
        headers: r.headers,
        body: r.body,
        effective_url: r.effective_url,
        request_time_ms: r.request_time.as_millis().min(u64::MAX as u128) as u64,
    }
}

fn wit_error(e: BackendError) -> FetchError {
    match e {
        BackendError::Denied(m) => {
            tracing::warn!("outbound fetch denied: {}", crate::text::sanitize(&m));
            FetchError::Denied(m)
        }
        BackendError::BadUrl(m) => FetchError::BadUrl(m),
        BackendError::Dns(m) => FetchError::Dns(m),
        BackendError::Connect(m) => FetchError::Connect(m),
        BackendError::Timeout(m) => FetchError::Timeout(m),
        BackendError::TooLarge(n) => FetchError::TooLarge(n),
        BackendError::Other(m) => FetchError::Other(m),
    }
}

fn unavailable() -> FetchError {
    FetchError::Denied("the http client is not available to this kind of instance".into())
}

struct HasHttpClient;

impl HasData for HasHttpClient {
    type Data<'a> = &'a mut HttpClientCtx;
}

/// Links interface `http-client`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut HttpClientCtx,
) -> wasmtime::Result<()> {
    http_client::add_to_linker::<T, HasHttpClient>(linker, get)
}

impl http_client::Host for HttpClientCtx {
    async fn fetch(&mut self, request: Request) -> wasmtime::Result<Result<Response, FetchError>> {
        let Some(backend) = self.backend.clone() else {
            return Ok(Err(unavailable()));
        };
        Ok(Self::fetch_one(backend, self.allowed.clone(), request).await)
    }

    async fn fetch_all(
        &mut self,
        requests: Vec<Request>,
    ) -> wasmtime::Result<Vec<Result<Response, FetchError>>> {
        let Some(backend) = self.backend.clone() else {
            return Ok(requests.iter().map(|_| Err(unavailable())).collect());
        };
        let allowed = self.allowed.clone();
        Ok(futures_util::stream::iter(requests)
            .map(|request| Self::fetch_one(backend.clone(), allowed.clone(), request))
            .buffered(FETCH_ALL_CONCURRENCY)
            .collect()
            .await)
    }
}
