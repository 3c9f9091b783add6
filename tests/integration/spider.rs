//! The spider example (`examples/python/spider`, Tornado's webspider): a
//! handler puts the base URL on a queue, ten background workers fetch pages
//! with the http client and put the links under the base back, the kv store
//! dedups. The test serves a small site of its own on 127.0.0.1:0 that
//! counts every hit, and checks the exact set the crawl reports.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use waterspout_tests::guests::PYTHON_SPIDER_APP;
use waterspout_tests::harness::{SPIDER_PATHS, Site, TestServer, spider_pages};

use super::services::q;

/// The site (harness/site.rs), each page answering after 30 ms.
async fn start_site() -> Site {
    Site::start(spider_pages, Duration::from_millis(30)).await
}

/// What a crawl of the site under `/site/` must visit (the 404 included).
fn expected(site: &Site) -> BTreeSet<String> {
    site.urls(SPIDER_PATHS)
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
    let site = start_site().await;
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
    let want: BTreeMap<String, usize> = SPIDER_PATHS.iter().map(|p| (p.to_string(), 1)).collect();
    assert_eq!(hits, want);
    server.shutdown().await;
}

#[tokio::test]
async fn concurrency_caps_the_fetches_in_flight_and_two_crawls_run_apart() {
    let site = start_site().await;
    let server = TestServer::start(PYTHON_SPIDER_APP).await;

    // concurrency=1: one fetch at a time although ten workers run.
    let (status, body) = crawl(&server, &format!("url={}&concurrency=1", q(&site.base()))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["concurrency"], 1);
    assert_eq!(
        strings(&body["fetched"]).into_iter().collect::<BTreeSet<_>>(),
        expected(&site)
    );
    assert_eq!(site.max_in_flight(), 1);

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
