//! What the tests share: the real server on 127.0.0.1:0 (in this process or
//! as the `waterspout` binary), the admin API, app and store directories,
//! raw HTTP/1 and WebSocket clients, a small web site to crawl, and measuring the process.
//!
//! The host is restructured now and then: a host internal the tests look at
//! is named once, below, so that renaming it costs one line here.

mod admin;
mod apps;
mod browser;
mod certs;
mod measure;
mod nginx;
mod process;
pub mod raw;
mod redis;
mod server;
mod site;
mod store;
pub mod websocket;

pub use self::{
    admin::{ADMIN_TOKEN, admin_call, admin_config, start_version_a},
    apps::{app_copy, app_with_manifest, hello_and_wasi_http3_app, read_wasm, version_app},
    browser::Browser,
    certs::TestCertificate,
    measure::{measure_alone, own_rss_kib},
    nginx::Nginx,
    process::{ServerProcess, serve_command, server_binary},
    redis::{RedisOptions, RedisServer, RedisTls},
    server::TestServer,
    site::{Page, SPIDER_PATHS, Site, spider_pages},
    store::{check_store, sha256_hex},
};

// Host internals the tests look at, each named here and nowhere else.
pub use waterspout::MAX_URI_LEN;
pub use waterspout::World;
