//! The spider example (`examples/python/spider`, Tornado's webspider): a
//! handler puts the base URL on a queue, ten background workers fetch pages
//! with the http client and put the links under the base back, the kv store
//! dedups. The test serves a small site of its own on 127.0.0.1:0 that
//! counts every hit, and checks the exact set the crawl reports.

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
use waterspout_tests::guests::PYTHON_SPIDER_APP;
use waterspout_tests::harness::TestServer;

use super::services::q;

/// The pages of the site: path → (status, links). A cycle (`/site/` → a → b
/// → a, c → a), a fragment, a 404 under the base, links outside the base.
fn pages(port: u16) -> Vec<(&'static str, u16, Vec<String>)> {
    vec![
        (
            "/site/",
            200,
            vec![
                "a.html".into(),
                "b.html#part".into(),
                "/site/missing.html".into(),
                "/outside/x.html".into(),
                format!("http://localhost:{port}/site/a.html"),
            ],
        ),
        (
            "/site/a.html",
            200,
            vec!["b.html".into(), "/site/".into(), "sub/c.html".into()],
        ),
        ("/site/b.html", 200, vec!["a.html#top".into(), "./".into()]),
        (
            "/site/sub/c.html",
            200,
            vec!["../a.html".into(), "../../outside/y.html".into()],
        ),
        ("/outside/x.html", 200, vec!["/site/".into()]),
        ("/outside/y.html", 200, vec![]),
    ]
}

/// The local site: every request counted by path; how many were in flight
/// at most (each page answers after 30 ms, so concurrent fetches overlap).
struct Site {
    addr: SocketAddr,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    max_in_flight: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    async fn start() -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pages: Arc<BTreeMap<String, (u16, Vec<String>)>> = Arc::new(
            pages(addr.port())
                .into_iter()
                .map(|(path, status, links)| (path.to_owned(), (status, links)))
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
                            tokio::time::sleep(Duration::from_millis(30)).await;
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

    fn base(&self) -> String {
        format!("http://{}/site/", self.addr)
    }

    fn hits(&self) -> BTreeMap<String, usize> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a crawl of the site under `/site/` must visit (the 404 included).
fn expected(site: &Site) -> BTreeSet<String> {
    ["", "a.html", "b.html", "missing.html", "sub/c.html"]
        .iter()
        .map(|p| format!("{}{p}", site.base()))
        .collect()
}

async fn crawl(server: &TestServer, query: &str) -> (u16, serde_json::Value) {
    let (status, text) = server.get_text(&format!("/crawl?{query}")).await;
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_spider_fetches_every_page_under_the_base_once_and_counts_the_dead() {
    let site = Site::start().await;
    let server = TestServer::start(PYTHON_SPIDER_APP).await;
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(60),
        crawl(&server, &format!("url={}&concurrency=10", q(&site.base()))),
    )
    .await
    .expect("the crawl answers within 60 s");
    assert_eq!(status, 200, "{body}");

    let fetched = strings(&body["fetched"]);
    let unique: BTreeSet<String> = fetched.iter().cloned().collect();
    assert_eq!(unique.len(), fetched.len(), "a URL listed twice: {fetched:?}");
    assert_eq!(unique, expected(&site));
    assert_eq!(
        strings(&body["dead"]),
        vec![format!("{}missing.html", site.base())]
    );
    assert_eq!(body["concurrency"], 10);

    // The site saw each page under the base exactly once, and nothing else:
    // not the pages outside it, not `localhost` (another base).
    let hits = site.hits();
    let want: BTreeMap<String, usize> = [
        "/site/",
        "/site/a.html",
        "/site/b.html",
        "/site/missing.html",
        "/site/sub/c.html",
    ]
    .iter()
    .map(|p| (p.to_string(), 1))
    .collect();
    assert_eq!(hits, want);
    server.shutdown().await;
}

#[tokio::test]
async fn concurrency_caps_the_fetches_in_flight_and_two_crawls_run_apart() {
    let site = Site::start().await;
    let server = TestServer::start(PYTHON_SPIDER_APP).await;

    // concurrency=1: one fetch at a time although ten workers run.
    let (status, body) = crawl(&server, &format!("url={}&concurrency=1", q(&site.base()))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["concurrency"], 1);
    assert_eq!(
        strings(&body["fetched"]).into_iter().collect::<BTreeSet<_>>(),
        expected(&site)
    );
    assert_eq!(site.max_in_flight.load(Ordering::SeqCst), 1);

    // More than the manifest's ten workers is capped; two crawls at once each
    // get the whole site (their keys are apart), so every page is hit twice more.
    let url = format!("url={}&concurrency=50", q(&site.base()));
    let (first, second) = tokio::join!(crawl(&server, &url), crawl(&server, &url));
    for (status, body) in [first, second] {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["concurrency"], 10);
        assert_eq!(
            strings(&body["fetched"]).into_iter().collect::<BTreeSet<_>>(),
            expected(&site)
        );
    }
    assert!(site.hits().values().all(|&n| n == 3), "{:?}", site.hits());
    assert_eq!(site.hits().len(), 5, "{:?}", site.hits());

    // Bad input: a clear 400, nothing queued.
    for query in [
        "url=ftp%3A%2F%2Fx%2F",
        "url=relative",
        &format!("url={}&concurrency=0", q(&site.base())),
        &format!("url={}&concurrency=many", q(&site.base())),
    ] {
        let (status, body) = crawl(&server, query).await;
        assert_eq!(status, 400, "{query}: {body}");
    }
    let (status, _) = crawl(&server, "").await;
    assert_eq!(status, 400, "a missing url is a 400 (MissingArgumentError)");
    server.shutdown().await;
}
