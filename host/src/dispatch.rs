//! One HTTP request through a handler component, in Tornado's order:
//! method supported? → body parsed (malformed → 400) → prepare → verb →
//! automatic finish → on-finish. Errors go to the guest's `write-error`;
//! traps and timeouts become a generic 500 / 503 that never shows trap text.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use wasmtime::component::Resource;
use wasmtime::{Store, UpdateDeadline};

use crate::app::App;
use crate::bindings::handler::exports::waterspout::handler::request_handler::Guest as RequestHandler;
use crate::bindings::{HandlerPre, HttpError};
use crate::body::Body;
use crate::guest_log::Tag;
use crate::manifest::HandlerLimits;
use crate::registry::{HandlerSlot, HandlerVersion, Prepared};
use crate::request::RequestData;
use crate::response::{ResponseHead, ResponseState, error_page};
use crate::state::HostState;

/// Handles one request; never fails (every failure is a response).
pub async fn handle<B>(app: Arc<App>, mut req: http::Request<B>, remote: SocketAddr) -> http::Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    // Request-head checks hyper leaves to us (docs/SECURITY.md); the
    // connection closes after the answer, as the body stays unread.
    if let Some(status) = refuse_head(&req) {
        return logged(close(error_page(status)), &method, &uri, remote, start);
    }
    let router = app.router.load();
    let Some(found) = router.find(uri.path()) else {
        return logged(error_page(StatusCode::NOT_FOUND), &method, &uri, remote, start);
    };
    let Some(slot) = app.registry.get(&found.route.handler) else {
        tracing::error!(handler = %found.route.handler, "route points at a handler that is not loaded");
        return logged(
            error_page(StatusCode::INTERNAL_SERVER_ERROR),
            &method,
            &uri,
            remote,
            start,
        );
    };
    let version = slot.active();
    if matches!(version.prepared, Prepared::Websocket(_)) {
        let settings = found.route.settings.clone();
        let (path_args, path_kwargs) = (found.path_args, found.path_kwargs);
        drop(router);
        // Upgrades need hyper's connection; in-process callers (benchmarks)
        // have none.
        let Some(req) = (&mut req as &mut dyn std::any::Any).downcast_mut::<http::Request<Incoming>>() else {
            return logged(error_page(StatusCode::BAD_REQUEST), &method, &uri, remote, start);
        };
        let response = crate::websocket::upgrade(
            &app,
            &slot,
            version,
            settings,
            req,
            remote,
            path_args,
            path_kwargs,
        )
        .await;
        return logged(response, &method, &uri, remote, start);
    }

    // Refuse an over-long body before reading it (also skips `100 Continue`).
    let max = app.config.max_body_size;
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return logged(
            close(error_page(StatusCode::PAYLOAD_TOO_LARGE)),
            &method,
            &uri,
            remote,
            start,
        );
    }
    let (parts, body) = req.into_parts();
    // hyper times out slow headers, never a slow body: bound the whole read.
    let collect = http_body_util::Limited::new(body, max as usize).collect();
    let Ok(collected) = tokio::time::timeout(app.config.body_timeout, collect).await else {
        return logged(
            close(error_page(StatusCode::REQUEST_TIMEOUT)),
            &method,
            &uri,
            remote,
            start,
        );
    };
    let body = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return logged(
                close(error_page(StatusCode::PAYLOAD_TOO_LARGE)),
                &method,
                &uri,
                remote,
                start,
            );
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading the request body failed");
            return logged(
                close(error_page(StatusCode::BAD_REQUEST)),
                &method,
                &uri,
                remote,
                start,
            );
        }
    };

    let pre = match &version.prepared {
        Prepared::Handler(pre) => pre.clone(),
        Prepared::WasiHttp(pre) => {
            let pre = pre.clone();
            drop(router);
            let access = AccessLine {
                method: method.clone(),
                uri: uri.to_string(),
                remote,
                start,
            };
            return crate::proxy::serve(app.clone(), slot, version, pre, parts, body, access).await;
        }
        Prepared::Websocket(_) => unreachable!("websocket handled above"),
    };
    let settings = found.route.settings.clone();
    let data = RequestData::new(parts, body, remote.ip(), found.path_args, found.path_kwargs);
    drop(router);

    let (head_tx, mut head_rx) = oneshot::channel();
    let request_id = app.next_request_id();
    let access = AccessLine {
        method: method.clone(),
        uri: uri.to_string(),
        remote,
        start,
    };
    // The guest runs inside this request's future (no task hand-off, no
    // cross-thread wake-up). If it flushes, the head must reach hyper while
    // the guest keeps running: then the rest of the run moves to its own task.
    let mut guest = Box::pin(run(
        app.clone(),
        slot,
        version,
        pre,
        settings,
        data,
        head_tx,
        request_id,
        access,
    ));
    let head = tokio::select! {
        biased;
        head = &mut head_rx => {
            tokio::spawn(guest);
            head
        }
        () = &mut guest => head_rx.await,
    };
    // Without a head the run already logged why.
    head.unwrap_or_else(|_| error_page(StatusCode::INTERNAL_SERVER_ERROR))
}

/// What the access log needs, carried into the guest task.
pub(crate) struct AccessLine {
    pub(crate) method: Method,
    pub(crate) uri: String,
    pub(crate) remote: SocketAddr,
    pub(crate) start: Instant,
}

impl AccessLine {
    pub(crate) fn log(&self, status: u16) {
        access_log(status, &self.method, &self.uri, self.remote, self.start);
    }
}

/// Tornado's access log line: `200 GET /path (127.0.0.1) 0.52ms`.
pub fn access_log(status: u16, method: &Method, uri: &str, remote: SocketAddr, start: Instant) {
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let uri = crate::guest_log::sanitize(uri);
    let ip = remote.ip();
    if status >= 500 {
        tracing::error!(target: "waterspout::access", "{status} {method} {uri} ({ip}) {ms:.2}ms");
    } else if status >= 400 {
        tracing::warn!(target: "waterspout::access", "{status} {method} {uri} ({ip}) {ms:.2}ms");
    } else {
        tracing::info!(target: "waterspout::access", "{status} {method} {uri} ({ip}) {ms:.2}ms");
    }
}

fn logged(
    response: http::Response<Body>,
    method: &Method,
    uri: &http::Uri,
    remote: SocketAddr,
    start: Instant,
) -> http::Response<Body> {
    access_log(
        response.status().as_u16(),
        method,
        &uri.to_string(),
        remote,
        start,
    );
    response
}

/// Asks hyper to close the connection after this response (framing in doubt
/// or a body we chose not to read).
fn close(mut response: http::Response<Body>) -> http::Response<Body> {
    response
        .headers_mut()
        .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

/// The longest request target (path and query) served; longer ones get 414.
/// hyper alone only stops at its 64 KiB head buffer (431).
pub const MAX_URI_LEN: usize = 8 * 1024;

/// What hyper accepts but we refuse before routing (RFC 9112 §3.2, §6.1):
/// an over-long target (414), HTTP/1.1 without exactly one `Host` (400), and a
/// `Transfer-Encoding` other than a single `chunked` (400; hyper decodes
/// `gzip, chunked` or `chunked, chunked` as plain chunked, which a proxy in
/// front may read differently).
fn refuse_head<B>(req: &http::Request<B>) -> Option<StatusCode> {
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

/// How a guest run ended, when it did not end well.
enum Fault {
    Trap(wasmtime::Error),
    Timeout,
    /// No free slot in the engine's instance pool: the server is busy.
    PoolFull,
}

/// Whether `error` is wasmtime's pooling allocator refusing one more
/// instance (all `--max-instances` slots in use): the server is busy (503),
/// the guest is not at fault.
pub(crate) fn pool_full(error: &wasmtime::Error) -> bool {
    error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
}

/// Logs that the instance pool is full.
pub(crate) fn log_pool_full(tag: &Tag) {
    tracing::warn!(handler = %tag.handler, version = tag.version, request = tag.request_id,
        "no free instance slot in the pool (--max-instances); answering 503");
}

#[allow(clippy::too_many_arguments)]
async fn run(
    app: Arc<App>,
    slot: Arc<HandlerSlot>,
    version: Arc<HandlerVersion>,
    pre: HandlerPre<HostState>,
    settings: Vec<(String, String)>,
    data: RequestData,
    head_tx: oneshot::Sender<ResponseHead>,
    request_id: u64,
    access: AccessLine,
) {
    let limits = &slot.limits;
    let timeout = Duration::from_millis(limits.timeout_ms);
    let Some(_permit) = instance_permit(&slot, timeout).await else {
        tracing::warn!(handler = %slot.name, "no free instance within the time limit");
        let _ = head_tx.send(error_page(StatusCode::SERVICE_UNAVAILABLE));
        access.log(503);
        crate::metrics::request_done(&version, 503, access.start.elapsed());
        return;
    };
    let _instance = crate::metrics::instance_started(&version);
    let is_head = data.method == Method::HEAD;
    let (mut store, tag) = new_store(&app, &version, limits, request_id, |state| {
        state.response = Some(ResponseState::new(head_tx, is_head));
    });

    let outcome =
        match tokio::time::timeout(timeout, lifecycle(&mut store, &pre, &settings, data, &access)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) if store.data().timed_out => Err(Fault::Timeout),
            Ok(Err(e)) if pool_full(&e) => Err(Fault::PoolFull),
            Ok(Err(trap)) => Err(Fault::Trap(trap)),
            Err(_elapsed) => Err(Fault::Timeout),
        };
    let state = store.data_mut();
    let response = state.response.as_mut().expect("http instance has a response");
    match outcome {
        Ok(()) => {
            access.log(response.status());
            crate::metrics::request_done(&version, response.status(), access.start.elapsed());
        }
        Err(fault) => {
            let status = match &fault {
                Fault::PoolFull => {
                    log_pool_full(&tag);
                    StatusCode::SERVICE_UNAVAILABLE
                }
                Fault::Timeout => {
                    crate::metrics::timeout(&version);
                    tracing::error!(handler = %tag.handler, version = tag.version, request = tag.request_id,
                        "handler exceeded its time limit of {} ms", limits.timeout_ms);
                    StatusCode::SERVICE_UNAVAILABLE
                }
                Fault::Trap(trap) => {
                    crate::metrics::trap(&version);
                    let why = if state.limiter.memory_limit_hit {
                        format!("memory limit of {} MiB reached; ", limits.memory_limit_mb)
                    } else {
                        String::new()
                    };
                    tracing::error!(handler = %tag.handler, version = tag.version, request = tag.request_id,
                        "handler trapped: {why}{trap:#}");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            match response.take_unsent_head() {
                Some(head_tx) => {
                    let _ = head_tx.send(error_page(status));
                    access.log(status.as_u16());
                    crate::metrics::request_done(&version, status.as_u16(), access.start.elapsed());
                }
                None => {
                    response.abort().await;
                    access.log(response.status());
                    crate::metrics::request_done(&version, response.status(), access.start.elapsed());
                }
            }
        }
    }
}

/// A permit to run one more instance of `slot`. Waiting for one counts
/// against the time limit (the timer is only armed when there is a wait).
pub(crate) async fn instance_permit(slot: &HandlerSlot, timeout: Duration) -> Option<OwnedSemaphorePermit> {
    match slot.permits.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => tokio::time::timeout(timeout, slot.permits.clone().acquire_owned())
            .await
            .ok()?
            .ok(),
    }
}

/// A fresh store for one request (or WebSocket connection) of `version`:
/// its tag, memory limit, deadline and epoch yield; `setup` adds what the
/// kind of handler needs (response, websocket, outbound policy).
pub(crate) fn new_store(
    app: &App,
    version: &HandlerVersion,
    limits: &HandlerLimits,
    request_id: u64,
    setup: impl FnOnce(&mut HostState),
) -> (Store<HostState>, Tag) {
    let tag = Tag {
        handler: version.name.clone(),
        version: version.version,
        request_id,
    };
    let mut state = HostState::new(
        tag.clone(),
        (limits.memory_limit_mb as usize) << 20,
        Instant::now() + Duration::from_millis(limits.timeout_ms),
    );
    setup(&mut state);
    let mut store = Store::new(&app.wasm.engine, state);
    configure_store(&mut store);
    (store, tag)
}

/// Epoch deadline: every tick the guest yields to the event loop; after the
/// handler's time limit it traps.
pub fn configure_store(store: &mut Store<HostState>) {
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        if Instant::now() >= ctx.data().deadline {
            ctx.data_mut().timed_out = true;
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
    });
}

async fn lifecycle(
    store: &mut Store<HostState>,
    pre: &HandlerPre<HostState>,
    settings: &[(String, String)],
    mut data: RequestData,
    access: &AccessLine,
) -> wasmtime::Result<()> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let handler = instance.waterspout_handler_request_handler();
    handler.call_initialize(&mut *store, settings).await?;

    let body_error = data.parse_body().await.err();
    let method = data.method.clone();
    let req: Resource<RequestData> = store.data_mut().table.push(data)?;
    let borrow = || Resource::<RequestData>::new_borrow(req.rep());

    let outcome: Result<(), HttpError> = if let Some(e) = body_error {
        Err(HttpError {
            status: 400,
            reason: None,
            log_message: Some(e.to_string()),
        })
    } else if !is_supported(&method) {
        Err(HttpError {
            status: 405,
            reason: None,
            log_message: None,
        })
    } else {
        match handler.call_prepare(&mut *store, borrow()).await? {
            Err(e) => Err(e),
            Ok(()) if finished(store) => Ok(()),
            Ok(()) => {
                let call = match method {
                    Method::GET => handler.call_get(&mut *store, borrow()).await,
                    Method::HEAD => handler.call_head(&mut *store, borrow()).await,
                    Method::POST => handler.call_post(&mut *store, borrow()).await,
                    Method::PUT => handler.call_put(&mut *store, borrow()).await,
                    Method::DELETE => handler.call_delete(&mut *store, borrow()).await,
                    Method::PATCH => handler.call_patch(&mut *store, borrow()).await,
                    _ => handler.call_options(&mut *store, borrow()).await,
                };
                call?
            }
        }
    };

    if let Err(error) = outcome {
        send_error(store, handler, req.rep(), access, error).await?;
    }
    let response = response(store);
    if !response.is_finished() {
        let _ = response.finish().await;
    }
    handler.call_on_finish(&mut *store, borrow()).await?;
    Ok(())
}

/// Tornado's `send_error`: reset the response, set the status, let the guest
/// write the page. Once headers are out, all that is left is to finish.
async fn send_error(
    store: &mut Store<HostState>,
    handler: &RequestHandler,
    req: u32,
    access: &AccessLine,
    error: HttpError,
) -> wasmtime::Result<()> {
    if let Some(message) = &error.log_message {
        tracing::warn!(target: "waterspout::access", "{} {} {} ({}): {}", error.status, access.method,
            crate::guest_log::sanitize(&access.uri), access.remote.ip(), crate::guest_log::sanitize(message));
    }
    let response = response(store);
    if response.headers_sent() {
        tracing::error!("cannot send error response after headers written");
        if !response.is_finished() {
            let _ = response.finish().await;
        }
        return Ok(());
    }
    response.clear().ok();
    let (status, reason) = match response.set_status(error.status, error.reason.clone()) {
        Ok(()) => (error.status, error.reason),
        Err(_) => {
            tracing::error!(
                status = error.status,
                "handler returned an invalid HTTP status; sending 500"
            );
            response.set_status(500, None).ok();
            (500, None)
        }
    };
    let reason = reason.unwrap_or_else(|| {
        StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Unknown")
            .to_owned()
    });
    handler
        .call_write_error(&mut *store, Resource::new_borrow(req), status, &reason)
        .await
}

fn response(store: &mut Store<HostState>) -> &mut ResponseState {
    store
        .data_mut()
        .response
        .as_mut()
        .expect("http instance has a response")
}

fn finished(store: &mut Store<HostState>) -> bool {
    response(store).is_finished()
}

/// Tornado's `SUPPORTED_METHODS`.
fn is_supported(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::PATCH
            | Method::OPTIONS
    )
}
