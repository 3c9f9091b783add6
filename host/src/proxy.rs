//! Standard `wasi:http/proxy` components, served unchanged at their routes
//! (the same component `wasmtime serve` runs), under the same limits, logs,
//! metrics and hot swap as Waterspout handlers. Outbound requests are denied
//! unless the handler's `allowed_outbound_hosts` lists the host.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpHooks, WasiHttpView};

use crate::app::App;
use crate::body::Body;
use crate::dispatch::{AccessLine, instance_permit, new_store};
use crate::registry::{HandlerSlot, HandlerVersion};
use crate::response::error_page;
use crate::state::HostState;

/// Which outbound hosts a wasi:http guest may call (default: none).
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed_hosts: Arc<[String]>,
}

impl OutboundPolicy {
    pub fn new(allowed_hosts: &[String]) -> Self {
        OutboundPolicy {
            allowed_hosts: allowed_hosts.into(),
        }
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let with_port = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        self.allowed_hosts
            .iter()
            .any(|allowed| allowed == "*" || allowed == host || allowed == with_port)
    }
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        drop(fut);
        if !self.allows(request.uri()) {
            tracing::warn!(uri = %request.uri(), "outbound request denied (not in allowed_outbound_hosts)");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// Serves one request with a wasi:http component. The body was already read
/// (under the size limit) by the caller.
pub(crate) async fn serve(
    app: Arc<App>,
    slot: Arc<HandlerSlot>,
    version: Arc<HandlerVersion>,
    pre: ProxyPre<HostState>,
    parts: http::request::Parts,
    body: Bytes,
    access: AccessLine,
) -> http::Response<Body> {
    let (tx, mut rx) = oneshot::channel();
    let mut guest = Box::pin(run(app, slot, version, pre, parts, body, tx, access));
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

#[allow(clippy::too_many_arguments)]
async fn run(
    app: Arc<App>,
    slot: Arc<HandlerSlot>,
    version: Arc<HandlerVersion>,
    pre: ProxyPre<HostState>,
    parts: http::request::Parts,
    body: Bytes,
    head_tx: oneshot::Sender<http::Response<Body>>,
    access: AccessLine,
) {
    let limits = &slot.limits;
    let timeout = Duration::from_millis(limits.timeout_ms);
    let Some(_permit) = instance_permit(&slot, timeout).await else {
        let _ = head_tx.send(error_page(StatusCode::SERVICE_UNAVAILABLE));
        access.log(503);
        crate::metrics::request_done(&version, 503, access.start.elapsed());
        return;
    };
    let _instance = crate::metrics::instance_started(&version);
    let (mut store, tag) = new_store(&app, &version, limits, app.next_request_id(), |state| {
        state.http_hooks = OutboundPolicy::new(&limits.allowed_outbound_hosts);
    });

    let (response_tx, response_rx) = oneshot::channel();
    let request = http::Request::from_parts(
        parts,
        http_body_util::Full::new(body).map_err(|never| -> wasmtime_wasi_http::Error { match never {} }),
    );
    let call = async {
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(response_tx)?;
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    };
    // The head goes to hyper as soon as the guest sets it, body streaming after.
    // If the guest never sets it, the sender comes back for an error page.
    let forward = async move {
        match response_rx.await {
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                let _ = head_tx.send(response.map(outgoing_body));
                Ok(status)
            }
            Ok(Err(code)) => {
                tracing::warn!("wasi:http guest answered with an error: {code:?}");
                let _ = head_tx.send(error_page(StatusCode::INTERNAL_SERVER_ERROR));
                Ok(500)
            }
            Err(_) => Err(head_tx),
        }
    };
    let mut forward = Box::pin(forward);
    let mut forwarded = None;
    let outcome = {
        let call = tokio::time::timeout(timeout, call);
        tokio::pin!(call);
        loop {
            tokio::select! {
                f = &mut forward, if forwarded.is_none() => forwarded = Some(f),
                outcome = &mut call => break outcome,
            }
        }
    };
    let timed_out = outcome.is_err() || store.data().timed_out;
    // Dropping the store drops an unset response-outparam, ending `forward`.
    drop(store);
    let forwarded = match forwarded {
        Some(f) => f,
        None => forward.await,
    };
    let busy = matches!(&outcome, Ok(Err(e)) if crate::dispatch::pool_full(e));
    match &outcome {
        Ok(Ok(())) => {}
        _ if busy => crate::dispatch::log_pool_full(&tag),
        Ok(Err(trap)) if !timed_out => {
            crate::metrics::trap(&version);
            tracing::error!(handler = %tag.handler, version = tag.version, request = tag.request_id,
                "handler trapped: {trap:#}");
        }
        _ => {
            crate::metrics::timeout(&version);
            tracing::error!(handler = %tag.handler, version = tag.version, request = tag.request_id,
                "handler exceeded its time limit of {} ms", limits.timeout_ms);
        }
    }
    let status = match forwarded {
        Ok(status) => status,
        Err(head_tx) => {
            let status = match outcome {
                Ok(Ok(())) => {
                    tracing::error!(handler = %tag.handler, "wasi:http guest returned without a response");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                _ if timed_out || busy => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let _ = head_tx.send(error_page(status));
            status.as_u16()
        }
    };
    access.log(status);
    crate::metrics::request_done(&version, status, access.start.elapsed());
}

fn outgoing_body(body: HyperOutgoingBody) -> Body {
    body.map_err(|e| std::io::Error::other(e.to_string()))
        .boxed_unsync()
}
