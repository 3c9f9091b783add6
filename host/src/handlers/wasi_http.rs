//! Standard `wasi:http/proxy` components, served unchanged at their routes
//! (the same component `wasmtime serve` runs), under the same limits, logs,
//! metrics and hot swap as Waterspout handlers. Outbound requests go through
//! the `outbound_http` capability (denied unless allowed).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::Target;
use crate::app::App;
use crate::body::{Body, error_page};
use crate::client::Client;
use crate::runtime::{Admission, Guest, HostState};

/// Serves one request with a wasi:http component. The body was already read
/// (under the size limit) by the edge.
pub(super) async fn serve(
    app: Arc<App>,
    target: Target,
    pre: ProxyPre<HostState>,
    parts: http::request::Parts,
    body: Bytes,
) -> http::Response<Body> {
    let (tx, rx) = oneshot::channel();
    super::inline_until_head(run(app, target, pre, parts, body, tx), rx).await
}

async fn run(
    app: Arc<App>,
    target: Target,
    pre: ProxyPre<HostState>,
    parts: http::request::Parts,
    body: Bytes,
    head_tx: oneshot::Sender<http::Response<Body>>,
) {
    let start = Instant::now();
    let Target { slot, version, .. } = target;
    let admitted = Guest::admit(&slot, version.clone(), app.next_request_id(), Admission::Wait).await;
    let mut guest = match admitted {
        Ok(guest) => guest,
        Err(fault) => return super::refuse(head_tx, &version, &fault, start),
    };

    let (response_tx, response_rx) = oneshot::channel::<
        Result<http::Response<HyperOutgoingBody>, wasmtime_wasi_http::p2::bindings::http::types::ErrorCode>,
    >();
    let scheme = match parts.extensions.get::<Client>() {
        Some(client) if client.protocol == "https" => Scheme::Https,
        _ => Scheme::Http,
    };
    let request = http::Request::from_parts(
        parts,
        http_body_util::Full::new(body).map_err(|never| -> wasmtime_wasi_http::Error { match never {} }),
    );
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
        let call = guest.call("request", async |store| {
            let req = store.data_mut().http().new_incoming_request(scheme, request)?;
            let out = store.data_mut().http().new_response_outparam(response_tx)?;
            let proxy = pre.instantiate_async(&mut *store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, req, out)
                .await
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
    // Dropping the store drops an unset response-outparam, ending `forward`.
    drop(guest);
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

fn outgoing_body(body: HyperOutgoingBody) -> Body {
    body.map_err(|e| std::io::Error::other(e.to_string()))
        .boxed_unsync()
}
