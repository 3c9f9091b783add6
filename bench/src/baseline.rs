//! The baseline: plain hyper answering "Hello, world", with the same
//! connection setup as Waterspout's server: one thread per core, each with a
//! single-threaded tokio runtime; the first accepts and hands connections out
//! in turn, and each is served start to finish on the thread it was given.
//!
//! Besides `/`, what scenario a's other rows ask: `GET /bytes/N` answers N
//! bytes, and a POST reads the whole body and answers how many form fields
//! it held. Scenario a runs it as a process of its own
//! (`waterspout-bench --serve-baseline ADDR`), so its CPU time is its own.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// Starts the baseline on loopback; sending `true` (or dropping the sender)
/// stops it.
pub fn start(addr: &str) -> anyhow::Result<(SocketAddr, watch::Sender<bool>)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
    let mut listener = Some(listener);
    for (index, mut inbox) in receivers.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (listener, inboxes, mut stop) = (listener.take(), inboxes.clone(), rx.clone());
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = listener.map(TcpListener::from_std).transpose().ok().flatten();
                let mut next = 0;
                loop {
                    tokio::select! {
                        Ok((stream, _)) = accept(listener.as_ref()) => {
                            let target = next % inboxes.len();
                            next += 1;
                            if target == index {
                                serve(stream);
                            } else if let Ok(stream) = stream.into_std() {
                                let _ = inboxes[target].send(stream);
                            }
                        }
                        Some(stream) = inbox.recv() => {
                            if let Ok(stream) = TcpStream::from_std(stream) {
                                serve(stream);
                            }
                        }
                        _ = stop.wait_for(|stop| *stop) => break,
                    }
                }
            })
        });
    }
    Ok((addr, tx))
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn answer(req: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    if req.method() == hyper::Method::POST {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let fields = form_urlencoded::parse(&body).count();
        return Ok(hyper::Response::new(Full::new(Bytes::from(fields.to_string()))));
    }
    if let Some(n) = req.uri().path().strip_prefix("/bytes/") {
        let n: usize = n.parse().unwrap_or(0);
        return Ok(hyper::Response::new(Full::new(Bytes::from(vec![b'x'; n]))));
    }
    Ok(hyper::Response::new(Full::new(Bytes::from_static(
        b"Hello, world",
    ))))
}

fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let service = service_fn(answer);
        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}
