//! Several `waterspout serve --redis URL` processes on one real
//! `redis-server` (tests/harness/redis.rs): the services are shared. A long
//! poll on node C wakes on a chat post on node A; a WebSocket group
//! broadcast reaches members on every node; a queue's items go to getters on
//! two nodes once each, `join` holds across nodes, and a node killed with an
//! item in hand has it redelivered; kv CAS races across nodes have exactly
//! one winner; the spider example's queue is worked by the workers of two
//! nodes and the crawl answers the same set as on one node; Redis killed and
//! restarted under load: errors are values,
//! requests that need no service keep being served, `/metrics` and the log
//! say so, everything recovers, and nothing acknowledged is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;
use waterspout_tests::guests;
use waterspout_tests::harness::{
    ADMIN_TOKEN, Page, RedisOptions, RedisServer, RedisTls, SPIDER_PATHS, ServerProcess, Site,
    TestCertificate, app_with_manifest, serve_command, spider_pages,
};

/// `serve APP --redis URL --cluster-node NAME` on a store of its own.
fn node(app: &str, redis: &RedisServer, name: &str) -> ServerProcess {
    let store = tempfile::tempdir().unwrap();
    let mut command = serve_command(app, store.path());
    command
        .args(["--redis", &redis.url()])
        .env("WATERSPOUT_NODE", name);
    let server = ServerProcess::spawn(command, false);
    // The store lives as long as the test's process does.
    std::mem::forget(store);
    server
}

async fn post_form(server: &ServerProcess, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = server
        .client
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_long_poll_on_node_c_wakes_on_a_post_on_node_a() {
    let redis = RedisServer::start();
    let a = node(guests::PYTHON_CHAT_APP, &redis, "a");
    let _b = node(guests::PYTHON_CHAT_APP, &redis, "b");
    let c = node(guests::PYTHON_CHAT_APP, &redis, "c");

    let waiter = tokio::spawn({
        let client = c.client.clone();
        let url = c.url("/a/message/updates");
        async move {
            let response = client.post(url).form(&[("x", "")]).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !waiter.is_finished(),
        "the poll answered before anything was posted"
    );
    let (status, posted) = post_form(&a, "/a/message/new", &[("body", "hello from a")]).await;
    assert_eq!(status, 200, "{posted}");
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the post on node A woke the poll on node C")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from a"), "{body}");
    // Node C's page shows the message too (the history is cluster-wide).
    let (status, page) = c.get_text("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("hello from a"), "{page}");
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn member(server: &ServerProcess, group: &str) -> Ws {
    let url = format!("ws://{}/ws?group={group}", server.addr);
    let (ws, _) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake in time")
        .expect("handshake");
    ws
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return text.as_str().to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_broadcast_reaches_members_on_every_node() {
    let redis = RedisServer::start();
    let nodes: Vec<ServerProcess> = ["a", "b", "c"]
        .iter()
        .map(|name| node(guests::PUBSUB_APP, &redis, name))
        .collect();
    let mut members = Vec::new();
    for server in &nodes {
        members.push(member(server, "lobby").await);
    }
    // Joins are local; the subscriber of each node is up before the first
    // broadcast that must reach it (a member sends, so its own node is up).
    tokio::time::sleep(Duration::from_millis(500)).await;
    members[0]
        .send(Message::text("broadcast lobby hello everyone"))
        .await
        .unwrap();
    for (i, ws) in members.iter_mut().enumerate() {
        let mut got = next_text(ws).await;
        if i == 0 && got.starts_with("sent ") {
            got = next_text(ws).await;
        }
        assert_eq!(got, "hello everyone", "member on node {i}");
    }
    // And from a plain request on node C.
    let response = nodes[2]
        .client
        .post(nodes[2].url("/broadcast?group=lobby&data=from-c"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for ws in &mut members {
        let mut got = next_text(ws).await;
        while got.starts_with("sent ") {
            got = next_text(ws).await;
        }
        assert_eq!(got, "from-c");
    }
}

fn queue_app() -> tempfile::TempDir {
    app_with_manifest(&format!(
        r#"
[[route]]
pattern = "/.*"
handler = "queues"

[handler.queues]
wasm = "{}"
queues = ["jobs"]
timeout_ms = 5000

[queue.jobs]
max_item_size = 64
"#,
        guests::QUEUE_HANDLER_WASM
    ))
}

async fn call(server: &ServerProcess, path: &str) -> String {
    let (status, text) = server.get_text(path).await;
    assert_eq!(status, 200, "{path}: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_is_shared_by_two_nodes_and_a_dead_nodes_item_is_redelivered() {
    let redis = RedisServer::start();
    let app = queue_app();
    let app = app.path().to_str().unwrap();
    let a = node(app, &redis, "a");
    let b = node(app, &redis, "b");
    let mut c = node(app, &redis, "c");

    for i in 0..10 {
        assert_eq!(
            call(&a, &format!("/put?q=jobs&item=job{i}&timeout=0")).await,
            "ok"
        );
    }
    assert_eq!(call(&b, "/qsize?q=jobs").await, "size:10");
    // Getters on two nodes, alternating: each item once, in order.
    let mut got = Vec::new();
    for i in 0..10 {
        let server = if i % 2 == 0 { &b } else { &c };
        got.push(call(server, "/get?q=jobs&timeout=0").await);
    }
    let expected: Vec<String> = (0..10).map(|i| format!("item:job{i}")).collect();
    assert_eq!(got, expected);
    assert_eq!(call(&a, "/get?q=jobs&timeout=0").await, "error:empty");

    // join on node A waits for the task_done calls made on B and C.
    assert_eq!(call(&a, "/join?q=jobs&timeout=200").await, "error:timeout");
    let joiner = tokio::spawn({
        let client = a.client.clone();
        let url = a.url("/join?q=jobs&timeout=4000");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    });
    for i in 0..10 {
        let server = if i % 2 == 0 { &b } else { &c };
        assert_eq!(call(server, "/task_done?q=jobs").await, "ok");
    }
    assert_eq!(joiner.await.unwrap(), "ok");
    assert_eq!(call(&b, "/task_done?q=jobs").await, "error:too-many-task-done");

    // A waiting get on node B is woken by a put on node A.
    let waiting = tokio::spawn({
        let client = b.client.clone();
        let url = b.url("/get?q=jobs&timeout=4000");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(call(&a, "/put?q=jobs&item=wake&timeout=0").await, "ok");
    assert_eq!(waiting.await.unwrap(), "item:wake");
    assert_eq!(call(&b, "/task_done?q=jobs").await, "ok");

    // Node C takes an item and dies before task_done: it comes back.
    assert_eq!(call(&a, "/put?q=jobs&item=precious&timeout=0").await, "ok");
    assert_eq!(call(&c, "/get?q=jobs&timeout=0").await, "item:precious");
    c.kill_9();
    assert_eq!(call(&a, "/get?q=jobs&timeout=0").await, "error:empty");
    let deadline = Instant::now() + Duration::from_secs(20);
    let redelivered = loop {
        let got = call(&b, "/get?q=jobs&timeout=1000").await;
        if got != "error:timeout" {
            break got;
        }
        assert!(Instant::now() < deadline, "the dead node's item never came back");
    };
    assert_eq!(redelivered, "item:precious");
    assert_eq!(call(&b, "/task_done?q=jobs").await, "ok");
    assert_eq!(call(&a, "/join?q=jobs&timeout=0").await, "ok");
}

/// kv at `/a/kv/…`, a handler that uses no service at `/hello`, pub/sub at
/// `/ps/…` and the queue `jobs` at `/put` and `/get`.
fn kv_app() -> tempfile::TempDir {
    app_with_manifest(&format!(
        r#"
[[route]]
pattern = "/a(/.*)"
handler = "a"

[[route]]
pattern = "/hello"
handler = "hello"

[[route]]
pattern = "/ps/.*"
handler = "pubsub"

[[route]]
pattern = "/(put|get)"
handler = "queues"

[handler.a]
wasm = {:?}
kv = ["a"]

[handler.hello]
wasm = {:?}

[handler.pubsub]
wasm = {:?}
pubsub_topics = ["news"]
timeout_ms = 2000

[handler.queues]
wasm = {:?}
queues = ["jobs"]
timeout_ms = 5000

[queue.jobs]
"#,
        guests::SERVICES_WASM,
        guests::HELLO_WASM,
        guests::PUBSUB_WASM,
        guests::QUEUE_HANDLER_WASM
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_cas_races_across_nodes_have_exactly_one_winner() {
    let redis = RedisServer::start();
    let app = kv_app();
    let app = app.path().to_str().unwrap();
    let nodes: Vec<ServerProcess> = ["a", "b", "c"].iter().map(|n| node(app, &redis, n)).collect();

    for round in 0..20 {
        let mut racers = Vec::new();
        for (i, server) in nodes.iter().enumerate() {
            for j in 0..3 {
                let client = server.client.clone();
                let url = server.url(&format!("/a/kv/cas?key=race{round}&value=n{i}-{j}"));
                racers.push(tokio::spawn(async move {
                    client.get(url).send().await.unwrap().text().await.unwrap()
                }));
            }
        }
        let mut answers = Vec::new();
        for racer in racers {
            answers.push(racer.await.unwrap());
        }
        let winners = answers.iter().filter(|a| *a == "won").count();
        assert_eq!(winners, 1, "round {round}: {answers:?}");
        assert_eq!(answers.iter().filter(|a| *a == "lost").count(), 8, "{answers:?}");
    }
    // Increments from every node add up; the value is seen everywhere.
    let mut incrs = Vec::new();
    for server in &nodes {
        for _ in 0..10 {
            let client = server.client.clone();
            let url = server.url("/a/kv/incr?key=counter&delta=1");
            incrs.push(tokio::spawn(async move {
                client.get(url).send().await.unwrap().status()
            }));
        }
    }
    for incr in incrs {
        assert_eq!(incr.await.unwrap(), 200);
    }
    for server in &nodes {
        assert_eq!(server.get_text("/a/kv/get?key=counter").await, (200, "30".into()));
    }
    // TTLs are Redis's; listing sees every node's keys.
    assert_eq!(
        nodes[0].get_text("/a/kv/set?key=short&value=x&ttl_ms=100").await,
        (200, "OK".into())
    );
    assert_eq!(nodes[1].get_text("/a/kv/get?key=short").await, (200, "x".into()));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        nodes[2].get_text("/a/kv/get?key=short").await,
        (200, "NONE".into())
    );
    let (_, listed) = nodes[2].get_text("/a/kv/list?prefix=race1").await;
    let listed: Vec<&str> = listed.split(',').collect();
    assert_eq!(listed.len(), 11, "race1 and race10..race19: {listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load_errors_are_values_and_all_recovers() {
    let mut redis = RedisServer::start();
    let app = kv_app();
    let store = tempfile::tempdir().unwrap();
    let mut command = serve_command(app.path(), store.path());
    command
        .args(["--redis", &redis.url(), "--admin-listen", "127.0.0.1:0"])
        .env("WATERSPOUT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("WATERSPOUT_NODE", "a");
    let mut a = ServerProcess::spawn(command, true);
    let app_path = app.path().to_str().unwrap();
    let b = node(app_path, &redis, "b");

    // Acknowledged writes, through both nodes.
    for i in 0..20 {
        let server = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            server.get_text(&format!("/a/kv/set?key=k{i}&value=v{i}")).await,
            (200, "OK".into())
        );
    }
    let metrics = |a: &ServerProcess| {
        let request = a.admin(reqwest::Method::GET, "/metrics");
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let up = metrics(&a).await;
    assert!(up.contains("waterspout_redis_up 1"), "{up}");

    // Load on both nodes while Redis dies and comes back.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for server in [&a, &b] {
        for path in ["/a/kv/incr?key=load&delta=1", "/hello"] {
            let client = server.client.clone();
            let url = server.url(path);
            let stop = stop.clone();
            load.push(tokio::spawn(async move {
                let (mut ok, mut errors, mut slowest) = (0u32, 0u32, Duration::ZERO);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let response = client.get(&url).send().await.expect("the node answers");
                    assert_eq!(response.status(), 200, "{url}");
                    let body = response.text().await.unwrap();
                    slowest = slowest.max(started.elapsed());
                    if body.starts_with("ERR") {
                        errors += 1;
                    } else {
                        ok += 1;
                    }
                }
                (url, ok, errors, slowest)
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // During the outage: a kv call is an error value, fast; no-service
    // routes are served; /metrics says Redis is down.
    let started = Instant::now();
    let (status, text) = b.get_text("/a/kv/get?key=k1").await;
    assert_eq!(status, 200);
    assert!(text.starts_with("ERR backend"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.get_text("/hello").await.0, 200);
    // A queue call answers `timeout` (queue-error has no `unavailable` case;
    // docs/cluster.md), a publish the SDK's 500 for `unavailable`: both fast.
    let started = Instant::now();
    assert_eq!(
        a.get_text("/put?q=jobs&item=during&timeout=0").await,
        (200, "error:timeout".into())
    );
    let publish = b
        .client
        .post(b.url("/ps/publish?topic=news&data=during"))
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), 500);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let down = metrics(&a).await;
    assert!(down.contains("waterspout_redis_up 0"), "{down}");
    assert!(down.contains("waterspout_redis_errors_total"), "{down}");
    a.wait_for_log("is unreachable");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, text) = b.get_text("/a/kv/get?key=k1").await;
        if text == "v1" {
            break;
        }
        assert!(Instant::now() < deadline, "node b never recovered: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The queue and pub/sub are back too.
    assert_eq!(
        a.get_text("/put?q=jobs&item=after&timeout=0").await,
        (200, "ok".into())
    );
    assert_eq!(
        b.get_text("/get?q=jobs&timeout=0").await,
        (200, "item:after".into())
    );
    let publish = a
        .client
        .post(a.url("/ps/publish?topic=news&data=after"))
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        let (url, ok, errors, slowest) = task.await.unwrap();
        assert!(ok > 0, "{url}: nothing served");
        assert!(
            slowest < Duration::from_secs(5),
            "{url}: a request took {slowest:?}"
        );
        if url.ends_with("/hello") {
            assert_eq!(errors, 0, "{url}");
        }
    }
    // Nothing acknowledged was lost; both nodes are alive and recovered.
    for i in 0..20 {
        let server = if i % 2 == 0 { &b } else { &a };
        assert_eq!(
            server.get_text(&format!("/a/kv/get?key=k{i}")).await,
            (200, format!("v{i}"))
        );
    }
    assert!(a.child.try_wait().unwrap().is_none(), "node a is running");
    let log = a.wait_for_log("is back after");
    assert_eq!(
        log.matches("is unreachable").count(),
        1,
        "one line per outage:\n{log}"
    );
    let after = metrics(&a).await;
    assert!(after.contains("waterspout_redis_up 1"), "{after}");
    assert!(after.contains("waterspout_redis_reconnects_total 1"), "{after}");
    assert!(after.contains("waterspout_cluster_nodes 2"), "{after}");
    a.kill_9();
}

/// Pages a crawl finds beyond the spider's site (harness/site.rs): its base
/// also links to these, each linking back, so one crawl puts more items on
/// the queue than one node has workers.
const WIDE_PAGES: usize = 30;

/// The spider's site plus [`WIDE_PAGES`] pages linked from its base.
fn wide_pages(port: u16) -> Vec<Page> {
    let mut pages = spider_pages(port);
    for i in 0..WIDE_PAGES {
        pages[0].2.push(format!("wide/{i}.html"));
        pages.push((
            format!("/site/wide/{i}.html"),
            200,
            vec!["../".into(), format!("{}.html", (i + 1) % WIDE_PAGES)],
        ));
    }
    pages
}

/// Every URL under the base a crawl of [`wide_pages`] visits.
fn wide_expected(site: &Site) -> BTreeSet<String> {
    let wide: Vec<String> = (0..WIDE_PAGES).map(|i| format!("/site/wide/{i}.html")).collect();
    let mut paths: Vec<&str> = SPIDER_PATHS.to_vec();
    paths.extend(wide.iter().map(String::as_str));
    site.urls(&paths)
}

/// `GET /crawl?url=BASE&concurrency=10` → the sorted `fetched` and `dead` lists.
async fn crawl(server: &ServerProcess, site: &Site) -> (BTreeSet<String>, Vec<String>) {
    let response = tokio::time::timeout(
        Duration::from_secs(90),
        server
            .client
            .get(server.url("/crawl"))
            .query(&[("url", site.base().as_str()), ("concurrency", "10")])
            .timeout(Duration::from_secs(90))
            .send(),
    )
    .await
    .expect("the crawl answers within 90 s")
    .expect("the crawl answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list = |name: &str| -> Vec<String> {
        body[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not a list: {body}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let fetched = list("fetched");
    let unique: BTreeSet<String> = fetched.iter().cloned().collect();
    assert_eq!(unique.len(), fetched.len(), "a URL listed twice: {fetched:?}");
    (unique, list("dead"))
}

/// The paths of `urls` on `site`.
fn paths(urls: &BTreeSet<String>, site: &Site) -> BTreeSet<String> {
    let origin = format!("http://{}", site.addr);
    urls.iter()
        .map(|u| u.strip_prefix(&origin).unwrap_or(u).to_owned())
        .collect()
}

/// The URLs a node's spider workers claimed and fetched, from its log: the
/// worker (worker.py) logs `fetching URL` once it has claimed a URL, before
/// it fetches it. Each node writes only its own log, so a URL in node B's
/// log was fetched by a worker running on node B.
fn fetched_by(server: &ServerProcess) -> Vec<String> {
    server
        .log()
        .lines()
        .filter(|line| line.contains("spider-worker"))
        .filter_map(|line| line.split("fetching ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spiders_queue_is_worked_by_the_workers_of_two_nodes() {
    // One node, no Redis: the set to match.
    let first_site = Site::start(wide_pages, Duration::from_millis(200)).await;
    let alone = ServerProcess::on_own_store(guests::PYTHON_SPIDER_APP, &[]);
    let (on_one_node, dead) = crawl(&alone, &first_site).await;
    assert_eq!(on_one_node, wide_expected(&first_site));
    assert_eq!(dead, vec![format!("{}missing.html", first_site.base())]);
    drop(alone);

    // Two nodes on one Redis, ten workers each; the crawl is asked of node A.
    // Each page answers after 200 ms, and the base links to 34 pages: while
    // node A's ten workers each hold one, the rest wait in the queue, where
    // node B's idle workers (woken by the put's notice, or looking every
    // 250 ms) take them.
    let site = Site::start(wide_pages, Duration::from_millis(200)).await;
    let redis = RedisServer::start();
    let a = node(guests::PYTHON_SPIDER_APP, &redis, "a");
    let b = node(guests::PYTHON_SPIDER_APP, &redis, "b");
    let (on_two_nodes, dead) = crawl(&a, &site).await;
    assert_eq!(
        paths(&on_two_nodes, &site),
        paths(&on_one_node, &first_site),
        "the crawl on two nodes found what it found on one"
    );
    assert_eq!(on_two_nodes, wide_expected(&site));
    assert_eq!(dead, vec![format!("{}missing.html", site.base())]);

    // Every page was fetched once in the whole cluster (the kv claim is
    // cluster-wide) …
    let hits = site.hits();
    assert!(hits.values().all(|&n| n == 1), "{hits:?}");
    assert_eq!(hits.len(), on_two_nodes.len(), "{hits:?}");
    // … and the workers of both nodes fetched some: each node's log names
    // the URLs its own workers fetched; together they are the crawl, with
    // no URL on both.
    let (by_a, by_b) = (fetched_by(&a), fetched_by(&b));
    assert!(!by_a.is_empty(), "node A's workers fetched nothing:\n{}", a.log());
    assert!(!by_b.is_empty(), "node B's workers fetched nothing:\n{}", b.log());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for url in by_a.iter().chain(&by_b) {
        *seen.entry(url.clone()).or_default() += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "a URL fetched twice: {seen:?}");
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), on_two_nodes);
    eprintln!(
        "the crawl of {} pages: {} fetched by node A's workers, {} by node B's",
        on_two_nodes.len(),
        by_a.len(),
        by_b.len()
    );
}

/// kv (`/a/kv/…`) and pub/sub (`/ps/publish`, `/ps/wait`), with `cluster`
/// appended to the manifest (a `[cluster]` section, or nothing).
fn services_app(cluster: &str) -> tempfile::TempDir {
    app_with_manifest(&format!(
        r#"
[[route]]
pattern = "/a(/.*)"
handler = "a"

[[route]]
pattern = "/ps/.*"
handler = "pubsub"

[handler.a]
wasm = {:?}
kv = ["a"]

[handler.pubsub]
wasm = {:?}
pubsub_topics = ["news"]
timeout_ms = 2000
wait_timeout_ms = 20000
{cluster}
"#,
        guests::SERVICES_WASM,
        guests::PUBSUB_WASM
    ))
}

/// `serve APP ARGS…` as node `name`, on a store of its own.
fn node_with(app: &std::path::Path, name: &str, args: &[&str]) -> ServerProcess {
    let store = tempfile::tempdir().unwrap();
    let mut command = serve_command(app, store.path());
    command.args(args).env("WATERSPOUT_NODE", name);
    let server = ServerProcess::spawn(command, false);
    std::mem::forget(store);
    server
}

/// kv and pub/sub are shared by `a` and `b`: a value set on one is read on
/// the other, CAS holds across them, and a long poll on B wakes on a
/// publish on A with that message.
async fn kv_and_pubsub_are_shared(a: &ServerProcess, b: &ServerProcess) {
    assert_eq!(
        a.get_text("/a/kv/set?key=k&value=from-a").await,
        (200, "OK".into())
    );
    assert_eq!(b.get_text("/a/kv/get?key=k").await, (200, "from-a".into()));
    assert_eq!(
        b.get_text("/a/kv/cas?key=once&value=b").await,
        (200, "won".into())
    );
    assert_eq!(
        a.get_text("/a/kv/cas?key=once&value=a").await,
        (200, "lost".into())
    );
    assert_eq!(a.get_text("/a/kv/get?key=once").await, (200, "b".into()));

    let waiter = tokio::spawn({
        let (client, url) = (
            b.client.clone(),
            b.url("/ps/wait?topic=news&after=0&timeout_ms=15000"),
        );
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the wait answered before the publish");
    let response = a
        .client
        .post(a.url("/ps/publish?topic=news&data=over-tls"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "1");
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the publish on node A woke the wait on node B")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["messages"], serde_json::json!([[1, "over-tls"]]));
}

/// Starts `serve APP ARGS…` expecting it to fail: its exit status and log
/// (within 40 s: a node retries Redis for 10 s at start).
fn failing_node(app: &std::path::Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let store = tempfile::tempdir().unwrap();
    let mut command = serve_command(app, store.path());
    command
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node did not exit within 40 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    (status, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_and_pubsub_are_shared_over_rediss_trusting_a_test_ca() {
    let redis = RedisServer::start_with(RedisOptions {
        tls: Some(RedisTls {
            certificate: TestCertificate::new("Waterspout redis test CA", &["127.0.0.1"]),
            auth_clients: false,
        }),
        ..RedisOptions::default()
    });
    let url = redis.url();
    assert!(url.starts_with("rediss://"), "{url}");
    let ca = redis.file(RedisTls::CA_FILE);

    // Node A: `[cluster] ca` in its manifest, relative to it.
    let with_ca = services_app(&format!("[cluster]\nredis = {url:?}\nca = \"redis-ca.pem\"\n"));
    std::fs::copy(&ca, with_ca.path().join("redis-ca.pem")).unwrap();
    let a = node_with(with_ca.path(), "a", &[]);
    // Node B: the URL and the CA on the command line.
    let plain = services_app("");
    let b = node_with(
        plain.path(),
        "b",
        &["--redis", &url, "--redis-ca", ca.to_str().unwrap()],
    );
    kv_and_pubsub_are_shared(&a, &b).await;

    // A node that does not trust the test CA (the system's roots) cannot
    // connect: it says why and exits.
    let (status, log) = failing_node(plain.path(), &["--redis", &url]);
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("joining the cluster") && log.contains("invalid peer certificate: UnknownIssuer"),
        "{log}"
    );
    // And TLS settings on a plain redis:// URL are refused at once.
    let (status, log) = failing_node(
        plain.path(),
        &[
            "--redis",
            "redis://127.0.0.1:1",
            "--redis-ca",
            ca.to_str().unwrap(),
        ],
    );
    assert!(!status.success(), "{log}");
    assert!(log.contains("must be a rediss:// URL"), "{log}");
    // A CA file that cannot be read: refused at start, naming it.
    let (status, log) = failing_node(
        plain.path(),
        &["--redis", &url, "--redis-ca", "/nonexistent/ca.pem"],
    );
    assert!(!status.success(), "{log}");
    assert!(log.contains("cannot read /nonexistent/ca.pem"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_show_a_client_certificate_and_a_password_over_rediss() {
    // Redis asks for client certificates signed by its CA and a password.
    let redis = RedisServer::start_with(RedisOptions {
        password: Some("tls-s3cret".into()),
        tls: Some(RedisTls {
            certificate: TestCertificate::new("Waterspout redis test CA", &["127.0.0.1"]),
            auth_clients: true,
        }),
    });
    let url = redis.url();
    let file = |name| redis.file(name).to_str().unwrap().to_owned();
    let cluster = format!(
        "[cluster]\nredis = {url:?}\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        file(RedisTls::CA_FILE),
        file(RedisTls::CERT_FILE),
        file(RedisTls::KEY_FILE)
    );
    let app = services_app(&cluster);
    let a = node_with(app.path(), "a", &[]);
    let b = node_with(app.path(), "b", &[]);
    kv_and_pubsub_are_shared(&a, &b).await;
    assert!(
        !a.log().contains("tls-s3cret"),
        "the password is logged:\n{}",
        a.log()
    );

    // Without the client certificate Redis refuses the handshake: the node
    // says so and exits.
    let no_cert = services_app(&format!(
        "[cluster]\nredis = {url:?}\nca = {:?}\n",
        file(RedisTls::CA_FILE)
    ));
    let (status, log) = failing_node(no_cert.path(), &[]);
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("joining the cluster") && log.contains("CertificateRequired"),
        "{log}"
    );
    // A cert without its key is a manifest error.
    let half = services_app(&format!(
        "[cluster]\nredis = {url:?}\ncert = {:?}\n",
        file(RedisTls::CERT_FILE)
    ));
    let (status, log) = failing_node(half.path(), &[]);
    assert!(!status.success(), "{log}");
    assert!(log.contains("cert and key go together"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_authenticates_and_a_wrong_one_is_a_clear_error() {
    let redis = RedisServer::start_with(RedisOptions {
        password: Some("s3cret-pw".into()),
        ..RedisOptions::default()
    });
    let url = redis.url();
    assert!(url.starts_with("redis://:s3cret-pw@"), "{url}");
    assert_eq!(
        redis.command(&["PING"]).as_deref().map(|a| &a[..7]),
        Some("-NOAUTH")
    );
    let app = services_app("");
    let a = node_with(app.path(), "a", &["--redis", &url]);
    let b = node_with(app.path(), "b", &["--redis", &url]);
    kv_and_pubsub_are_shared(&a, &b).await;
    let log = a.log();
    assert!(!log.contains("s3cret-pw"), "the password is logged:\n{log}");
    assert!(log.contains("redis://:***@127.0.0.1"), "{log}");

    // A wrong password: the node says Redis refused it and exits; the
    // password it was given appears nowhere.
    let wrong = format!("redis://:wrong-pw@127.0.0.1:{}", redis.port);
    let (status, log) = failing_node(app.path(), &["--redis", &wrong]);
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("joining the cluster") && log.contains("AuthenticationFailed"),
        "{log}"
    );
    assert!(!log.contains("wrong-pw"), "the password is logged:\n{log}");
}
