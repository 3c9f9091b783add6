//! Queues (Tornado's `tornado.queues.Queue`) over real sockets: a test guest
//! (`tests/guests/queue-handler`) turns each request into one queue call.
//! FIFO order, `put` waiting on a full queue until a `get` makes room, the
//! `_nowait` and timeout errors, `join` waiting for every `task_done`, and
//! the grants: a queue not granted is an error value, not a trap.

use std::time::{Duration, Instant};

use waterspout_tests::guests::QUEUE_HANDLER_WASM;
use waterspout_tests::harness::{TestServer, app_with_manifest};

/// An app serving the queue guest at `/…` with queues `small` (2 items),
/// `free` (unbounded) and `other` (declared, not granted).
fn queue_app() -> tempfile::TempDir {
    app_with_manifest(&format!(
        r#"
[[route]]
pattern = "/.*"
handler = "queues"

[handler.queues]
wasm = "{QUEUE_HANDLER_WASM}"
queues = ["small", "free"]
timeout_ms = 5000

[queue.small]
max_size = 2
max_item_size = 64

[queue.free]

[queue.other]
"#
    ))
}

async fn start() -> (TestServer, tempfile::TempDir) {
    let dir = queue_app();
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    (server, dir)
}

async fn call(server: &TestServer, path: &str) -> String {
    let (status, text) = server.get_text(path).await;
    assert_eq!(status, 200, "{path}: {text}");
    text
}

#[tokio::test]
async fn put_and_get_are_first_in_first_out() {
    let (server, _dir) = start().await;
    assert_eq!(call(&server, "/maxsize?q=small").await, "size:2");
    assert_eq!(call(&server, "/maxsize?q=free").await, "size:0");
    for item in ["a", "b"] {
        assert_eq!(call(&server, &format!("/put?q=small&item={item}")).await, "ok");
    }
    assert_eq!(call(&server, "/qsize?q=small").await, "size:2");
    assert_eq!(call(&server, "/get?q=small").await, "item:a");
    assert_eq!(call(&server, "/get?q=small").await, "item:b");
    assert_eq!(call(&server, "/qsize?q=small").await, "size:0");
    // get_nowait on an empty queue: QueueEmpty.
    assert_eq!(call(&server, "/get?q=small&timeout=0").await, "error:empty");
    server.shutdown().await;
}

#[tokio::test]
async fn get_with_a_timeout_times_out_on_an_empty_queue() {
    let (server, _dir) = start().await;
    let start = Instant::now();
    assert_eq!(call(&server, "/get?q=free&timeout=300").await, "error:timeout");
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    // The timed-out get took nothing: a later item goes to the next get.
    assert_eq!(call(&server, "/put?q=free&item=later").await, "ok");
    assert_eq!(call(&server, "/get?q=free&timeout=0").await, "item:later");
    server.shutdown().await;
}

#[tokio::test]
async fn a_waiting_get_is_woken_by_a_put() {
    let (server, _dir) = start().await;
    let waiting = {
        let (client, url) = (server.client.clone(), server.url("/get?q=free"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "get returned from an empty queue");
    assert_eq!(call(&server, "/put?q=free&item=woken").await, "ok");
    let got = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    assert_eq!(got.expect("the get was woken").unwrap(), "item:woken");
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_makes_put_wait_until_a_get_makes_room() {
    let (server, _dir) = start().await;
    assert_eq!(call(&server, "/put?q=small&item=1").await, "ok");
    assert_eq!(call(&server, "/put?q=small&item=2").await, "ok");
    // put_nowait: QueueFull; put with a timeout: TimeoutError.
    assert_eq!(call(&server, "/put?q=small&item=3&timeout=0").await, "error:full");
    let start = Instant::now();
    assert_eq!(
        call(&server, "/put?q=small&item=3&timeout=200").await,
        "error:timeout"
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(call(&server, "/qsize?q=small").await, "size:2");

    // A put without timeout waits…
    let blocked = {
        let (client, url) = (server.client.clone(), server.url("/put?q=small&item=3"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!blocked.is_finished(), "put returned while the queue was full");
    // …until a get takes an item.
    assert_eq!(call(&server, "/get?q=small").await, "item:1");
    let put = tokio::time::timeout(Duration::from_secs(5), blocked).await;
    assert_eq!(put.expect("the put went through").unwrap(), "ok");
    assert_eq!(call(&server, "/get?q=small").await, "item:2");
    assert_eq!(call(&server, "/get?q=small").await, "item:3");
    server.shutdown().await;
}

#[tokio::test]
async fn join_waits_until_every_item_is_done() {
    let (server, _dir) = start().await;
    // Nothing put yet: join returns at once.
    assert_eq!(call(&server, "/join?q=free&timeout=0").await, "ok");
    assert_eq!(call(&server, "/put?q=free&item=x").await, "ok");
    assert_eq!(call(&server, "/put?q=free&item=y").await, "ok");
    assert_eq!(call(&server, "/join?q=free&timeout=100").await, "error:timeout");
    let joining = {
        let (client, url) = (server.client.clone(), server.url("/join?q=free"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    assert_eq!(call(&server, "/get?q=free").await, "item:x");
    assert_eq!(call(&server, "/get?q=free").await, "item:y");
    assert_eq!(call(&server, "/task_done?q=free").await, "ok");
    // One of two done: the join still waits (taking an item is not finishing it).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!joining.is_finished(), "join returned with a task unfinished");
    assert_eq!(call(&server, "/task_done?q=free").await, "ok");
    let joined = tokio::time::timeout(Duration::from_secs(5), joining).await;
    assert_eq!(joined.expect("join returned").unwrap(), "ok");
    // More task_done calls than items: Tornado's ValueError.
    assert_eq!(
        call(&server, "/task_done?q=free").await,
        "error:too-many-task-done"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn queues_not_granted_and_items_too_large_are_error_values() {
    let (server, _dir) = start().await;
    assert_eq!(
        call(&server, "/put?q=other&item=x").await,
        "error:not-granted:other"
    );
    assert_eq!(
        call(&server, "/get?q=other&timeout=0").await,
        "error:not-granted:other"
    );
    assert_eq!(
        call(&server, "/qsize?q=nowhere").await,
        "error:not-granted:nowhere"
    );
    assert_eq!(
        call(&server, "/put?q=small&item=x&size=65").await,
        "error:too-large:64"
    );
    assert_eq!(call(&server, "/put?q=small&item=x&size=64").await, "ok");
    assert_eq!(call(&server, "/qsize?q=small").await, "size:1");
    server.shutdown().await;
}

#[tokio::test]
async fn a_get_waiting_past_the_handler_time_limit_answers_503_and_takes_nothing() {
    let dir = app_with_manifest(&format!(
        "[[route]]\npattern = \"/.*\"\nhandler = \"q\"\n\n[handler.q]\nwasm = \"{QUEUE_HANDLER_WASM}\"\nqueues = [\"free\"]\ntimeout_ms = 300\n\n[queue.free]\n"
    ));
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    let (status, _) = server.get_text("/get?q=free").await;
    assert_eq!(status, 503);
    assert_eq!(call(&server, "/put?q=free&item=kept").await, "ok");
    assert_eq!(call(&server, "/get?q=free&timeout=0").await, "item:kept");
    server.shutdown().await;
}

#[test]
fn a_grant_of_an_undeclared_queue_is_refused_naming_the_line() {
    let manifest = "[[route]]\npattern = \"/\"\nhandler = \"q\"\n\n[handler.q]\nwasm = \"q.wasm\"\nqueues = [\"missing\"]\n";
    let error = waterspout::Manifest::parse(std::path::Path::new("/app/waterspout.toml"), manifest)
        .expect_err("the manifest names a queue it does not declare");
    let text = error.to_string();
    assert!(text.starts_with("/app/waterspout.toml:5:"), "{text}");
    assert!(text.contains("queue \"missing\""), "{text}");
}

/// The queue cases every SDK passes, over the queue-call protocol, on an
/// app with queues `jobs` and `small` (2 items) granted and `other` not.
async fn sdk_semantics(server: &TestServer) {
    assert_eq!(call(server, "/put?q=small&item=a").await, "ok");
    assert_eq!(call(server, "/put?q=small&item=b").await, "ok");
    assert_eq!(call(server, "/put?q=small&item=c&timeout=0").await, "error:full");
    assert_eq!(
        call(server, "/put?q=small&item=c&timeout=100").await,
        "error:timeout"
    );
    assert_eq!(call(server, "/qsize?q=small").await, "size:2");
    assert_eq!(call(server, "/join?q=small&timeout=50").await, "error:timeout");
    assert_eq!(call(server, "/get?q=small").await, "item:a");
    assert_eq!(call(server, "/get?q=small&timeout=100").await, "item:b");
    assert_eq!(call(server, "/get?q=small&timeout=0").await, "error:empty");
    assert_eq!(call(server, "/get?q=small&timeout=100").await, "error:timeout");
    assert_eq!(call(server, "/task_done?q=small").await, "ok");
    assert_eq!(call(server, "/task_done?q=small").await, "ok");
    assert_eq!(call(server, "/join?q=small").await, "ok");
    assert_eq!(
        call(server, "/task_done?q=small").await,
        "error:too-many-task-done"
    );
    assert_eq!(call(server, "/put?q=other&item=x").await, "error:not-granted");
}

#[tokio::test]
async fn python_queues() {
    let server = TestServer::start(waterspout_tests::guests::PYTHON_QUEUES_APP).await;
    sdk_semantics(&server).await;
    server.shutdown().await;
}

/// Jobs put through the app's handler come back from its `echo` workers as
/// `JOB@LANGUAGE#INDEX`, every job marked done.
async fn workers_echo(app: &str, language: &str) {
    let server = TestServer::start(app).await;
    for i in 0..4 {
        assert_eq!(call(&server, &format!("/put?q=jobs&item=job{i}")).await, "ok");
    }
    let mut results = Vec::new();
    for _ in 0..4 {
        results.push(call(&server, "/get?q=results&timeout=20000").await);
    }
    results.sort();
    for (i, r) in results.iter().enumerate() {
        assert!(r.starts_with(&format!("item:job{i}@{language}#")), "{results:?}");
    }
    assert_eq!(call(&server, "/join?q=jobs&timeout=5000").await, "ok");
    server.shutdown().await;
}

#[tokio::test]
async fn python_workers_take_jobs_from_a_queue() {
    workers_echo(waterspout_tests::guests::PYTHON_QUEUES_APP, "python").await;
}

#[tokio::test]
async fn js_workers_take_jobs_from_a_queue() {
    workers_echo(waterspout_tests::guests::JS_QUEUES_APP, "js").await;
}

#[tokio::test]
async fn c_workers_take_jobs_from_a_queue() {
    workers_echo(waterspout_tests::guests::C_QUEUES_APP, "c").await;
}

#[tokio::test]
async fn js_queues() {
    let server = TestServer::start(waterspout_tests::guests::JS_QUEUES_APP).await;
    sdk_semantics(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn c_queues() {
    let server = TestServer::start(waterspout_tests::guests::C_QUEUES_APP).await;
    sdk_semantics(&server).await;
    server.shutdown().await;
}
