//! The admin API: upload, list, activate, roll back and delete handler
//! versions, read and replace the route table, and Prometheus `/metrics`.
//!
//! It listens on its own address (127.0.0.1:8889 by default, never the public
//! port unless configured so), and every call carries `Authorization: Bearer
//! TOKEN`, compared in constant time. Without a configured token the admin
//! API is off. JSON in and out; an error is `{"error": "..."}` with a message
//! saying what to do. The endpoints are documented in `docs/admin-api.md`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::store::{RouteDoc, Source};
use crate::swap::SwapError;

/// Largest JSON body the admin API reads (a route table).
const MAX_JSON_BODY: usize = 1 << 20;

/// The admin bearer token. Its `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl AdminToken {
    /// `None` for an empty token (which would turn authentication off).
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        let token = token.trim();
        (!token.is_empty()).then(|| AdminToken(token.into()))
    }

    /// Constant-time comparison; hashing first keeps the length secret too.
    pub fn matches(&self, presented: &str) -> bool {
        let expected = Sha256::digest(self.0.as_bytes());
        let presented = Sha256::digest(presented.as_bytes());
        expected.ct_eq(&presented).into()
    }

    /// The token itself (for clients and tests).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The running admin listener.
pub struct AdminHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AdminHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and lets calls in flight finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Starts the admin API on `app.config.admin_listen` if a token is
/// configured; otherwise logs that it is off and returns `None`.
pub async fn start(app: Arc<App>) -> std::io::Result<Option<AdminHandle>> {
    let Some(token) = app.config.admin_token.clone() else {
        tracing::info!(
            "admin API off: no admin token configured (set --admin-token or WATERSPOUT_ADMIN_TOKEN to turn it on)"
        );
        return Ok(None);
    };
    let listen = app.config.admin_listen;
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("binding the admin API to {listen}: {e} (choose another with --admin-listen)"),
        )
    })?;
    let local_addr = listener.local_addr()?;
    if !local_addr.ip().is_loopback() {
        tracing::warn!(
            "the admin API listens on {local_addr}, beyond loopback: its token travels in clear text unless a TLS proxy is in front"
        );
    }
    tracing::info!("admin API on http://{local_addr}");
    crate::metrics::install();
    let (shutdown, stop) = watch::channel(false);
    let task = tokio::spawn(serve(app, token, listener, stop));
    Ok(Some(AdminHandle {
        local_addr,
        shutdown,
        task,
    }))
}

async fn serve(app: Arc<App>, token: AdminToken, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let (app, token) = (app.clone(), token.clone());
        let service = service_fn(move |req| {
            let (app, token) = (app.clone(), token.clone());
            async move { Ok::<_, std::convert::Infallible>(handle(app, token, req, remote).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%remote, "admin connection ended: {e}");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(app.config.shutdown_grace, graceful.shutdown()).await;
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
        ApiError::new(status, e.to_string())
    }
}

type AdminResponse = Response<Full<Bytes>>;

async fn handle(
    app: Arc<App>,
    token: AdminToken,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> AdminResponse {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = match route(app, &token, req).await {
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
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let status = response.status().as_u16();
    let path = crate::guest_log::sanitize(&path);
    let ip = remote.ip();
    if status >= 400 {
        tracing::warn!(target: "waterspout::admin", "{status} {method} {path} ({ip}) {ms:.2}ms");
    } else {
        tracing::info!(target: "waterspout::admin", "{status} {method} {path} ({ip}) {ms:.2}ms");
    }
    response
}

fn authorize(token: &AdminToken, req: &Request<Incoming>) -> Result<(), ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
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

async fn route(app: Arc<App>, token: &AdminToken, req: Request<Incoming>) -> Result<AdminResponse, ApiError> {
    // Authenticate before anything else, so a caller without the token
    // learns nothing (not even which endpoints exist).
    authorize(token, &req)?;
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
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
                &serde_json::json!({ "handlers": app.handler_infos() }),
            )),
            _ => not_allowed("GET"),
        },
        ["handlers", name] => match method {
            Method::GET => {
                let info = app
                    .handler_infos()
                    .into_iter()
                    .find(|h| h.name == *name)
                    .ok_or_else(|| SwapError::UnknownHandler((*name).to_owned()))?;
                Ok(json(StatusCode::OK, &info))
            }
            Method::DELETE => {
                let name = (*name).to_owned();
                run(
                    app.clone(),
                    move |app| async move { app.delete_handler(&name).await },
                )
                .await?;
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "deleted": segments[1] }),
                ))
            }
            _ => not_allowed("GET, DELETE"),
        },
        ["handlers", name, "versions"] => match method {
            Method::GET => {
                let versions = app.version_infos(name)?;
                let active = versions.iter().find(|v| v.active).map(|v| v.version);
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "handler": name, "active_version": active, "versions": versions }),
                ))
            }
            Method::POST => upload(app, name, req).await,
            _ => not_allowed("GET, POST"),
        },
        ["handlers", name, "versions", version] => {
            let version = parse_version(version)?;
            match method {
                Method::GET => {
                    let info = app
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
                    run(
                        app,
                        move |app| async move { app.delete_version(&name, version).await },
                    )
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
            let info = run(app, move |app| async move { app.activate(&name, version).await }).await?;
            Ok(json(StatusCode::OK, &info))
        }
        ["handlers", name, "rollback"] => {
            if method != Method::POST {
                return not_allowed("POST");
            }
            let name = (*name).to_owned();
            let info = run(app, move |app| async move { app.rollback(&name).await }).await?;
            Ok(json(StatusCode::OK, &info))
        }
        ["routes"] => match method {
            Method::GET => Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "routes": app.route_docs() }),
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
                run(app.clone(), move |app| async move {
                    app.replace_routes(table.routes).await
                })
                .await?;
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "routes": app.route_docs() }),
                ))
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
async fn run<T, F, Fut>(app: Arc<App>, op: F) -> Result<T, SwapError>
where
    T: Send + 'static,
    F: FnOnce(Arc<App>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, SwapError>> + Send + 'static,
{
    tokio::spawn(async move { op(app).await })
        .await
        .map_err(|e| SwapError::Internal(format!("the operation failed: {e}")))?
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
async fn upload(app: Arc<App>, name: &str, req: Request<Incoming>) -> Result<AdminResponse, ApiError> {
    let mut activate = true;
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match (&*key, &*value) {
            ("activate", "true" | "1" | "") => activate = true,
            ("activate", "false" | "0") => activate = false,
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unknown query parameter {key}={value} (the upload takes only activate=true|false)"
                    ),
                ));
            }
        }
    }
    let limit = app.config.max_upload_size;
    let bytes = read_limited(req, limit).await?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body is empty: send the component's bytes (the .wasm file) as the request body",
        ));
    }
    let name = name.to_owned();
    let info = run(app, move |app| async move {
        app.deploy(&name, bytes, activate, Source::Upload).await
    })
    .await?;
    let mut response = json(StatusCode::CREATED, &info);
    if let Ok(location) =
        HeaderValue::from_str(&format!("/handlers/{}/versions/{}", info.handler, info.version))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
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
        return Err(too_large(Some(len), limit));
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
                return Err(too_large(None, limit));
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
