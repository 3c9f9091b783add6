//! The HTTP server: hyper 1 over tokio with keep-alive, a header-read timeout,
//! a connection cap and graceful shutdown that lets requests in flight finish.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::app::App;

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

/// Binds `listen` (port 0 picks a free port) and serves `app` in the background.
///
/// Thread per core, as Tornado runs a process per core: `config.workers`
/// threads, each with its own single-threaded tokio runtime. The first one
/// also accepts, and hands each new connection to the worker with the fewest
/// open connections; a connection is then served start to finish on its
/// worker. A request never changes threads, so there are no cross-thread
/// wake-ups and the instance pool's slots and caches stay warm on one core.
pub async fn start(app: Arc<App>, listen: SocketAddr) -> std::io::Result<ServerHandle> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let (shutdown, rx) = watch::channel(false);
    let (abort, abort_rx) = watch::channel(false);
    let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..app.config.workers.max(1))
        .map(|worker| {
            let (tx, rx) = mpsc::unbounded_channel();
            let inbox = Inbox {
                tx,
                open: Arc::new(AtomicUsize::new(0)),
                gauge: crate::metrics::open_connections(worker),
            };
            (inbox, rx)
        })
        .unzip();
    let shared = Arc::new(Shared {
        builder: connection_builder(&app),
        graceful: std::sync::Mutex::new(Some(GracefulShutdown::new())),
        connections: Arc::new(Semaphore::new(app.config.max_connections)),
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
            app: app.clone(),
            shared: shared.clone(),
        };
        let (listener, stop, abort) = (listener.take(), rx.clone(), abort_rx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("waterspout-http-{index}"))
            .spawn(move || runtime.block_on(worker.run(listener, inbox, stop, abort)))?;
        threads.push(thread);
    }
    tracing::info!(
        "{} worker thread(s) serving on http://{local_addr}",
        threads.len()
    );
    let task = tokio::spawn(async move {
        // Every worker stops accepting; then the in-flight requests of all of
        // them drain together under one grace period.
        let mut stop = rx;
        let _ = stop.wait_for(|stop| *stop).await;
        let graceful = shared.graceful.lock().expect("graceful lock").take();
        tracing::info!("shutting down: waiting for requests in flight");
        crate::websocket::close_all(&app).await;
        if let Some(graceful) = graceful
            && tokio::time::timeout(app.config.shutdown_grace, graceful.shutdown())
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
    gauge: metrics::Gauge,
}

/// A connection on its way to a worker: the socket (detached from the
/// acceptor's event loop), its place under the connection cap, its count.
struct Handoff {
    stream: std::net::TcpStream,
    remote: SocketAddr,
    permit: OwnedSemaphorePermit,
    open: OpenConnection,
}

fn connection_builder(app: &App) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.header_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    builder
}

/// One worker thread and its event loop.
struct Worker {
    index: usize,
    app: Arc<App>,
    shared: Arc<Shared>,
}

impl Worker {
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

    /// Serves one connection on this thread until it ends.
    fn serve(
        &self,
        stream: TcpStream,
        remote: SocketAddr,
        permit: OwnedSemaphorePermit,
        open: OpenConnection,
    ) {
        let _ = stream.set_nodelay(true);
        let app = &self.app;
        let in_flight = Arc::new(AtomicUsize::new(0));
        let stream = ConnDeadline::new(
            stream,
            app.config.header_timeout,
            app.config.idle_timeout,
            in_flight.clone(),
        );
        let service_app = app.clone();
        let service = service_fn(move |req| {
            let app = service_app.clone();
            let in_flight = Counted::enter(&in_flight);
            async move {
                let response = crate::dispatch::handle(app, req, remote).await;
                drop(in_flight);
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let conn = self
            .shared
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        // Shutting down: the connection is not served.
        let Some(conn) = self
            .shared
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
    gauge: metrics::Gauge,
}

impl OpenConnection {
    fn enter(worker: &Inbox) -> Self {
        worker.open.fetch_add(1, Ordering::Relaxed);
        worker.gauge.increment(1.0);
        OpenConnection {
            open: worker.open.clone(),
            gauge: worker.gauge.clone(),
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.gauge.decrement(1.0);
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

/// The HTTP/2 connection preface; its first bytes decide the protocol.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Deadlines hyper does not enforce on its own, per connection.
///
/// First, the protocol must be decided within the header timeout: hyper-util's
/// auto builder reads up to the 24-byte HTTP/2 preface to pick HTTP/1 or
/// HTTP/2 without any timeout, and hyper's header-read timer only starts after
/// that, so a client that connects and sends nothing (or part of the preface)
/// would hold a slot under the connection cap forever. HTTP/1 then needs
/// nothing more (hyper's header-read timer also closes idle keep-alive
/// connections). An HTTP/2 connection has no such timer: it is closed after
/// `idle` without reads or writes while no request is in flight.
struct ConnDeadline<S> {
    io: S,
    phase: Phase,
    deadline: Pin<Box<tokio::time::Sleep>>,
    seen: usize,
    idle: Duration,
    in_flight: Arc<AtomicUsize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the bytes that decide the protocol.
    Preface,
    /// HTTP/2: closed when idle.
    Http2,
    /// HTTP/1: hyper's own timers apply.
    PassThrough,
}

impl<S> ConnDeadline<S> {
    fn new(io: S, header_timeout: Duration, idle: Duration, in_flight: Arc<AtomicUsize>) -> Self {
        ConnDeadline {
            io,
            phase: Phase::Preface,
            deadline: Box::pin(tokio::time::sleep(header_timeout)),
            seen: 0,
            idle,
            in_flight,
        }
    }

    /// Activity on an HTTP/2 connection pushes the idle deadline back.
    fn touch(&mut self) {
        if self.phase == Phase::Http2 {
            let at = tokio::time::Instant::now() + self.idle;
            self.deadline.as_mut().reset(at);
        }
    }

    /// Whether the deadline has passed with nothing to wait for (registers a
    /// wake-up otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            if self.phase == Phase::Http2 && self.in_flight.load(Ordering::Relaxed) > 0 {
                // Requests are running: check again one idle period later.
                self.touch();
                continue;
            }
            return true;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ConnDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        match (&result, this.phase) {
            (_, Phase::PassThrough) | (Poll::Ready(Err(_)), _) => {}
            (Poll::Ready(Ok(())), Phase::Preface) => {
                let new = &buf.filled()[before..];
                let start = this.seen.min(H2_PREFACE.len());
                let end = (this.seen + new.len()).min(H2_PREFACE.len());
                this.seen += new.len();
                let differs = new[..end - start] != H2_PREFACE[start..end];
                if new.is_empty() || differs {
                    this.phase = Phase::PassThrough;
                } else if this.seen >= H2_PREFACE.len() {
                    this.phase = Phase::Http2;
                    this.touch();
                }
            }
            (Poll::Ready(Ok(())), Phase::Http2) => this.touch(),
            (Poll::Pending, _) => {
                if this.expired(cx) {
                    let why = if this.phase == Phase::Preface {
                        "no request within the header timeout"
                    } else {
                        "HTTP/2 connection idle"
                    };
                    return Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why)));
                }
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ConnDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
