//! A listener: hyper 1 over tokio, a thread per core, keep-alive, a
//! header-read timeout, connection deadlines, a connection cap and graceful
//! shutdown that lets requests in flight finish. Serves any [`Service`]: the
//! app (the edge) and the admin API both listen through here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use std::future::Future;

use bytes::Bytes;
use hyper::body::Incoming;

use super::deadline::{ConnDeadline, Protocol};
use crate::client::Client;

/// What a listener serves: one response per request, never an error.
pub trait Service: Send + Sync + 'static {
    type Body: hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static;

    fn call(
        self: Arc<Self>,
        req: http::Request<Incoming>,
        remote: SocketAddr,
    ) -> impl Future<Output = http::Response<Self::Body>> + Send + 'static;
}

/// How a listener serves its connections.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Thread name prefix and log name (`http`, `admin`).
    pub name: &'static str,
    /// Threads, each with its own event loop.
    pub workers: usize,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Report open connections per worker (`waterspout_open_connections`).
    pub gauges: bool,
    /// HTTP/1 read buffer. It bounds a request head, and how much of an
    /// unread body hyper drains after an early answer (a 401 or 413) so the
    /// close does not reset the connection before the client reads it.
    pub read_buffer: usize,
    /// Serve HTTPS: the handshake runs on the connection's worker.
    pub tls: Option<super::tls::Tls>,
}

/// A running server: its address, and the way to stop it.
pub struct ServerHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in flight finish (up to the grace
    /// period), then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops (after `shutdown` from elsewhere).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A sender that triggers graceful shutdown when `true` is sent.
    pub fn shutdown_trigger(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Serves `service` on `listener` in the background; once shutdown is
/// triggered, `before_drain` runs (e.g. closing WebSockets) and then the
/// requests in flight drain under the grace period.
///
/// Thread per core, as Tornado runs a process per core: `config.workers`
/// threads, each with its own single-threaded tokio runtime. The first one
/// also accepts, and hands each new connection to the worker with the fewest
/// open connections; a connection is then served start to finish on its
/// worker. A request never changes threads, so there are no cross-thread
/// wake-ups and the instance pool's slots and caches stay warm on one core.
pub fn start<S: Service, F: Future<Output = ()> + Send + 'static>(
    listener: std::net::TcpListener,
    settings: Settings,
    service: Arc<S>,
    before_drain: F,
) -> std::io::Result<ServerHandle> {
    listener.set_nonblocking(true)?;
    let settings = Arc::new(settings);
    let local_addr = listener.local_addr()?;
    let (shutdown, rx) = watch::channel(false);
    let (abort, abort_rx) = watch::channel(false);
    let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..settings.workers.max(1))
        .map(|worker| {
            let (tx, rx) = mpsc::unbounded_channel();
            let inbox = Inbox {
                tx,
                open: Arc::new(AtomicUsize::new(0)),
                gauge: settings.gauges.then(|| crate::metrics::open_connections(worker)),
            };
            (inbox, rx)
        })
        .unzip();
    let shared = Arc::new(Shared {
        builder: connection_builder(&settings),
        graceful: std::sync::Mutex::new(Some(GracefulShutdown::new())),
        connections: Arc::new(Semaphore::new(settings.max_connections)),
        workers: inboxes,
    });
    let mut listener = Some(listener);
    let mut threads = Vec::new();
    for (index, inbox) in receivers.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let worker = Worker {
            index,
            service: service.clone(),
            settings: settings.clone(),
            shared: shared.clone(),
        };
        let (listener, stop, abort) = (listener.take(), rx.clone(), abort_rx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("waterspout-{}-{index}", settings.name))
            .spawn(move || runtime.block_on(worker.run(listener, inbox, stop, abort)))?;
        threads.push(thread);
    }
    let task = tokio::spawn(async move {
        // Every worker stops accepting; then the in-flight requests of all of
        // them drain together under one grace period.
        let mut stop = rx;
        let _ = stop.wait_for(|stop| *stop).await;
        let graceful = shared.graceful.lock().expect("graceful lock").take();
        tracing::info!("{}: shutting down: waiting for requests in flight", settings.name);
        before_drain.await;
        if let Some(graceful) = graceful
            && tokio::time::timeout(settings.shutdown_grace, graceful.shutdown())
                .await
                .is_err()
        {
            tracing::warn!("grace period over; closing remaining connections");
        }
        let _ = abort.send(true);
        drop(shared);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    });
    Ok(ServerHandle {
        local_addr,
        shutdown,
        task,
    })
}

/// What the worker threads share: the connection settings, the graceful
/// shutdown watcher, the connection cap and each worker's inbox.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    graceful: std::sync::Mutex<Option<GracefulShutdown>>,
    connections: Arc<Semaphore>,
    workers: Vec<Inbox>,
}

/// Where the accepting worker sends another worker its new connections.
struct Inbox {
    tx: mpsc::UnboundedSender<Handoff>,
    /// Connections open on that worker (and its Prometheus gauge).
    open: Arc<AtomicUsize>,
    gauge: Option<metrics::Gauge>,
}

/// A connection on its way to a worker: the socket (detached from the
/// acceptor's event loop), its place under the connection cap, its count.
struct Handoff {
    stream: std::net::TcpStream,
    remote: SocketAddr,
    permit: OwnedSemaphorePermit,
    open: OpenConnection,
}

fn connection_builder(settings: &Settings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true)
        .max_buf_size(settings.read_buffer);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    builder
}

/// One worker thread and its event loop.
struct Worker<S> {
    index: usize,
    service: Arc<S>,
    settings: Arc<Settings>,
    shared: Arc<Shared>,
}

impl<S: Service> Worker<S> {
    /// Serves the connections it is handed (and, on the worker holding the
    /// listener, accepts and hands out new ones) until told to stop; then
    /// keeps its loop running while they drain.
    async fn run(
        self,
        listener: Option<std::net::TcpListener>,
        mut inbox: mpsc::UnboundedReceiver<Handoff>,
        mut stop: watch::Receiver<bool>,
        mut abort: watch::Receiver<bool>,
    ) {
        let listener = match listener.map(TcpListener::from_std).transpose() {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!("worker {} cannot use the listener: {e}", self.index);
                None
            }
        };
        loop {
            tokio::select! {
                accepted = accept(listener.as_ref()) => self.hand_out(accepted).await,
                Some(handoff) = inbox.recv() => match TcpStream::from_std(handoff.stream) {
                    Ok(stream) => self.serve(stream, handoff.remote, handoff.permit, handoff.open),
                    Err(e) => tracing::warn!("cannot take over a connection: {e}"),
                },
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
        drop(listener);
        // Connections, WebSockets and the tasks they spawned run on this
        // thread: keep its loop running while they drain; once the grace
        // period is over (or the server handle is gone) the runtime drops
        // whatever is left.
        let _ = abort.wait_for(|abort| *abort).await;
    }

    /// A new connection goes to the worker with the fewest open ones.
    async fn hand_out(&self, accepted: std::io::Result<(TcpStream, SocketAddr)>) {
        let (stream, remote) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                return;
            }
        };
        let Ok(permit) = self.shared.connections.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "connection limit reached; refusing");
            return;
        };
        let workers = &self.shared.workers;
        let target = (0..workers.len())
            .min_by_key(|&i| workers[i].open.load(Ordering::Relaxed))
            .unwrap_or(self.index);
        let open = OpenConnection::enter(&workers[target]);
        if target == self.index {
            return self.serve(stream, remote, permit, open);
        }
        match stream.into_std() {
            Ok(stream) => {
                let handoff = Handoff {
                    stream,
                    remote,
                    permit,
                    open,
                };
                // Fails only when that worker is gone (shutting down).
                let _ = workers[target].tx.send(handoff);
            }
            Err(e) => tracing::warn!(%remote, "cannot hand over a connection: {e}"),
        }
    }

    /// Serves one connection on this thread until it ends; over TLS, the
    /// handshake comes first (bounded by the header timeout).
    fn serve(
        &self,
        stream: TcpStream,
        remote: SocketAddr,
        permit: OwnedSemaphorePermit,
        open: OpenConnection,
    ) {
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            service: self.service.clone(),
            settings: self.settings.clone(),
            shared: self.shared.clone(),
            remote,
            permit,
            open,
        };
        match self.settings.tls.clone() {
            None => conn.serve(stream, false),
            Some(tls) => {
                tokio::spawn(async move {
                    let handshake = tls.0.accept(stream);
                    match tokio::time::timeout(conn.settings.header_timeout, handshake).await {
                        Ok(Ok(stream)) => conn.serve(stream, true),
                        Ok(Err(e)) => tracing::debug!(%remote, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// One accepted connection, on its worker, ready to be served.
struct Connection<S> {
    service: Arc<S>,
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    remote: SocketAddr,
    permit: OwnedSemaphorePermit,
    open: OpenConnection,
}

impl<S: Service> Connection<S> {
    /// Serves HTTP/1.1 or HTTP/2 (by ALPN or preface) on `io` until it
    /// ends. Each request carries the [`Client`] it came from.
    fn serve<I>(self, io: I, tls: bool)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Protocol + Unpin + Send + 'static,
    {
        let Connection {
            service,
            settings,
            shared,
            remote,
            permit,
            open,
        } = self;
        let in_flight = Arc::new(AtomicUsize::new(0));
        let stream = ConnDeadline::new(
            io,
            settings.header_timeout,
            settings.idle_timeout,
            in_flight.clone(),
        );
        let client = Client::direct(remote.ip(), tls);
        let service = service_fn(move |mut req: http::Request<Incoming>| {
            let in_flight = Counted::enter(&in_flight);
            req.extensions_mut().insert(client);
            let service = service.clone();
            // The call's future is made inside this block, not captured by
            // it: a captured future is stored twice in the block (as the
            // capture and as the future awaited), and hyper keeps the block
            // for as long as the request lasts.
            async move {
                let response = service.call(req, remote).await;
                drop(in_flight);
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let conn = shared
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        // Shutting down: the connection is not served.
        let Some(conn) = shared
            .graceful
            .lock()
            .expect("graceful lock")
            .as_ref()
            .map(|g| g.watch(conn))
        else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%remote, "connection ended: {e}");
            }
            drop((permit, open));
        });
    }
}

/// Counts a connection on its worker until dropped.
struct OpenConnection {
    open: Arc<AtomicUsize>,
    gauge: Option<metrics::Gauge>,
}

impl OpenConnection {
    fn enter(worker: &Inbox) -> Self {
        worker.open.fetch_add(1, Ordering::Relaxed);
        if let Some(gauge) = &worker.gauge {
            gauge.increment(1.0);
        }
        OpenConnection {
            open: worker.open.clone(),
            gauge: worker.gauge.clone(),
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(gauge) = &self.gauge {
            gauge.decrement(1.0);
        }
    }
}

/// The next connection from `listener`; never, without one.
async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Counts one (a request in flight, an open connection) until dropped.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Counted(count.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
