//! The server running in this process, on a free loopback port.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use waterspout::admin::AdminHandle;
use waterspout::{App, ServerConfig, ServerHandle};

use super::ADMIN_TOKEN;

/// A server running in this process on a free loopback port.
pub struct TestServer {
    pub app: Arc<App>,
    handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The admin API, when the config has a token.
    pub admin: Option<AdminHandle>,
}

impl TestServer {
    /// Loads the app in `dir` with default settings and serves it.
    pub async fn start(dir: &str) -> TestServer {
        Self::start_with(dir, ServerConfig::default()).await
    }

    pub async fn start_with(dir: &str, config: ServerConfig) -> TestServer {
        waterspout::cli::init_tracing();
        let dir = Path::new(dir).to_owned();
        let app = tokio::task::spawn_blocking(move || App::load(&dir, config))
            .await
            .expect("loading task")
            .unwrap_or_else(|e| panic!("loading the app failed: {e}"));
        let handle = waterspout::server::start(app.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("binding 127.0.0.1:0");
        let addr = handle.local_addr();
        let admin = waterspout::admin::start(app.clone())
            .await
            .expect("binding the admin API");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        TestServer {
            app,
            handle: Some(handle),
            addr,
            client,
            admin,
        }
    }

    /// A URL on the admin API (panics if it is off).
    pub fn admin_url(&self, path: &str) -> String {
        let admin = self.admin.as_ref().expect("the admin API is on");
        format!("http://{}{}", admin.local_addr(), path)
    }

    /// An admin API request carrying [`ADMIN_TOKEN`].
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.admin_url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// GET and return (status, body as text).
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    pub async fn shutdown(mut self) {
        if let Some(admin) = self.admin.take() {
            admin.shutdown().await;
        }
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}
