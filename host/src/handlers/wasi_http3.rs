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
use crate::runtime::{Guest, HostState, Warm};

/// Serves one request with a wasi:http 0.3 component. The body was already
/// read (under the size limit) by the edge.
pub(super) async fn serve(
    app: Arc<App>,
    target: Target,
    pre: ServicePre<HostState>,
    parts: http::request::Parts,
    body: Bytes,
) -> http::Response<Body> {
    let (tx, mut rx) = oneshot::channel();
    let mut guest = Box::pin(run(app, target, pre, parts, body, tx));
    // Inline like Waterspout handlers; once the response head is out while
    // the guest still streams the body, the rest of the run gets its own task.
    tokio::select! {
        biased;
        head = &mut rx => {
            tokio::spawn(guest);
            head.unwrap_or_else(|_| error_page(StatusCode::INTERNAL_SERVER_ERROR))
        }
        () = &mut guest => rx.await.unwrap_or_else(|_| error_page(StatusCode::INTERNAL_SERVER_ERROR)),
    }
}

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
    let start = Instant::now();
    let Target { slot, version, .. } = target;
    let admitted = Guest::admit_reusing(app.engine(), &slot, version.clone(), app.next_request_id()).await;
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
    // The head goes to hyper as soon as the guest returns it, the body
    // streaming after. If the guest never answers, the sender comes back for
    // an error page.
    let forward = async move {
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
    };
    let mut forward = Box::pin(forward);
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
                    let (done_tx, done_rx) = oneshot::channel();
                    let response = response.map(|body| {
                        Watched {
                            inner: body,
                            done: Some(done_tx),
                        }
                        .map_err(|e| std::io::Error::other(e.to_string()))
                        .boxed_unsync()
                    });
                    let _ = answer_tx.send(Ok(response));
                    Ok(done_rx.await.unwrap_or(false))
                })
                .await??;
            Ok(clean.then_some(service))
        });
        tokio::pin!(call);
        loop {
            tokio::select! {
                f = &mut forward, if forwarded.is_none() => forwarded = Some(f),
                outcome = &mut call => break outcome,
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
    super::wasi_http_status(forwarded, outcome, &version, start);
}

/// The request's URI as the guest sees it: `http://HOST/path?query` (from
/// the Host header, as wasi:http 0.2 guests see it), unless the client sent
/// an absolute URI (HTTP/2) or no usable Host header.
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
    if let Ok(uri) = http::Uri::builder()
        .scheme(http::uri::Scheme::HTTP)
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
struct Watched<B> {
    inner: B,
    done: Option<oneshot::Sender<bool>>,
}

impl<B: HttpBody + Unpin> HttpBody for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(done) = self.done.take() {
                    let _ = done.send(true);
                }
            }
            Poll::Ready(Some(Err(_))) => self.done = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
