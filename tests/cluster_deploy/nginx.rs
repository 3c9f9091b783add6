//! nginx (docs/cluster/nginx.conf) in front of three nodes: plain HTTP, a
//! long poll answered by a publish (both through nginx, so usually on
//! different nodes), and a WebSocket echo through the upgrade.

use std::time::Duration;

use waterspout_tests::guests;
use waterspout_tests::harness::Nginx;
use waterspout_tests::harness::websocket::{Client, send_text, text};

use crate::nodes::{Node, Redis, cluster_app};

fn manifest() -> String {
    format!(
        r#"[[route]]
pattern = "/echo"
handler = "echo"

[[route]]
pattern = "/ps/.*"
handler = "pubsub"

[[route]]
pattern = "/"
handler = "version"

[handler.version]
wasm = "{version}"

[handler.echo]
wasm = "{echo}"

[handler.pubsub]
wasm = "{pubsub}"
timeout_ms = 2000
wait_timeout_ms = 20000
pubsub_topics = ["news"]
"#,
        version = guests::VERSION_A_WASM,
        echo = guests::ECHO_WASM,
        pubsub = guests::PUBSUB_WASM,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_in_front_of_three_nodes_passes_http_long_polls_and_websockets() {
    let redis = Redis::start();
    let app = cluster_app(&manifest(), &redis);
    let nodes = [
        Node::start(app.path()),
        Node::start(app.path()),
        Node::start(app.path()),
    ];
    let upstreams: Vec<&str> = nodes.iter().map(|n| n.process.addr.as_str()).collect();
    let nginx = Nginx::start(&upstreams);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // HTTP: six requests, round robin over the three nodes.
    for _ in 0..6 {
        let r = client.get(nginx.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", nginx.error_log());
        assert_eq!(r.text().await.unwrap(), "a");
    }
    // (The log is written in batches: wait for each node's line.)
    for node in &nodes {
        node.process.wait_for_log("200 GET / ");
    }

    // A long poll through nginx, woken by a publish through nginx.
    let latest: u64 = client
        .get(nginx.url("/ps/latest?topic=news"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let waiter = {
        let (client, url) = (
            client.clone(),
            nginx.url(&format!("/ps/wait?topic=news&after={latest}&timeout_ms=15000")),
        );
        tokio::spawn(async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the long poll answered before the publish");
    for _ in 0..2 {
        // Two publishes: round robin puts at least one on another node.
        let r = client
            .post(nginx.url("/ps/publish?topic=news&data=hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the long poll was answered")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello"), "{body}");

    // A WebSocket echo through nginx's upgrade.
    let url = format!("ws://{}/echo", nginx.addr);
    let (mut ws, response): (Client, _) =
        tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url))
            .await
            .expect("handshake in time")
            .expect("handshake through nginx");
    assert_eq!(response.status(), 101);
    send_text(&mut ws, "over nginx").await;
    assert_eq!(text(&mut ws).await, "over nginx");
    send_text(&mut ws, "again").await;
    assert_eq!(text(&mut ws).await, "again");
}
