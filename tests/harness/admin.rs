//! The admin API: its token, a config that turns it on, and calling it.

use serde_json::Value;
use waterspout::AdminToken;
use waterspout::ServerConfig;

use super::TestServer;
use crate::guests;

/// The admin token of [`admin_config`] and of
/// [`ServerProcess::with_admin`](super::ServerProcess::with_admin).
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Default settings plus the admin API on a free loopback port with
/// [`ADMIN_TOKEN`]; versions are kept in memory unless `store_dir` is set.
pub fn admin_config() -> ServerConfig {
    ServerConfig {
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        admin_token: AdminToken::new(ADMIN_TOKEN),
        ..ServerConfig::default()
    }
}

/// The version-a app (handler `version` on `/`) with `config`, checked to
/// answer `a`: where the admin tests start from.
pub async fn start_version_a(config: ServerConfig) -> TestServer {
    let server = TestServer::start_with(guests::VERSION_A_APP, config).await;
    assert_eq!(server.get_text("/").await, (200, "a".into()));
    server
}

/// Sends an admin request; returns the status and the JSON body (every
/// answer of the admin API is JSON, errors included).
pub async fn admin_call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("admin request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("admin body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}
