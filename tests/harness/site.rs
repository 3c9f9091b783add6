//! A small web site on 127.0.0.1:0 for the spider tests (the one-node test
//! in integration/spider.rs and the two-node one in cluster.rs): pages of
//! links under `/site/`, every request counted by path, each answered after
//! a delay so that concurrent fetches overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One page: its path, status and the `href`s it links to.
pub type Page = (String, u16, Vec<String>);

/// The spider's site: a cycle (`/site/` → a → b → a, c → a), a fragment, a
/// 404 under the base, links outside the base, and a link to the same page
/// under another host name (`localhost`: another base, never fetched).
pub fn spider_pages(port: u16) -> Vec<Page> {
    let page = |path: &str, status, links: &[&str]| -> Page {
        (
            path.to_owned(),
            status,
            links.iter().map(|l| l.to_string()).collect(),
        )
    };
    vec![
        page(
            "/site/",
            200,
            &[
                "a.html",
                "b.html#part",
                "/site/missing.html",
                "/outside/x.html",
                &format!("http://localhost:{port}/site/a.html"),
            ],
        ),
        page("/site/a.html", 200, &["b.html", "/site/", "sub/c.html"]),
        page("/site/b.html", 200, &["a.html#top", "./"]),
        page("/site/sub/c.html", 200, &["../a.html", "../../outside/y.html"]),
        page("/outside/x.html", 200, &["/site/"]),
        page("/outside/y.html", 200, &[]),
    ]
}

/// The paths under `/site/` a crawl of [`spider_pages`] visits (the 404 included).
pub const SPIDER_PATHS: &[&str] = &[
    "/site/",
    "/site/a.html",
    "/site/b.html",
    "/site/missing.html",
    "/site/sub/c.html",
];

/// The local site: every request counted by path; how many were in flight at most.
pub struct Site {
    pub addr: SocketAddr,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    max_in_flight: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    /// Serves `pages(port)` (a path not among them is a 404), each answer
    /// after `delay`.
    pub async fn start(pages: impl FnOnce(u16) -> Vec<Page>, delay: Duration) -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pages: Arc<BTreeMap<String, (u16, Vec<String>)>> = Arc::new(
            pages(addr.port())
                .into_iter()
                .map(|(path, status, links)| (path, (status, links)))
                .collect(),
        );
        let hits = Arc::new(Mutex::new(BTreeMap::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let (counted, flying, most) = (hits.clone(), in_flight.clone(), max_in_flight.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let (pages, counted, flying, most) =
                    (pages.clone(), counted.clone(), flying.clone(), most.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let (pages, counted, flying, most) =
                            (pages.clone(), counted.clone(), flying.clone(), most.clone());
                        async move {
                            let path = request.uri().path().to_owned();
                            *counted.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                            let now = flying.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(delay).await;
                            flying.fetch_sub(1, Ordering::SeqCst);
                            let (status, body) = match pages.get(&path) {
                                Some((status, links)) => {
                                    let links: String = links
                                        .iter()
                                        .map(|l| format!("<a href=\"{l}\">{l}</a>\n"))
                                        .collect();
                                    (*status, format!("<html><body>{links}</body></html>"))
                                }
                                None => (404, "<html><body>not found</body></html>".to_owned()),
                            };
                            let response = Response::builder()
                                .status(status)
                                .header("content-type", "text/html")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Site {
            addr,
            hits,
            max_in_flight,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/site/`: the base URL to crawl.
    pub fn base(&self) -> String {
        format!("http://{}/site/", self.addr)
    }

    /// The full URLs of `paths` on this site.
    pub fn urls(&self, paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| format!("http://{}{p}", self.addr)).collect()
    }

    /// Requests so far, by path.
    pub fn hits(&self) -> BTreeMap<String, usize> {
        self.hits.lock().unwrap().clone()
    }

    /// The most requests that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}
