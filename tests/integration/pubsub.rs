//! Pub/sub with long polling and WebSocket groups (tests/guests/pubsub and
//! groups-ws): a long poll wakes on publish and times out cleanly; a wait
//! may outlast `timeout_ms` up to `wait_timeout_ms`; topics and groups not
//! granted are error values; a client that hangs up during a wait frees its
//! instance at once and `on_connection_close` runs; a broadcast reaches every
//! member connection without calling the members' guests.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use waterspout_tests::guests::PUBSUB_APP;
use waterspout_tests::harness::websocket::{connect, send_text, text};
use waterspout_tests::harness::{Browser, TestServer, admin_config, app_copy};

async fn post(server: &TestServer, path: &str) -> (u16, String) {
    let response = server.client.post(server.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The messages a `/wait` answered: `(cursor, data)` pairs.
fn messages(body: &str) -> Vec<(u64, String)> {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    serde_json::from_value(value["messages"].clone()).unwrap()
}

#[tokio::test]
async fn a_long_poll_wakes_on_publish_and_times_out_cleanly() {
    let server = TestServer::start(PUBSUB_APP).await;
    let (_, latest) = server.get_text("/latest?topic=news").await;
    let latest: u64 = latest.parse().unwrap();

    let waiter = tokio::spawn({
        let url = server.url(&format!("/wait?topic=news&after={latest}&timeout_ms=15000"));
        let client = server.client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "the wait answered before anything was published"
    );
    let (status, cursor) = post(&server, "/publish?topic=news&data=hello").await;
    assert_eq!(status, 200);
    let cursor: u64 = cursor.parse().unwrap();
    assert_eq!(cursor, latest + 1);
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the publish woke the wait")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(messages(&body), [(cursor, "hello".to_owned())]);

    // Nothing newer: an empty list at the timeout, not an error.
    let start = Instant::now();
    let (status, body) = server
        .get_text(&format!("/wait?topic=news&after={cursor}&timeout_ms=300"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(messages(&body).is_empty());
    assert!(start.elapsed() >= Duration::from_millis(300));

    // What is kept answers at once; a cursor from the future (before a
    // restart) gets everything kept.
    post(&server, "/publish?topic=news&data=second").await;
    let (_, body) = server.get_text("/wait?topic=news&after=0&timeout_ms=0").await;
    let datas: Vec<String> = messages(&body).into_iter().map(|(_, d)| d).collect();
    assert_eq!(datas, ["hello", "second"]);
    let (_, body) = server
        .get_text("/wait?topic=news&after=999999&timeout_ms=10000")
        .await;
    assert_eq!(messages(&body).len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_wait_may_outlast_timeout_ms_up_to_wait_timeout_ms() {
    // timeout_ms is 2000, wait_timeout_ms 20000: a 3 s wait is a long poll,
    // not a timed-out request.
    let server = TestServer::start(PUBSUB_APP).await;
    let start = Instant::now();
    let (status, body) = server
        .get_text("/wait?topic=room.quiet&after=0&timeout_ms=3000")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(messages(&body).is_empty());
    assert!(start.elapsed() >= Duration::from_millis(3000));
    // The wait budget bounds even a longer wait asked for (20 s budget, 25 s asked).
    server.shutdown().await;
}

#[tokio::test]
async fn topics_and_groups_not_granted_are_refused_with_an_error_value() {
    let server = TestServer::start(PUBSUB_APP).await;
    let (status, body) = post(&server, "/publish?topic=secret&data=x").await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = server.get_text("/wait?topic=secret&timeout_ms=10").await;
    assert_eq!(status, 403);
    let (status, _) = post(&server, "/broadcast?group=room.1&data=x").await;
    assert_eq!(status, 403);
    // An empty topic name is invalid (400), not a trap (500).
    let (status, _) = post(&server, "/publish?topic=&data=x").await;
    assert!(status == 400 || status == 403, "{status}");
    // The handler still serves.
    let (status, _) = post(&server, "/publish?topic=news&data=ok").await;
    assert_eq!(status, 200);
    server.shutdown().await;
}

/// A per-handler gauge (`waterspout_active_instances`,
/// `waterspout_parked_requests`) of `handler` at version 1. The gauges are
/// process-wide: each handler name is used by one test alone.
async fn handler_gauge(server: &TestServer, metric: &str, handler: &str) -> f64 {
    let text = server
        .admin(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{metric}{{handler=\"{handler}\",version=\"1\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Live instances of handler `longpoll`.
async fn live_longpoll_instances(server: &TestServer) -> f64 {
    handler_gauge(server, "waterspout_active_instances", "longpoll").await
}

async fn until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_that_hangs_up_during_a_wait_frees_its_instance_at_once() {
    let server = TestServer::start_with(PUBSUB_APP, admin_config()).await;
    let (_, closed_before) = server.get_text("/lp/latest?topic=closed").await;
    let closed_before: u64 = closed_before.parse().unwrap();
    let (_, hold) = server.get_text("/lp/latest?topic=hold").await;
    until("idle before", Duration::from_secs(5), async || {
        live_longpoll_instances(&server).await == 0.0
    })
    .await;

    const POLLS: usize = 5;
    let mut sockets = Vec::new();
    for _ in 0..POLLS {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        let request =
            format!("GET /lp/wait?topic=hold&after={hold}&timeout_ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        sockets.push(socket);
    }
    until("every long poll waiting", Duration::from_secs(10), async || {
        live_longpoll_instances(&server).await == POLLS as f64
    })
    .await;

    let hung_up = Instant::now();
    drop(sockets);
    // The wait asked for 20 s; the instances go as soon as the host sees the hang-up.
    until("instances freed", Duration::from_secs(3), async || {
        live_longpoll_instances(&server).await == 0.0
    })
    .await;
    assert!(hung_up.elapsed() < Duration::from_secs(3));

    // Each guest heard `closed` and ran on_connection_close (it publishes on "closed").
    let mut seen = Vec::new();
    let mut after = closed_before;
    until(
        "on_connection_close ran for every poll",
        Duration::from_secs(10),
        async || {
            let (_, body) = server
                .get_text(&format!("/wait?topic=closed&after={after}&timeout_ms=1000"))
                .await;
            for (cursor, data) in messages(&body) {
                after = cursor;
                seen.push(data);
            }
            seen.len() >= POLLS
        },
    )
    .await;
    assert!(seen.iter().all(|d| d == "closed:hold"), "{seen:?}");
    server.shutdown().await;
}

/// `park_waits`: a blocking wait parks the request (no instance while it
/// waits), one publish answers every parked poll (the request runs again
/// and its wait answers at once), a parked wait times out once (not again
/// on the run after it), and a client that hangs up leaves nothing parked.
#[tokio::test]
async fn parked_long_polls_hold_no_instance_and_wake_on_publish() {
    let server = TestServer::start_with(PUBSUB_APP, admin_config()).await;
    let parked = async || handler_gauge(&server, "waterspout_parked_requests", "parked").await;
    let live = async || handler_gauge(&server, "waterspout_active_instances", "parked").await;
    let (_, latest) = server.get_text("/park/latest?topic=parking").await;
    let latest: u64 = latest.parse().unwrap();

    const POLLS: usize = 30;
    let polls: Vec<_> = (0..POLLS)
        .map(|_| {
            let request = server.client.get(server.url(&format!(
                "/park/wait?topic=parking&after={latest}&timeout_ms=15000"
            )));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        })
        .collect();
    until("every poll parked", Duration::from_secs(10), async || {
        parked().await == POLLS as f64
    })
    .await;
    assert_eq!(live().await, 0.0, "a parked poll holds no instance");
    assert!(polls.iter().all(|p| !p.is_finished()));

    let (status, cursor) = post(&server, "/publish?topic=parking&data=wake").await;
    assert_eq!(status, 200, "{cursor}");
    let cursor: u64 = cursor.parse().unwrap();
    for poll in polls {
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), poll)
            .await
            .expect("the publish answered every parked poll")
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(messages(&body), [(cursor, "wake".to_owned())]);
    }
    assert_eq!(parked().await, 0.0);

    // What is kept answers at once, without parking.
    let (status, body) = server
        .get_text("/park/wait?topic=parking&after=0&timeout_ms=10000")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(messages(&body).last(), Some(&(cursor, "wake".to_owned())));

    // Nothing newer: the parked wait times out, and the run after it gets
    // the empty list (it does not park again for another 15 s).
    let start = Instant::now();
    let (status, body) = server
        .get_text(&format!("/park/wait?topic=parking&after={cursor}&timeout_ms=400"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(messages(&body).is_empty(), "{body}");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Clients that hang up while parked leave nothing behind.
    let mut sockets = Vec::new();
    for _ in 0..5 {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        let request = format!(
            "GET /park/wait?topic=parking&after={cursor}&timeout_ms=15000 HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        sockets.push(socket);
    }
    until("the raw polls parked", Duration::from_secs(10), async || {
        parked().await == 5.0
    })
    .await;
    drop(sockets);
    until(
        "nothing parked after the hang-ups",
        Duration::from_secs(3),
        async || parked().await == 0.0,
    )
    .await;
    assert_eq!(live().await, 0.0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_broadcast_reaches_every_member_without_calling_their_guests() {
    let server = TestServer::start(PUBSUB_APP).await;
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(connect(&server, "/ws?group=lobby").await);
    }
    let mut outsider = connect(&server, "/ws").await;

    let (status, reached) = post(&server, "/broadcast?group=lobby&data=hello").await;
    assert_eq!((status, reached.as_str()), (200, "3"));
    for member in &mut members {
        assert_eq!(text(member).await, "hello");
    }
    // on-message ran once per member: for this `count`, never for the broadcast.
    for member in &mut members {
        send_text(member, "count").await;
        assert_eq!(text(member).await, "calls 1");
    }
    send_text(&mut outsider, "count").await;
    assert_eq!(
        text(&mut outsider).await,
        "calls 1",
        "the outsider got nothing before"
    );

    // A member broadcasts too (it is one of the recipients).
    send_text(&mut members[0], "broadcast lobby hi").await;
    let (a, b) = (text(&mut members[0]).await, text(&mut members[0]).await);
    let mut got = [a, b];
    got.sort();
    assert_eq!(got, ["hi", "sent 3"]);
    for member in &mut members[1..] {
        assert_eq!(text(member).await, "hi");
    }

    // Leaving, and closing, take a member out.
    send_text(&mut members[1], "leave lobby").await;
    assert_eq!(text(&mut members[1]).await, "left");
    let (_, reached) = post(&server, "/broadcast?group=lobby&data=x").await;
    assert_eq!(reached, "2");
    let last = members.pop().unwrap();
    drop(last);
    until(
        "a closed connection leaves its groups",
        Duration::from_secs(10),
        async || post(&server, "/broadcast?group=lobby&data=y").await.1 == "1",
    )
    .await;

    // A group not granted refuses the handshake.
    let url = format!("ws://{}/ws?group=secret", server.addr);
    let refused = tokio_tungstenite::connect_async(url).await;
    assert!(refused.is_err(), "joining a group not granted must fail");
    server.shutdown().await;
}

/// The news example (C and JavaScript): publish, a long poll woken by a
/// publish, a topic not granted (403), and a hang-up during the wait
/// running the SDK's on_connection_close (which publishes "closed").
async fn news_case(app: &str) {
    let server = TestServer::start(app).await;
    let (status, body) = server.get_text("/topic-not-granted").await;
    assert_eq!(status, 403, "{body}");

    let (status, cursor) = post(&server, "/publish?data=first").await;
    assert_eq!(status, 200, "{cursor}");
    let cursor: u64 = cursor.parse().unwrap();
    let (_, body) = server.get_text("/wait?after=0&timeout_ms=0").await;
    assert_eq!(messages(&body), [(cursor, "first".to_owned())]);

    let waiter = tokio::spawn({
        let url = server.url(&format!("/wait?after={cursor}&timeout_ms=15000"));
        let client = server.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    post(&server, "/publish?data=second").await;
    let body = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(messages(&body), [(cursor + 1, "second".to_owned())]);

    // A hang-up during the wait: the SDK calls on_connection_close.
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /wait?after={}&timeout_ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n",
        cursor + 1
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(socket);
    let (_, body) = server
        .get_text(&format!("/wait?after={}&timeout_ms=5000", cursor + 1))
        .await;
    assert_eq!(messages(&body), [(cursor + 2, "closed".to_owned())]);
    server.shutdown().await;
}

#[tokio::test]
async fn c_guests_publish_and_long_poll() {
    news_case(waterspout_tests::guests::C_NEWS_APP).await;
}

#[tokio::test]
async fn js_guests_publish_and_long_poll() {
    news_case(waterspout_tests::guests::JS_NEWS_APP).await;
}

/// Tornado's chat demo protocol, over HTTP and WebSocket (examples/python/chat).
#[tokio::test]
async fn the_python_chat_speaks_tornados_chat_protocol() {
    let server = TestServer::start(waterspout_tests::guests::PYTHON_CHAT_APP).await;
    let (status, page) = server.get_text("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"messageform\""), "{page}");

    let form = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs
    };
    let new = |body: &'static str| {
        let client = server.client.clone();
        let url = server.url("/a/message/new");
        async move {
            let response = client.post(url).form(&[("body", body)]).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let first = new("<b>hi</b> & bye").await;
    assert_eq!(first["body"], "<b>hi</b> & bye");
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(
        first["html"],
        format!("<div class=\"message\" id=\"m{id}\">&lt;b&gt;hi&lt;/b&gt; &amp; bye</div>")
    );

    // No cursor, or one it does not know: the cached messages at once.
    let updates = |pairs: Vec<(String, String)>| {
        let client = server.client.clone();
        let url = server.url("/a/message/updates");
        async move {
            let response = client.post(url).form(&pairs).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    for pairs in [form(&[]), form(&[("cursor", "not-a-known-id")])] {
        let got = tokio::time::timeout(Duration::from_secs(10), updates(pairs))
            .await
            .unwrap();
        assert_eq!(got["messages"][0]["id"], id.as_str());
    }

    // The newest cursor: a long poll until the next message, which a
    // WebSocket client on /chatsocket sends (both variants share the room).
    let poll = tokio::spawn(updates(form(&[("cursor", &id)])));
    let mut socket_a = connect(&server, "/chatsocket").await;
    let mut socket_b = connect(&server, "/chatsocket").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the poll answered with nothing new");
    send_text(&mut socket_a, r#"{"body": "from a socket"}"#).await;
    for socket in [&mut socket_a, &mut socket_b] {
        let message: Value = serde_json::from_str(&text(socket).await).unwrap();
        assert_eq!(message["body"], "from a socket");
        assert!(message["html"].as_str().unwrap().contains("from a socket"));
    }
    let got = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got["messages"][0]["body"], "from a socket");

    // A message posted over HTTP reaches the sockets too.
    new("over http").await;
    for socket in [&mut socket_a, &mut socket_b] {
        let message: Value = serde_json::from_str(&text(socket).await).unwrap();
        assert_eq!(message["body"], "over http");
    }
    server.shutdown().await;
}

/// `max_instances` counts instances of any language: a pool of 12 holds 10
/// waiting Python long polls (a componentize-py component has ~14 core
/// instances; the pool once had room for 4 per instance, so ~3 fit). The
/// chat's polls park by default; here they wait in their instances.
#[tokio::test]
async fn the_instance_pool_holds_max_instances_python_long_polls() {
    let mut config = waterspout::ServerConfig::default();
    config.engine.max_instances = 12;
    let app = app_copy(waterspout_tests::guests::PYTHON_CHAT_APP, |manifest| {
        manifest
            .replace("park_waits = true", "park_waits = false")
            .replace("max_instances = 8\n", "max_instances = 100\n")
    });
    let server = TestServer::start_with(app.path().to_str().unwrap(), config).await;
    let first = post_message(&server, "first").await;
    let cursor = first["id"].as_str().unwrap().to_owned();
    let polls = chat_polls(&server, &cursor, 10);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for poll in &polls {
        assert!(!poll.is_finished(), "a poll answered before any message");
    }
    post_message(&server, "wake up").await;
    for poll in polls {
        let (status, body) = tokio::time::timeout(Duration::from_secs(20), poll)
            .await
            .expect("woken in time")
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("wake up"), "{body}");
    }
    server.shutdown().await;
}

/// The chat's waiting polls park (`park_waits` in its manifest): 20 of them
/// hold no CPython instance, and one post answers them all (each runs
/// again and finds the message in the kv history).
#[tokio::test]
async fn the_python_chats_waiting_polls_hold_no_instance() {
    let app = app_copy(waterspout_tests::guests::PYTHON_CHAT_APP, |manifest| {
        // (Without reuse: an idle instance would count as live.)
        manifest
            .replace("handler = \"chat\"", "handler = \"parkchat\"")
            .replace("[handler.chat]", "[handler.parkchat]")
            .replace("reuse = 1000", "")
    });
    let server = TestServer::start_with(app.path().to_str().unwrap(), admin_config()).await;
    let first = post_message(&server, "first").await;
    let cursor = first["id"].as_str().unwrap().to_owned();
    const POLLS: usize = 20;
    let polls = chat_polls(&server, &cursor, POLLS);
    until("every poll parked", Duration::from_secs(20), async || {
        handler_gauge(&server, "waterspout_parked_requests", "parkchat").await == POLLS as f64
    })
    .await;
    assert_eq!(
        handler_gauge(&server, "waterspout_active_instances", "parkchat").await,
        0.0,
        "a parked poll holds no instance"
    );
    post_message(&server, "wake up").await;
    for poll in polls {
        let (status, body) = tokio::time::timeout(Duration::from_secs(20), poll)
            .await
            .expect("woken in time")
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let got: Value = serde_json::from_str(&body).unwrap();
        let bodies: Vec<&str> = got["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["wake up"]);
    }
    server.shutdown().await;
}

/// Runs `script` in the current window until it returns `true` (10 s at most).
async fn until_page(browser: &Browser, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = browser.client.execute(script, vec![]).await.unwrap();
        if value == Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The chat page in headless Chromium: two windows; a message typed in one
/// appears in the other, by long polling and by the WebSocket variant.
#[tokio::test]
async fn two_browser_windows_chat_by_long_polling_and_by_websocket() {
    let server = TestServer::start(waterspout_tests::guests::PYTHON_CHAT_APP).await;
    let browser = Browser::start().await;
    let client = &browser.client;
    for (query, words) in [
        ("", "hello by long polling"),
        ("?transport=websocket", "hello by websocket"),
    ] {
        let url = server.url(&format!("/{query}"));
        client.goto(&url).await.unwrap();
        let first = client.window().await.unwrap();
        let second = client.new_window(false).await.unwrap().handle;
        client.switch_to_window(second.clone()).await.unwrap();
        client.goto(&url).await.unwrap();
        until_page(
            &browser,
            "the second window listening",
            "return document.body.dataset.ready === '1';",
        )
        .await;

        client.switch_to_window(first.clone()).await.unwrap();
        until_page(
            &browser,
            "the first window listening",
            "return document.body.dataset.ready === '1';",
        )
        .await;
        let input = client.find(Locator::Id("message")).await.unwrap();
        input.send_keys(words).await.unwrap();
        client
            .find(Locator::Css("input[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        let shown = format!("return document.getElementById('inbox').textContent.includes({words:?});");
        client.switch_to_window(second.clone()).await.unwrap();
        until_page(&browser, "the message in the other window", &shown).await;
        client.switch_to_window(first.clone()).await.unwrap();
        until_page(&browser, "the message in its own window", &shown).await;
        // One copy each, not two (the id guards against doubles).
        let count: Value = client
            .execute(&format!("return [...document.querySelectorAll('#inbox .message')].filter(m => m.textContent === {words:?}).length;"), vec![])
            .await
            .unwrap();
        assert_eq!(count, Value::from(1));
        client.switch_to_window(second).await.unwrap();
        client.close_window().await.unwrap();
        client.switch_to_window(first).await.unwrap();
    }
    browser.close().await;
    server.shutdown().await;
}

/// The chat example's manifest with `[app] kv_persist = true`, its wasm
/// paths made absolute, in a temporary app directory.
fn persistent_chat_app() -> tempfile::TempDir {
    app_copy(waterspout_tests::guests::PYTHON_CHAT_APP, |manifest| {
        format!("[app]\nkv_persist = true\n\n{manifest}")
    })
}

/// `n` long polls of the chat after `cursor`, each answering `(status, body)`.
fn chat_polls(server: &TestServer, cursor: &str, n: usize) -> Vec<tokio::task::JoinHandle<(u16, String)>> {
    (0..n)
        .map(|_| {
            let request = server
                .client
                .post(server.url("/a/message/updates"))
                .form(&[("cursor", cursor)]);
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        })
        .collect()
}

async fn post_message(server: &TestServer, body: &str) -> Value {
    let response = server
        .client
        .post(server.url("/a/message/new"))
        .form(&[("body", body)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// What `/a/message/updates` answers at once for a cursor it does not know.
async fn cached_bodies(server: &TestServer) -> Vec<String> {
    let response = server
        .client
        .post(server.url("/a/message/updates"))
        .form(&[("cursor", "unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let value: Value = response.json().await.unwrap();
    value["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

/// The chat's history is the newest 200 messages in kv: posts at once lose
/// none (compare-and-swap), the oldest fall out, and with `kv_persist` the
/// history is still there after a restart (pub/sub cursors restart at 1).
#[tokio::test]
async fn the_chat_history_keeps_200_in_kv_across_concurrent_posts_and_a_restart() {
    use futures_util::StreamExt as _;
    let app = persistent_chat_app();
    let store = tempfile::tempdir().unwrap();
    let config = || waterspout::ServerConfig {
        store_dir: Some(store.path().to_owned()),
        ..waterspout::ServerConfig::default()
    };
    let dir = app.path().to_str().unwrap();
    let server = TestServer::start_with(dir, config()).await;
    for i in 0..5 {
        post_message(&server, &format!("old {i}")).await;
    }
    // 200 posts, eight at a time: every one must land, pushing the old ones out.
    let bodies: Vec<String> = (0..200).map(|i| format!("new {i}")).collect();
    futures_util::stream::iter(bodies.iter())
        .for_each_concurrent(8, |body| {
            let server = &server;
            async move {
                post_message(server, body).await;
            }
        })
        .await;
    let mut cached = cached_bodies(&server).await;
    assert_eq!(cached.len(), 200);
    cached.sort();
    let mut want = bodies.clone();
    want.sort();
    assert_eq!(cached, want, "every concurrent post kept, the five old ones out");
    let last = post_message(&server, "the last before the restart").await;
    server.shutdown().await;

    let server = TestServer::start_with(dir, config()).await;
    let cached = cached_bodies(&server).await;
    assert_eq!(cached.len(), 200);
    assert_eq!(cached.last().unwrap(), "the last before the restart");
    let (_, page) = server.get_text("/").await;
    assert!(
        page.contains("the last before the restart"),
        "the page shows the kept history"
    );
    // The newest id is still a cursor to wait after: a poll waits for the next post.
    let poll = tokio::spawn({
        let client = server.client.clone();
        let url = server.url("/a/message/updates");
        let cursor = last["id"].as_str().unwrap().to_owned();
        async move {
            let response = client.post(url).form(&[("cursor", cursor)]).send().await.unwrap();
            response.json::<Value>().await.unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the poll answered with nothing new");
    post_message(&server, "after the restart").await;
    let got = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    let got: Vec<&str> = got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec!["after the restart"]);

    // A message too long for the cache is refused with a reason, and nothing is lost.
    let response = server
        .client
        .post(server.url("/a/message/new"))
        .form(&[("body", "x".repeat(1001))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(cached_bodies(&server).await.last().unwrap(), "after the restart");
    server.shutdown().await;
}

/// A JS or C WebSocket guest (`/socket` of examples/{js,c}/news) joins the
/// group `news`; a message one member sends is broadcast to every member
/// (itself too), the broadcast's count says how many took it, and a closed
/// connection has left the group.
async fn group_case(app: &str) {
    let server = TestServer::start(app).await;
    let mut a = connect(&server, "/socket").await;
    let mut b = connect(&server, "/socket").await;
    send_text(&mut a, "hello from a").await;
    // The broadcast is queued on a's own connection before its guest writes the count.
    assert_eq!(text(&mut a).await, "hello from a");
    assert_eq!(text(&mut a).await, "reached 2");
    assert_eq!(text(&mut b).await, "hello from a");

    drop(b);
    // The host drops b's membership when its connection closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        send_text(&mut a, "again").await;
        assert_eq!(text(&mut a).await, "again");
        let count = text(&mut a).await;
        if count == "reached 1" {
            break;
        }
        assert_eq!(count, "reached 2");
        assert!(
            Instant::now() < deadline,
            "the closed member never left the group"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_js_websocket_guest_joins_a_group_and_receives_its_broadcast() {
    group_case(waterspout_tests::guests::JS_NEWS_APP).await;
}

#[tokio::test]
async fn a_c_websocket_guest_joins_a_group_and_receives_its_broadcast() {
    group_case(waterspout_tests::guests::C_NEWS_APP).await;
}
