//! Standard `wasi:http/service` components of WASI 0.3 (p3), served
//! unchanged at their routes beside wasi:http 0.2 ones ([`super::wasi_http`]),
//! under the same limits, logs, metrics and hot swap. Outbound requests go
//! through the same policy (the `outbound_http` context; denied unless
//! allowed).
//!
//! Each request gets a fresh instance by default (as for 0.2); with
//! `reuse = N` on the handler an instance that answered cleanly serves up to
//! N requests one after another (what it keeps in memory lasts between
//! them). Requests never share an instance at the same time: one store, one
//! request, one permit of `max_instances` (p3 would allow several requests
//! on one instance at once; not done here).
//!
//! `handle` is called inside the store's `run_concurrent` event loop, the
//! response head goes to hyper as soon as the guest returns it, and the
//! event loop keeps running while hyper reads the body, which the guest
//! usually writes from a task of its own after returning. The whole run,
//! body included, is one `Guest::call`: its wall-clock timeout is enforced
//! outside `run_concurrent` (wasmtime#11869: expiry futures inside it may
//! not be polled), its epoch deadline bounds CPU time inside.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::oneshot;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

use super::Target;
use crate::app::App;
use crate::body::{Body, error_page};
use crate::capabilities::outbound_http::{OutboundHttp, OutboundPolicy};
use crate::client::Client;
use crate::runtime::{Ended, Fault, Guest, HostState, Job, Warm};

/// Serves one request with a wasi:http 0.3 component. The body was already
/// read (under the size limit) by the edge.
pub(super) async fn serve(
    app: Arc<App>,
    target: Target,
    pre: ServicePre<HostState>,
    parts: http::request::Parts,
    body: Bytes,
) -> http::Response<Body> {
    let (tx, rx) = oneshot::channel();
    super::inline_until_head(run(app, target, pre, parts, body, tx), rx).await
}

/// What tells the request's body went to the guest whole (or failed).
type RequestIo = Pin<Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send + 'static>>;

/// What the guest answered: a response whose body hyper now reads, or an
/// `error-code` instead of one.
type Answer = Result<http::Response<Body>, ErrorCode>;

async fn run(
    app: Arc<App>,
    target: Target,
    pre: ServicePre<HostState>,
    parts: http::request::Parts,
    body: Bytes,
    head_tx: oneshot::Sender<http::Response<Body>>,
) {
    if target.slot.limits.concurrency > 1 {
        return run_shared(app, target, pre, parts, body, head_tx).await;
    }
    let start = Instant::now();
    let Target { slot, version, .. } = target;
    let admitted = Guest::admit_reusing(&slot, version.clone(), app.next_request_id()).await;
    let (mut guest, reused) = match admitted {
        Ok(admitted) => admitted,
        Err(fault) => return super::refuse(head_tx, &version, &fault, start),
    };
    guest.ctx().outbound_http = OutboundHttp::new(OutboundPolicy::new(&slot.limits.allowed_outbound_hosts));

    let request = http::Request::from_parts(
        with_scheme_and_authority(parts),
        http_body_util::Full::new(body).map_err(|never| -> wasmtime_wasi_http::Error { match never {} }),
    );
    let (answer_tx, answer_rx) = oneshot::channel::<Answer>();
    let mut forward = Box::pin(forward(answer_rx, head_tx));
    let mut forwarded = None;
    let outcome = {
        let call = guest.call("request", async |store| {
            let hooks = store.data_mut().http().hooks;
            let (request, request_io) = wasmtime_wasi_http::p3::Request::from_http(hooks, request);
            let service = match reused {
                Some(Warm::WasiHttp3(service)) => service,
                _ => pre.instantiate_async(&mut *store).await?,
            };
            let clean = store
                .run_concurrent(async |accessor| -> wasmtime::Result<bool> {
                    let response = match service.handle(accessor, request).await? {
                        Ok(response) => response,
                        Err(code) => {
                            let _ = answer_tx.send(Err(code));
                            return Ok(false);
                        }
                    };
                    let response = accessor.with(|mut store| response.into_http(&mut store, request_io))?;
                    // Keep the event loop running (the guest writing the
                    // body) until hyper has read the body or dropped it.
                    let (response, done_rx) = watched(response);
                    let _ = answer_tx.send(Ok(response));
                    Ok(done_rx.await.unwrap_or(false))
                })
                .await??;
            Ok(clean.then_some(service))
        });
        tokio::pin!(call);
        loop {
            // The call first: the guest's answer then reaches `forward`
            // (and the head hyper) within the same poll.
            tokio::select! {
                biased;
                outcome = &mut call => break outcome,
                f = &mut forward, if forwarded.is_none() => forwarded = Some(f),
            }
        }
    };
    // An instance that answered and whose body was read to its end may
    // serve again (`reuse = N`); any other is dropped with its store, which
    // drops an unanswered call and ends `forward`.
    let outcome = match outcome {
        Ok(Some(service)) => {
            guest.recycle(service, slot.limits.reuse);
            Ok(())
        }
        Ok(None) => {
            drop(guest);
            Ok(())
        }
        Err(fault) => {
            drop(guest);
            Err(fault)
        }
    };
    let forwarded = match forwarded {
        Some(f) => f,
        None => forward.await,
    };
    super::wasi_http_status(
        forwarded,
        outcome.map_err(|fault| fault.status()),
        &version,
        start,
    );
}

/// Serves one request on a shared instance (`concurrency` > 1): the same
/// steps as [`run`], as a job for `runtime::run_shared`, which picks the
/// instance and stops it when a request of it runs past its time limit.
async fn run_shared(
    app: Arc<App>,
    target: Target,
    pre: ServicePre<HostState>,
    parts: http::request::Parts,
    body: Bytes,
    head_tx: oneshot::Sender<http::Response<Body>>,
) {
    let start = Instant::now();
    let Target { slot, version, .. } = target;
    let request = http::Request::from_parts(
        with_scheme_and_authority(parts),
        http_body_util::Full::new(body).map_err(|never| -> wasmtime_wasi_http::Error { match never {} }),
    );
    let (answer_tx, answer_rx) = oneshot::channel::<Answer>();
    let job = crate::runtime::job(move |accessor, service| {
        Box::pin(async move {
            let (request, request_io) = accessor.with(|mut access| -> (_, RequestIo) {
                let hooks = access.data_mut().http().hooks;
                let (request, io) = wasmtime_wasi_http::p3::Request::from_http(hooks, request);
                // Boxed: the opaque future would borrow `access` (2024 capture rules).
                (request, Box::pin(io))
            });
            let response = match service.handle(accessor, request).await? {
                Ok(response) => response,
                Err(code) => {
                    let _ = answer_tx.send(Err(code));
                    return Ok(false);
                }
            };
            let response = accessor.with(|mut store| response.into_http(&mut store, request_io))?;
            let (response, done_rx) = watched(response);
            let _ = answer_tx.send(Ok(response));
            Ok(done_rx.await.unwrap_or(false))
        })
    });
    let ended = match run_shared_job(&app, &slot, version.clone(), pre, job).await {
        Ok(ended) => ended,
        Err(fault) => return super::refuse(head_tx, &version, &fault, start),
    };
    let forwarded = forward(answer_rx, head_tx).await;
    let outcome = ended.await.unwrap_or(Err(StatusCode::INTERNAL_SERVER_ERROR));
    super::wasi_http_status(forwarded, outcome, &version, start);
}

async fn run_shared_job(
    app: &App,
    slot: &crate::registry::HandlerSlot<crate::runtime::HandlerVersion>,
    version: Arc<crate::runtime::HandlerVersion>,
    pre: ServicePre<HostState>,
    job: Job,
) -> Result<Ended, Fault> {
    crate::runtime::run_shared(slot, version, pre, app.next_request_id(), job).await
}

/// Forwards the guest's answer: its head goes to hyper as soon as the guest
/// returns it, the body streaming after. If the guest never answers, the
/// sender comes back for an error page.
async fn forward(
    answer_rx: oneshot::Receiver<Answer>,
    head_tx: oneshot::Sender<http::Response<Body>>,
) -> Result<u16, oneshot::Sender<http::Response<Body>>> {
    match answer_rx.await {
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            let _ = head_tx.send(response);
            Ok(status)
        }
        Ok(Err(code)) => {
            tracing::warn!("wasi:http 0.3 guest answered with an error: {code:?}");
            let _ = head_tx.send(error_page(StatusCode::INTERNAL_SERVER_ERROR));
            Ok(500)
        }
        Err(_) => Err(head_tx),
    }
}

/// The guest's response with its body [`Watched`], and the receiver told
/// when hyper has read the body to its end (`true`) or dropped it.
fn watched<B>(response: http::Response<B>) -> (http::Response<Body>, oneshot::Receiver<bool>)
where
    B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display,
{
    let (done_tx, done_rx) = oneshot::channel();
    let response = response.map(|body| {
        Watched {
            inner: body,
            done: Some(done_tx),
        }
        .boxed_unsync()
    });
    (response, done_rx)
}

/// The request's URI as the guest sees it: `http://HOST/path?query` (from
/// the Host header, as wasi:http 0.2 guests see it; `https` when the client
/// came over TLS or a trusted proxy says so), unless the client sent an
/// absolute URI (HTTP/2) or no usable Host header.
fn with_scheme_and_authority(mut parts: http::request::Parts) -> http::request::Parts {
    if parts.uri.authority().is_some() {
        return parts;
    }
    let Some(authority) = parts
        .headers
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.parse::<http::uri::Authority>().ok())
    else {
        return parts;
    };
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let scheme = match parts.extensions.get::<Client>() {
        Some(client) if client.protocol == "https" => http::uri::Scheme::HTTPS,
        _ => http::uri::Scheme::HTTP,
    };
    if let Ok(uri) = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path)
        .build()
    {
        parts.uri = uri;
    }
    parts
}

/// A response body that tells when it ended (`true`: read to its end) or
/// failed or was dropped by hyper (`false`, by dropping `done`): until then
/// the guest's event loop keeps running.
///
/// A body whose run was cut (its time limit, a trap) fails instead of
/// ending: wasmtime's guest body ends cleanly when the store that would
/// have written its trailers is dropped, which would tell the client that a
/// truncated body was whole. The run waits for `done` until the body ends,
/// so a body that ends while `done` has no receiver any more was cut.
struct Watched<B> {
    inner: B,
    done: Option<oneshot::Sender<bool>>,
}

impl<B: HttpBody + Unpin> HttpBody for Watched<B>
where
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => match self.done.take() {
                Some(done) if done.is_closed() => Poll::Ready(Some(Err(std::io::Error::other(
                    "the guest's run ended before its response body: the body is cut",
                )))),
                Some(done) => {
                    let _ = done.send(true);
                    Poll::Ready(None)
                }
                None => Poll::Ready(None),
            },
            Poll::Ready(Some(Err(e))) => {
                self.done = None;
                Poll::Ready(Some(Err(std::io::Error::other(e.to_string()))))
            }
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
