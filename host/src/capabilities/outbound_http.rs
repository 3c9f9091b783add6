//! Capability `outbound-http` (wasi:http 0.2 `outgoing-handler` and
//! `types`, from wasmtime-wasi-http): outgoing requests from any component
//! that imports wasi:http, denied unless the handler's
//! `allowed_outbound_hosts` lists the host (none by default). A denied
//! request is the guest's `HttpRequestDenied` error, never a trap.

use http_body_util::BodyExt;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::services::AllowedHosts;

/// The outbound-http context of one instance: wasi:http's own context and
/// the handler's policy.
pub struct OutboundHttp {
    ctx: WasiHttpCtx,
    policy: OutboundPolicy,
}

impl Default for OutboundHttp {
    fn default() -> Self {
        OutboundHttp::new(OutboundPolicy::default())
    }
}

impl OutboundHttp {
    pub fn new(policy: OutboundPolicy) -> Self {
        OutboundHttp {
            ctx: WasiHttpCtx::new(),
            policy,
        }
    }

    /// The view wasmtime-wasi-http's host functions work through.
    pub fn view<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView {
            ctx: &mut self.ctx,
            table,
            hooks: &mut self.policy,
        }
    }
}

/// Links wasi:http's `types` and `outgoing-handler` (beside WASI, which
/// [`super::wasi`] links).
pub fn add_to_linker<T: WasiView + WasiHttpView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

/// Which outbound hosts a wasi:http guest may call (default: none): the
/// same matcher and list as the http-client service
/// ([`AllowedHosts`](crate::services::AllowedHosts)).
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed_hosts: AllowedHosts,
}

impl OutboundPolicy {
    pub fn new(allowed_hosts: &[String]) -> Self {
        OutboundPolicy {
            allowed_hosts: AllowedHosts::new(allowed_hosts),
        }
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        self.allowed_hosts.allows(host, port)
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
