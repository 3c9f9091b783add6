//! Several `waterspout serve --redis URL` processes on one real
//! `redis-server` (tests/harness/redis.rs): the services are shared. A long
//! poll on node C wakes on a chat post on node A; a WebSocket group
//! broadcast reaches members on every node; a queue's items go to getters on
//! two nodes once each, `join` holds across nodes, and a node killed with an
//! item in hand has it redelivered; kv CAS races across nodes have exactly
//! one winner; Redis killed and restarted under load: errors are values,
//! requests that need no service keep being served, `/metrics` and the log
//! say so, everything recovers, and nothing acknowledged is lost.

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;
use waterspout_tests::guests;
use waterspout_tests::harness::{ADMIN_TOKEN, RedisServer, ServerProcess, app_with_manifest, serve_command};

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

fn kv_app() -> tempfile::TempDir {
    app_with_manifest(&format!(
        "[[route]]\npattern = \"/a(/.*)\"\nhandler = \"a\"\n\n[[route]]\npattern = \"/hello\"\nhandler = \"hello\"\n\n\
         [handler.a]\nwasm = {:?}\nkv = [\"a\"]\n\n[handler.hello]\nwasm = {:?}\n",
        guests::SERVICES_WASM,
        guests::HELLO_WASM
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
