//! The WebSocket handshake (RFC 6455 §4.2.1) and Tornado's `check_origin`.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use crate::body::{Body, page};
use crate::capabilities::bindings::HttpError;
use crate::text::sanitize;

/// Validates the upgrade request (RFC 6455 §4.2.1) and Tornado's
/// `check_origin`; returns the `Sec-WebSocket-Accept` value.
pub(super) fn check_handshake(
    req: &http::request::Parts,
    allowed_origins: &[String],
) -> Result<String, Box<http::Response<Body>>> {
    if req.method != Method::GET {
        let mut response = page(StatusCode::METHOD_NOT_ALLOWED, None);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return Err(Box::new(response));
    }
    let headers = &req.headers;
    if req.version != http::Version::HTTP_11 {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            Some("WebSocket needs HTTP/1.1"),
        )));
    }
    if !has_token(headers, &header::UPGRADE, "websocket") {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            Some("Can \"Upgrade\" only to \"WebSocket\"."),
        )));
    }
    if !has_token(headers, &header::CONNECTION, "upgrade") {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            Some("\"Connection\" must be \"Upgrade\"."),
        )));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().trim_ascii())
        .filter(|k| !k.is_empty());
    let version = headers.get(header::SEC_WEBSOCKET_VERSION);
    let (Some(key), Some(version)) = (key, version) else {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            Some("Missing/Invalid WebSocket headers"),
        )));
    };
    if version.as_bytes().trim_ascii() != b"13" {
        // RFC 6455 §4.4: say which version we speak.
        let mut response = page(StatusCode::UPGRADE_REQUIRED, None);
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(Box::new(response));
    }
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get("sec-websocket-origin"));
    if let Some(origin) = origin {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !origin_allowed(origin.to_str().unwrap_or(""), host, allowed_origins) {
            return Err(Box::new(page(
                StatusCode::FORBIDDEN,
                Some("Cross origin websockets not allowed"),
            )));
        }
    }
    Ok(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key))
}

/// Tornado's `check_origin`: the origin's host (and port) must be the
/// request's `Host`, unless the manifest's `allowed_origins` lists it (as a
/// full origin like `https://example.com` or a bare host) or holds `*`.
pub fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let netloc = origin.split_once("://").map_or(origin.as_str(), |(_, rest)| rest);
    let netloc = netloc.split('/').next().unwrap_or("");
    if host.is_some_and(|h| !netloc.is_empty() && netloc == h.trim().to_ascii_lowercase()) {
        return true;
    }
    allowed.iter().any(|a| {
        let a = a.trim().trim_end_matches('/').to_ascii_lowercase();
        a == "*" || a == origin || (!netloc.is_empty() && a == netloc)
    })
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// The client's offered subprotocols, in order.
pub(super) fn subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `open` refused the connection: answer with its status (Tornado's page).
pub(super) fn refusal(
    request: &crate::capabilities::request::RequestData,
    error: HttpError,
) -> http::Response<Body> {
    if let Some(message) = &error.log_message {
        tracing::warn!(target: "waterspout::access", "{} {} {} ({}): {}", error.status, request.method,
            sanitize(request.target()), request.remote_ip, sanitize(message));
    }
    let Some(status) = StatusCode::from_u16(error.status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
    else {
        tracing::error!(
            status = error.status,
            "open refused with a status that is not an error; sending 500"
        );
        return page(StatusCode::INTERNAL_SERVER_ERROR, None);
    };
    page(status, error.reason.as_deref())
}
