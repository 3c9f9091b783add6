//! Per-instance store data: what one guest instance may touch, and the
//! `Host` trait impls of the handler world's imports (request, response, log).

use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::handler::waterspout::handler::{log, response, types};
use crate::bindings::{CookieOptions, LogLevel, UploadedFile, WitMethod};
use crate::guest_log::{GuestOutput, Tag};
use crate::request::RequestData;
use crate::response::ResponseState;

/// Limits one instance's linear memory and tables, and remembers whether the
/// limit was what stopped the guest (so the log can say so).
pub struct Limiter {
    pub memory_limit: usize,
    pub memory_limit_hit: bool,
}

/// Tables (function references) are capped as well; a guest creating
/// elements without end hits this.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> Result<bool> {
        if desired > self.memory_limit {
            self.memory_limit_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Host resources (streams, pollables, wasi:http fields…) one instance may
/// hold at once. wasmtime's default (1,000,000) would let one guest that
/// never drops its handles hold hundreds of MiB of host memory.
pub const MAX_RESOURCES: usize = 10_000;

/// The data of one store: one request (or one WebSocket connection).
pub struct HostState {
    /// Built on the first WASI call: most requests make none (seeding its
    /// random sources and boxing its streams is a tenth of a request).
    pub wasi: Option<WasiCtx>,
    pub table: ResourceTable,
    pub limiter: Limiter,
    pub tag: Tag,
    /// The handler's time limit ends here; the epoch callback traps after it.
    pub deadline: Instant,
    pub timed_out: bool,
    /// The HTTP response under construction (None for WebSocket instances).
    pub response: Option<ResponseState>,
    /// The WebSocket connection's outbound side (None for HTTP instances).
    pub websocket: Option<crate::websocket::Outbound>,
    /// wasi:http state (used by `wasi:http/proxy` components only).
    pub http: WasiHttpCtx,
    pub http_hooks: crate::proxy::OutboundPolicy,
}

impl HostState {
    pub fn new(tag: Tag, memory_limit: usize, deadline: Instant) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        HostState {
            wasi: None,
            table,
            limiter: Limiter {
                memory_limit,
                memory_limit_hit: false,
            },
            tag,
            deadline,
            timed_out: false,
            response: None,
            websocket: None,
            http: WasiHttpCtx::new(),
            http_hooks: crate::proxy::OutboundPolicy::default(),
        }
    }

    fn response(&mut self) -> Result<&mut ResponseState> {
        self.response
            .as_mut()
            .ok_or_else(|| wasmtime::format_err!("no response in this context"))
    }

    fn request(&self, r: &Resource<RequestData>) -> Result<&RequestData> {
        Ok(self.table.get(r)?)
    }
}

/// WASI with nothing granted: no files, env, args or sockets; the guest's
/// stdout and stderr go to the host log.
fn wasi_ctx(tag: &Tag) -> WasiCtx {
    WasiCtx::builder()
        .stdout(GuestOutput::new(tag.clone(), "stdout"))
        .stderr(GuestOutput::new(tag.clone(), "stderr"))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let tag = &self.tag;
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| wasi_ctx(tag)),
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl types::Host for HostState {}

impl types::HostRequest for HostState {
    async fn method(&mut self, r: Resource<RequestData>) -> Result<WitMethod> {
        Ok(self.request(&r)?.wit_method())
    }
    async fn method_name(&mut self, r: Resource<RequestData>) -> Result<String> {
        Ok(self.request(&r)?.method.as_str().to_owned())
    }
    async fn uri(&mut self, r: Resource<RequestData>) -> Result<String> {
        Ok(self.request(&r)?.target().to_owned())
    }
    async fn path(&mut self, r: Resource<RequestData>) -> Result<String> {
        Ok(self.request(&r)?.path().to_owned())
    }
    async fn query(&mut self, r: Resource<RequestData>) -> Result<String> {
        Ok(self.request(&r)?.query().to_owned())
    }
    async fn version(&mut self, r: Resource<RequestData>) -> Result<String> {
        Ok(self.request(&r)?.version.to_owned())
    }
    async fn host(&mut self, r: Resource<RequestData>) -> Result<String> {
        Ok(self.request(&r)?.host())
    }
    async fn remote_ip(&mut self, r: Resource<RequestData>) -> Result<String> {
        Ok(self.request(&r)?.remote_ip.to_string())
    }
    async fn protocol(&mut self, r: Resource<RequestData>) -> Result<String> {
        Ok(self.request(&r)?.protocol.to_owned())
    }
    async fn headers(&mut self, r: Resource<RequestData>) -> Result<Vec<(String, String)>> {
        Ok(self.request(&r)?.header_list())
    }
    async fn header(&mut self, r: Resource<RequestData>, name: String) -> Result<Option<String>> {
        Ok(self.request(&r)?.header(&name))
    }
    async fn cookies(&mut self, r: Resource<RequestData>) -> Result<Vec<(String, String)>> {
        Ok(self.request(&r)?.cookies())
    }
    async fn cookie(&mut self, r: Resource<RequestData>, name: String) -> Result<Option<String>> {
        Ok(self.request(&r)?.cookie(&name))
    }
    async fn body(&mut self, r: Resource<RequestData>) -> Result<Vec<u8>> {
        Ok(self.request(&r)?.body.to_vec())
    }
    async fn arguments(&mut self, r: Resource<RequestData>, name: String) -> Result<Vec<String>> {
        Ok(self.request(&r)?.argument_values(&name))
    }
    async fn query_arguments(&mut self, r: Resource<RequestData>, name: String) -> Result<Vec<String>> {
        Ok(self.request(&r)?.query_values(&name))
    }
    async fn body_arguments(&mut self, r: Resource<RequestData>, name: String) -> Result<Vec<String>> {
        Ok(self.request(&r)?.body_values(&name))
    }
    async fn argument_names(&mut self, r: Resource<RequestData>) -> Result<Vec<String>> {
        Ok(self.request(&r)?.argument_names())
    }
    async fn files(&mut self, r: Resource<RequestData>) -> Result<Vec<UploadedFile>> {
        Ok(self.request(&r)?.files.clone())
    }
    async fn path_args(&mut self, r: Resource<RequestData>) -> Result<Vec<String>> {
        Ok(self.request(&r)?.path_args.clone())
    }
    async fn path_kwargs(&mut self, r: Resource<RequestData>) -> Result<Vec<(String, String)>> {
        Ok(self.request(&r)?.path_kwargs.clone())
    }
    async fn drop(&mut self, r: Resource<RequestData>) -> Result<()> {
        // Requests are owned by the host; the guest only ever borrows them.
        if r.owned() {
            self.table.delete(r)?;
        }
        Ok(())
    }
}

impl log::Host for HostState {
    async fn log(&mut self, level: LogLevel, message: String) -> Result<()> {
        let level = match level {
            LogLevel::Trace => tracing::Level::TRACE,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        };
        crate::guest_log::emit(&self.tag, level, "log", &message);
        Ok(())
    }
}

/// Maps a refused response call to the guest's `result` error string.
fn refused<T>(r: std::result::Result<T, crate::response::ResponseError>) -> std::result::Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl response::Host for HostState {
    async fn set_status(
        &mut self,
        status: u16,
        reason: Option<String>,
    ) -> Result<std::result::Result<(), String>> {
        Ok(refused(self.response()?.set_status(status, reason)))
    }
    async fn get_status(&mut self) -> Result<u16> {
        Ok(self.response()?.status())
    }
    async fn set_header(&mut self, name: String, value: String) -> Result<std::result::Result<(), String>> {
        Ok(refused(self.response()?.set_header(&name, &value)))
    }
    async fn add_header(&mut self, name: String, value: String) -> Result<std::result::Result<(), String>> {
        Ok(refused(self.response()?.add_header(&name, &value)))
    }
    async fn clear_header(&mut self, name: String) -> Result<()> {
        self.response()?.clear_header(&name);
        Ok(())
    }
    async fn write(&mut self, chunk: Vec<u8>) -> Result<std::result::Result<(), String>> {
        Ok(refused(self.response()?.write(&chunk)))
    }
    async fn flush(&mut self) -> Result<std::result::Result<(), String>> {
        Ok(refused(self.response()?.flush().await))
    }
    async fn finish(&mut self) -> Result<std::result::Result<(), String>> {
        Ok(refused(self.response()?.finish().await))
    }
    async fn finished(&mut self) -> Result<bool> {
        Ok(self.response()?.is_finished())
    }
    async fn clear(&mut self) -> Result<std::result::Result<(), String>> {
        Ok(refused(self.response()?.clear()))
    }
    async fn redirect(
        &mut self,
        url: String,
        status: Option<u16>,
    ) -> Result<std::result::Result<(), String>> {
        let response = self.response()?;
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
    ) -> Result<std::result::Result<(), String>> {
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
        Ok(refused(self.response()?.set_cookie(cookie)))
    }
    async fn clear_cookie(
        &mut self,
        name: String,
        path: Option<String>,
        domain: Option<String>,
    ) -> Result<()> {
        let mut cookie = cookie::Cookie::new(name, "");
        cookie.set_path(path.unwrap_or_else(|| "/".to_owned()));
        if let Some(domain) = domain {
            cookie.set_domain(domain);
        }
        cookie.make_removal();
        // A removal cookie is always valid.
        let _ = self.response()?.set_cookie(cookie);
        Ok(())
    }
}
