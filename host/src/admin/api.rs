//! The admin API: upload, list, activate, roll back and delete handler
//! versions, read and replace the route table, and Prometheus `/metrics`.
//!
//! It listens on its own address (127.0.0.1:8889 by default, never the public
//! port unless configured so), and every call carries `Authorization: Bearer
//! TOKEN`, compared in constant time. Without a configured token the admin
//! API is off. JSON in and out; an error is `{"error": "..."}` with a message
//! saying what to do. The endpoints are documented in `docs/admin-api.md`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Serialize;

use super::console::{self, Console};
use crate::app::App;
use crate::config::AdminToken;
use crate::deploy::{Deployer, RouteDoc, Source, SwapError};
use crate::server::ServerHandle;
use crate::server::Tls;
use crate::server::listener::{Service, Settings};

/// Largest JSON body the admin API reads (a route table).
const MAX_JSON_BODY: usize = 1 << 20;

/// The running admin listener.
pub struct AdminHandle(ServerHandle);

impl AdminHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Stops accepting and lets calls in flight finish.
    pub async fn shutdown(self) {
        self.0.shutdown().await;
    }
}

/// Connections the admin listener serves at once; more are refused.
const MAX_CONNECTIONS: usize = 64;

/// Starts the admin API on `app.config().admin_listen` if a token is
/// configured; otherwise logs that it is off and returns `None`. It runs on
/// the same listener code as the app (one worker thread, its own cap).
pub async fn start(app: Arc<App>) -> std::io::Result<Option<AdminHandle>> {
    let config = app.config();
    let Some(token) = config.admin_token.clone() else {
        tracing::info!(
            "admin API off: no admin token configured (set --admin-token or WATERSPOUT_ADMIN_TOKEN to turn it on)"
        );
        return Ok(None);
    };
    let listen = config.admin_listen;
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("binding the admin API to {listen}: {e} (choose another with --admin-listen)"),
        )
    })?;
    let local_addr = listener.local_addr()?;
    let tls = config.admin_tls.as_ref().map(Tls::load).transpose()?;
    if !local_addr.ip().is_loopback() && tls.is_none() {
        tracing::warn!(
            "the admin API listens on {local_addr}, beyond loopback: its token travels in clear text unless a TLS proxy is in front"
        );
    }
    crate::metrics::install();
    let settings = Settings {
        name: "admin",
        workers: 1,
        max_connections: MAX_CONNECTIONS,
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        shutdown_grace: config.shutdown_grace,
        gauges: false,
        // hyper's default (~408 KiB): an upload refused before it is read (401, 413)
        // is drained, up to this much, so the client gets the answer.
        read_buffer: 8192 + 4096 * 100,
        tls,
    };
    let scheme = if settings.tls.is_some() { "https" } else { "http" };
    let console = Console::new();
    let stop_streams = console.stop.clone();
    let service = Arc::new(Admin { app, token, console });
    // The console's event streams never end by themselves: stop them
    // before the listener drains its connections.
    let before_drain = async move { stop_streams.cancel() };
    let handle = crate::server::listener::start(listener, settings, service, before_drain)?;
    tracing::info!("admin API on {scheme}://{local_addr}");
    Ok(Some(AdminHandle(handle)))
}

/// The admin API as a listener's service.
struct Admin {
    app: Arc<App>,
    token: AdminToken,
    /// The dashboard at `/` and its sessions.
    console: Console,
}

impl Service for Admin {
    type Body = console::Body;

    async fn call(self: Arc<Self>, req: Request<Incoming>, remote: SocketAddr) -> Response<console::Body> {
        if console::owns(req.uri().path()) {
            let start = Instant::now();
            let (method, path) = (req.method().clone(), req.uri().path().to_owned());
            let response = console::serve(self.app.clone(), &self.token, &self.console, req).await;
            access_line(start, &method, &path, response.status().as_u16(), remote);
            return response;
        }
        handle(self.app.clone(), &self.token, &self.console, req, remote)
            .await
            .map(BodyExt::boxed)
    }
}

/// An admin API error: a status and a message for a person.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    /// Close the connection after answering (a body we did not read).
    close: bool,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            close: false,
        }
    }
}

impl From<SwapError> for ApiError {
    fn from(e: SwapError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, crate::text::report(&e))
    }
}

type AdminResponse = Response<Full<Bytes>>;

async fn handle(
    app: Arc<App>,
    token: &AdminToken,
    console: &Console,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> AdminResponse {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = match route(app, token, console, req).await {
        Ok(response) => response,
        Err(e) => {
            let mut response = json(e.status, &serde_json::json!({ "error": e.message }));
            if e.status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"waterspout-admin\""),
                );
            }
            if e.close {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    };
    access_line(start, &method, &path, response.status().as_u16(), remote);
    response
}

/// The admin access log: one line per call.
fn access_line(start: Instant, method: &Method, path: &str, status: u16, remote: SocketAddr) {
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let path = crate::text::sanitize(path);
    let ip = remote.ip();
    if status >= 400 {
        tracing::warn!(target: "waterspout::admin", "{status} {method} {path} ({ip}) {ms:.2}ms");
    } else {
        tracing::info!(target: "waterspout::admin", "{status} {method} {path} ({ip}) {ms:.2}ms");
    }
}

/// At most this much of a refused request's body is read and dropped.
const DRAIN_LIMIT: usize = 1 << 20;

/// Reads and drops what is left of a refused request's body (up to
/// [`DRAIN_LIMIT`], for at most a second). Closing a socket with unread data
/// resets the connection, and the client may then lose the answer before it
/// reads it; a drained connection stays open for the next request. Returns
/// whether the whole body was read (if not, the connection must close).
async fn drain(body: Incoming) -> bool {
    let read = http_body_util::Limited::new(body, DRAIN_LIMIT).collect();
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(1), read).await,
        Ok(Ok(_))
    )
}

fn authorize(token: &AdminToken, console: &Console, req: &Request<Incoming>) -> Result<(), ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    // The console's session (cookie, plus the CSRF token on a change) stands
    // in for the bearer token when no Authorization header is sent.
    if !req.headers().contains_key(header::AUTHORIZATION) {
        match console::session_allows(console, req) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(message) => return Err(ApiError::new(StatusCode::FORBIDDEN, message)),
        }
    }
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "missing admin token: send `Authorization: Bearer TOKEN` with the server's admin token (--admin-token / WATERSPOUT_ADMIN_TOKEN)",
        ));
    };
    let value = value.to_str().unwrap_or("");
    let presented = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => {
            return Err(unauthorized(
                "malformed Authorization header: expected `Bearer TOKEN`",
            ));
        }
    };
    if token.matches(presented) {
        Ok(())
    } else {
        Err(unauthorized("wrong admin token"))
    }
}

async fn route(
    app: Arc<App>,
    token: &AdminToken,
    console: &Console,
    req: Request<Incoming>,
) -> Result<AdminResponse, ApiError> {
    // Authenticate before anything else, so a caller without the token
    // learns nothing (not even which endpoints exist).
    if let Err(mut refused) = authorize(token, console, &req) {
        // An upload without the token is refused before its body is read;
        // the rest of it is read and dropped, so the answer reaches the client.
        refused.close = !drain(req.into_body()).await;
        return Err(refused);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let wait = cluster_wait(req.uri().query())?;
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let not_allowed = |allow: &'static str| {
        let mut e = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path} (allowed: {allow})"),
        );
        e.close = method == Method::POST || method == Method::PUT;
        Err(e)
    };
    match segments.as_slice() {
        ["handlers"] => match method {
            Method::GET => Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "handlers": app.deployer().handler_infos() }),
            )),
            _ => not_allowed("GET"),
        },
        ["handlers", name] => match method {
            Method::GET => {
                let info = app
                    .deployer()
                    .handler_infos()
                    .into_iter()
                    .find(|h| h.name == *name)
                    .ok_or_else(|| SwapError::UnknownHandler((*name).to_owned()))?;
                Ok(json(StatusCode::OK, &info))
            }
            Method::DELETE => {
                let name = (*name).to_owned();
                run(app.deployer().clone(), move |app| async move {
                    app.delete_handler(&name).await
                })
                .await?;
                Ok(json(
                    StatusCode::OK,
                    &with_cluster(&app, serde_json::json!({ "deleted": segments[1] }), wait).await,
                ))
            }
            _ => not_allowed("GET, DELETE"),
        },
        ["handlers", name, "versions"] => match method {
            Method::GET => {
                let versions = app.deployer().version_infos(name)?;
                let active = versions.iter().find(|v| v.active).map(|v| v.version);
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "handler": name, "active_version": active, "versions": versions }),
                ))
            }
            Method::POST => upload(app, name, req, wait).await,
            _ => not_allowed("GET, POST"),
        },
        ["handlers", name, "versions", version] => {
            let version = parse_version(version)?;
            match method {
                Method::GET => {
                    let info = app
                        .deployer()
                        .version_infos(name)?
                        .into_iter()
                        .find(|v| v.version == version)
                        .ok_or_else(|| SwapError::UnknownVersion {
                            handler: (*name).to_owned(),
                            version,
                        })?;
                    Ok(json(StatusCode::OK, &info))
                }
                Method::DELETE => {
                    let name = (*name).to_owned();
                    run(app.deployer().clone(), move |app| async move {
                        app.delete_version(&name, version).await
                    })
                    .await?;
                    Ok(json(
                        StatusCode::OK,
                        &serde_json::json!({ "deleted": { "handler": segments[1], "version": version } }),
                    ))
                }
                _ => not_allowed("GET, DELETE"),
            }
        }
        ["handlers", name, "versions", version, "activate"] => {
            let version = parse_version(version)?;
            if method != Method::POST {
                return not_allowed("POST");
            }
            let name = (*name).to_owned();
            let info = run(app.deployer().clone(), move |app| async move {
                app.activate(&name, version).await
            })
            .await?;
            Ok(json(
                StatusCode::OK,
                &with_cluster(&app, to_value(&info), wait).await,
            ))
        }
        ["handlers", name, "rollback"] => {
            if method != Method::POST {
                return not_allowed("POST");
            }
            let name = (*name).to_owned();
            let info = run(app.deployer().clone(), move |app| async move {
                app.rollback(&name).await
            })
            .await?;
            Ok(json(
                StatusCode::OK,
                &with_cluster(&app, to_value(&info), wait).await,
            ))
        }
        ["routes"] => match method {
            Method::GET => Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "routes": app.deployer().route_docs() }),
            )),
            Method::PUT => {
                let body = read_json_body(req).await?;
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct RouteTable {
                    routes: Vec<RouteDoc>,
                }
                let table: RouteTable = serde_json::from_slice(&body).map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "the body is not a route table ({e}); expected {{\"routes\": [{{\"pattern\": \"/\", \"handler\": \"NAME\", \"name\": optional, \"settings\": optional {{}}}}]}}"
                        ),
                    )
                })?;
                run(app.deployer().clone(), move |app| async move {
                    app.replace_routes(table.routes).await
                })
                .await?;
                let answer = serde_json::json!({ "routes": app.deployer().route_docs() });
                Ok(json(StatusCode::OK, &with_cluster(&app, answer, wait).await))
            }
            _ => not_allowed("GET, PUT"),
        },
        ["metrics"] => match method {
            Method::GET => {
                let mut response = Response::new(Full::new(Bytes::from(crate::metrics::render())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                Ok(response)
            }
            _ => not_allowed("GET"),
        },
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no admin endpoint {method} {path}; the endpoints are /handlers, /handlers/NAME, /handlers/NAME/versions[/N[/activate]], /handlers/NAME/rollback, /routes and /metrics (see docs/admin-api.md)"
            ),
        )),
    }
}

/// Runs a change in its own task: a client hanging up mid-call must not
/// cancel it halfway (between saving the state and swapping it in).
async fn run<T, F, Fut>(deployer: Arc<Deployer>, op: F) -> Result<T, SwapError>
where
    T: Send + 'static,
    F: FnOnce(Arc<Deployer>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, SwapError>> + Send + 'static,
{
    tokio::spawn(async move { op(deployer).await })
        .await
        .map_err(|e| SwapError::Internal {
            what: "the operation failed",
            source: e.into(),
        })?
}

fn parse_version(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not a version number (versions are 1, 2, 3, …)"),
        )
    })
}

/// `POST /handlers/NAME/versions[?activate=false]`, body = the component.
async fn upload(
    app: Arc<App>,
    name: &str,
    req: Request<Incoming>,
    wait: Option<Duration>,
) -> Result<AdminResponse, ApiError> {
    let mut activate = true;
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match (&*key, &*value) {
            ("activate", "true" | "1" | "") => activate = true,
            ("activate", "false" | "0") => activate = false,
            ("wait" | "timeout", _) => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unknown query parameter {key}={value} (the upload takes activate=true|false, and in a cluster wait=all and timeout=SECONDS)"
                    ),
                ));
            }
        }
    }
    let limit = app.config().max_upload_size;
    let bytes = read_limited(req, limit).await?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body is empty: send the component's bytes (the .wasm file) as the request body",
        ));
    }
    let name = name.to_owned();
    let info = run(app.deployer().clone(), move |app| async move {
        app.deploy(&name, bytes, activate, Source::Upload).await
    })
    .await?;
    let mut response = json(
        StatusCode::CREATED,
        &with_cluster(&app, to_value(&info), wait).await,
    );
    if let Ok(location) =
        HeaderValue::from_str(&format!("/handlers/{}/versions/{}", info.handler, info.version))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Longest `?wait=all` the admin API grants.
const MAX_CLUSTER_WAIT: Duration = Duration::from_secs(60);
/// `?wait=all` without `timeout`.
const DEFAULT_CLUSTER_WAIT: Duration = Duration::from_secs(10);

/// `?wait=all[&timeout=SECONDS]`: in a cluster, answer once every live node
/// has applied the change (or the timeout passed; the answer says how many had).
fn cluster_wait(query: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let (mut wait, mut timeout) = (false, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "wait" if value == "all" => wait = true,
            "wait" => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("wait={value}: the only wait is wait=all (every live node of the cluster)"),
                ));
            }
            "timeout" => {
                let secs = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            format!("timeout={value} is not a number of seconds"),
                        )
                    })?;
                timeout = Some(Duration::from_secs_f64(secs).min(MAX_CLUSTER_WAIT));
            }
            _ => {}
        }
    }
    Ok(wait.then(|| timeout.unwrap_or(DEFAULT_CLUSTER_WAIT)))
}

fn to_value(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).expect("admin responses serialize")
}

/// In a cluster, adds `deploy_id`, `nodes_applied` and `nodes_seen` to an
/// answer (after waiting, with `wait`); outside one, the answer as it is.
async fn with_cluster(app: &App, mut answer: serde_json::Value, wait: Option<Duration>) -> serde_json::Value {
    let Some(status) = app.deployer().cluster_status(wait).await else {
        return answer;
    };
    if let serde_json::Value::Object(map) = &mut answer {
        match status {
            Ok(status) => {
                if let serde_json::Value::Object(fields) = to_value(&status) {
                    map.extend(fields);
                }
            }
            Err(e) => {
                map.insert("cluster_error".into(), e.to_string().into());
            }
        }
    }
    answer
}

fn too_large(size: Option<u64>, limit: u64) -> ApiError {
    let size = size
        .map(|s| format!("{s} bytes"))
        .unwrap_or_else(|| "larger than that".into());
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!(
            "the component is {size}; this server accepts at most {limit} bytes (raise it with `serve --max-upload-size`)"
        ),
        close: true,
    }
}

/// Reads the body, refusing it as soon as it is known to exceed `limit`:
/// from `Content-Length` before reading anything, else while streaming.
async fn read_limited(req: Request<Incoming>, limit: u64) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > limit
    {
        // Refused unread; the rest is read and dropped (as for a 401) so
        // the client gets the 413 instead of a broken pipe.
        let mut refused = too_large(Some(len), limit);
        refused.close = !drain(req.into_body()).await;
        return Err(refused);
    }
    let mut body = req.into_body();
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let mut err = ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the upload was interrupted: {e}"),
            );
            err.close = true;
            err
        })?;
        if let Ok(data) = frame.into_data() {
            if (bytes.len() + data.len()) as u64 > limit {
                // As above: the rest is read and dropped, or the client,
                // still sending, may get a broken pipe instead of the 413.
                let mut refused = too_large(None, limit);
                refused.close = !drain(body).await;
                return Err(refused);
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

async fn read_json_body(req: Request<Incoming>) -> Result<Vec<u8>, ApiError> {
    read_limited(req, MAX_JSON_BODY as u64).await.map_err(|mut e| {
        if e.status == StatusCode::PAYLOAD_TOO_LARGE {
            e.message = format!("the JSON body is larger than {MAX_JSON_BODY} bytes");
        }
        e
    })
}

fn json(status: StatusCode, value: &impl Serialize) -> AdminResponse {
    let mut body = serde_json::to_vec_pretty(value).expect("admin responses serialize");
    body.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        let token = AdminToken::new("s3cret").unwrap();
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cret "));
        assert!(!token.matches(""));
        assert!(AdminToken::new("  ").is_none());
        assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
    }
}
