//! The server: listeners, worker threads, connection deadlines, and the edge
//! every request passes (head checks, body limit, routing to a handler
//! driver, the access log written once per request).
//!
//! **Rule:** the server knows `App` and the handler drivers; never wasmtime,
//! the runtime or the capabilities.

mod compression;
mod deadline;
mod edge;
pub(crate) mod listener;
mod static_files;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::app::App;

pub use self::edge::MAX_URI_LEN;
pub use self::listener::ServerHandle;
pub use self::tls::Tls;

/// A listening socket on `addr` whose accept queue holds `backlog`
/// connections (the kernel caps it at `net.core.somaxconn`). As std's
/// `TcpListener::bind` otherwise: `SO_REUSEADDR`, so a restarted server
/// binds while its old connections are in TIME_WAIT.
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Binds `listen` (port 0 picks a free port) and serves `app` in the background.
///
/// Thread per core, as Tornado runs a process per core: `config.workers`
/// threads, each with its own single-threaded tokio runtime. The first one
/// also accepts, and hands each new connection to the worker with the fewest
/// open connections; a connection is then served start to finish on its
/// worker. A request never changes threads, so there are no cross-thread
/// wake-ups and the instance pool's slots and caches stay warm on one core.
pub async fn start(app: Arc<App>, listen: SocketAddr) -> std::io::Result<ServerHandle> {
    let config = app.config();
    let listener = bind(listen, config.backlog)?;
    let settings = listener::Settings {
        name: "http",
        workers: config.workers,
        max_connections: config.max_connections,
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        shutdown_grace: config.shutdown_grace,
        gauges: true,
        read_buffer: edge::MAX_HEAD_LEN,
        tls: config.tls.as_ref().map(Tls::load).transpose()?,
    };
    let scheme = if settings.tls.is_some() { "https" } else { "http" };
    let closing = app.clone();
    // Background workers run on this runtime from now until shutdown.
    let workers = crate::handlers::worker::start(&app);
    let grace = config.shutdown_grace;
    // Graceful shutdown closes WebSockets (1001) and stops the background
    // workers (after their current item) before requests drain.
    let before_drain = async move {
        tokio::join!(crate::handlers::close_all(&closing), workers.stop(grace));
    };
    let workers = settings.workers;
    let handle = listener::start(listener, settings, Arc::new(edge::Edge(app)), before_drain)?;
    tracing::info!(
        "{workers} worker thread(s) serving on {scheme}://{}",
        handle.local_addr()
    );
    Ok(handle)
}

/// Serves one request in-process, without a socket (benchmarks): the same
/// edge a request from a listener passes.
#[doc(hidden)]
pub async fn handle<B>(
    app: Arc<App>,
    req: http::Request<B>,
    remote: SocketAddr,
) -> http::Response<edge::Logged>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    edge::handle(app, req, remote).await
}
