//! The console: a dashboard in the browser, on the admin listener at `/`.
//!
//! Plain HTML, CSS and JavaScript compiled into the binary (no build step,
//! nothing fetched from elsewhere; charts are SVG drawn by `console.js`).
//! Signing in with the admin token (`POST /console/login`) opens a session
//! ([`session`]); the page then reads and changes the app through the admin
//! API itself (`/handlers`, `/routes`, …), which accepts the session cookie
//! plus the `X-CSRF-Token` header beside the bearer token: one code path
//! for every change. `GET /console/events` feeds the live charts and the
//! log tail over server-sent events ([`events`]).

mod events;
pub(super) mod session;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::AdminToken;

pub use self::session::Sessions;
use self::session::{Presented, csrf_matches};

/// A console response body: a page, JSON, or the endless event stream.
pub type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

const INDEX_HTML: &str = include_str!("index.html");
const LOGIN_HTML: &str = include_str!("login.html");
const CONSOLE_CSS: &str = include_str!("console.css");
const CONSOLE_JS: &str = include_str!("console.js");

/// Largest sign-in form read.
const MAX_LOGIN_BODY: usize = 4096;

/// The console's state on the admin listener.
pub struct Console {
    pub sessions: Arc<Sessions>,
    /// Cancelled when the admin listener shuts down: the event streams end.
    pub stop: CancellationToken,
}

impl Console {
    pub fn new() -> Self {
        Console {
            sessions: Arc::new(Sessions::default()),
            stop: CancellationToken::new(),
        }
    }
}

/// Whether `path` is the console's (the rest is the admin API).
pub fn owns(path: &str) -> bool {
    path == "/" || path.starts_with("/console/")
}

/// Serves a console path.
pub async fn serve(
    app: Arc<App>,
    token: &AdminToken,
    console: &Console,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET | Method::HEAD, "/") => match console.sessions.presented(req.headers()) {
            Presented::Session { .. } => page(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML),
            Presented::None => see_other("/console/login", None),
        },
        (Method::GET | Method::HEAD, "/console/login") => login_page(StatusCode::OK, ""),
        (Method::POST, "/console/login") => login(token, console, req).await,
        (Method::POST, "/console/logout") => logout(token, console, &req),
        (Method::GET | Method::HEAD, "/console/console.css") => {
            page(StatusCode::OK, "text/css; charset=utf-8", CONSOLE_CSS)
        }
        (Method::GET | Method::HEAD, "/console/console.js") => {
            page(StatusCode::OK, "text/javascript; charset=utf-8", CONSOLE_JS)
        }
        (Method::GET, "/console/session") => match console.sessions.presented(req.headers()) {
            Presented::Session { csrf, .. } => json(
                StatusCode::OK,
                &serde_json::json!({ "csrf_token": csrf, "lifetime_s": session::LIFETIME.as_secs() }),
            ),
            Presented::None => not_signed_in(),
        },
        (Method::GET, "/console/events") => {
            let watcher = match console.sessions.presented(req.headers()) {
                Presented::Session { id_hash, .. } => events::Watcher::Session(id_hash),
                Presented::None if bearer_ok(token, &req) => events::Watcher::Token,
                Presented::None => return not_signed_in(),
            };
            events::stream(app, console, watcher)
        }
        (method, path) => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": format!("no console page {method} {path}; the console is at / (sign in at /console/login)") }),
        ),
    }
}

/// How a request to the admin API is authorized by a console session:
/// `Ok(true)` a session allows it, `Ok(false)` there is no session (the
/// bearer token decides), `Err` a session without the right CSRF token
/// on a change (403, with the message).
pub fn session_allows(console: &Console, req: &Request<Incoming>) -> Result<bool, &'static str> {
    let Presented::Session { csrf, .. } = console.sessions.presented(req.headers()) else {
        return Ok(false);
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || csrf_matches(req.headers(), &csrf) {
        return Ok(true);
    }
    if req.headers().contains_key(session::CSRF_HEADER) {
        Err("wrong CSRF token: reload the console page (its token belongs to another session)")
    } else {
        Err(
            "missing CSRF token: a change made with the console's session cookie must carry the X-CSRF-Token header the page got from /console/session",
        )
    }
}

fn bearer_ok(token: &AdminToken, req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && token.matches(t.trim()))
}

async fn login(token: &AdminToken, console: &Console, req: Request<Incoming>) -> Response<Body> {
    let body = http_body_util::Limited::new(req.into_body(), MAX_LOGIN_BODY).collect();
    let body = match tokio::time::timeout(std::time::Duration::from_secs(10), body).await {
        Ok(Ok(body)) => body.to_bytes(),
        _ => {
            let mut response = login_page(
                StatusCode::BAD_REQUEST,
                "The sign-in form was too large or too slow.",
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    let presented = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !token.matches(presented.trim()) {
        tracing::warn!(target: "waterspout::admin", "console sign-in refused: wrong admin token");
        return login_page(
            StatusCode::UNAUTHORIZED,
            "Wrong admin token. Use the server's --admin-token (or WATERSPOUT_ADMIN_TOKEN).",
        );
    }
    let (id, _csrf) = console.sessions.create();
    tracing::info!(target: "waterspout::admin", "console sign-in");
    see_other("/", Some(session::set_cookie(&id)))
}

fn logout(token: &AdminToken, console: &Console, req: &Request<Incoming>) -> Response<Body> {
    match console.sessions.presented(req.headers()) {
        Presented::Session { id_hash, csrf } => {
            if !csrf_matches(req.headers(), &csrf) {
                return json(
                    StatusCode::FORBIDDEN,
                    &serde_json::json!({ "error": "missing or wrong CSRF token: signing out needs the X-CSRF-Token header" }),
                );
            }
            console.sessions.remove(&id_hash);
        }
        Presented::None if bearer_ok(token, req) => {}
        Presented::None => return not_signed_in(),
    }
    let mut response = json(StatusCode::OK, &serde_json::json!({ "signed_out": true }));
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

fn not_signed_in() -> Response<Body> {
    json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({ "error": "not signed in: sign in at /console/login with the admin token" }),
    )
}

fn login_page(status: StatusCode, error: &str) -> Response<Body> {
    let html = LOGIN_HTML.replace("<!--error-->", &crate::text::html_escape(error));
    page(status, "text/html; charset=utf-8", html)
}

fn see_other(location: &'static str, cookie: Option<String>) -> Response<Body> {
    let mut response = page(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

fn page(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    secure_headers(response.headers_mut());
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    page(status, "application/json", value.to_string())
}

/// What every console answer carries: no script but our own files, no
/// framing, no sniffing, no caching.
pub fn secure_headers(headers: &mut http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
