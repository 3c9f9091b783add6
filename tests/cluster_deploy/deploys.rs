//! Deploys on one node reach every node; late and restarted nodes catch up
//! before they serve; a node killed mid-deploy leaves one version everywhere.

use std::time::Duration;

use reqwest::Method;
use waterspout_tests::guests;
use waterspout_tests::harness::{read_wasm, sha256_hex};

use crate::nodes::{Node, Redis, cluster_app, within};

/// The handler "version" at `/`, version a (`GET /` → "a").
fn version_manifest() -> String {
    format!(
        "[[route]]\npattern = \"/\"\nhandler = \"version\"\n\n[handler.version]\nwasm = \"{}\"\n",
        guests::VERSION_A_WASM
    )
}

/// Whether every node answers `GET path` with `body`.
async fn all_serve(nodes: &[&Node], path: &str, body: &str) -> bool {
    for node in nodes {
        if node.get(path).await != (200, body.to_owned()) {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_on_one_node_is_served_by_every_node_and_a_late_node_catches_up_before_serving() {
    let redis = Redis::start();
    let app = cluster_app(&version_manifest(), &redis);
    let a = Node::start(app.path());
    let b = Node::start(app.path());
    let c = Node::start(app.path());
    for node in [&a, &b, &c] {
        assert_eq!(node.get("/").await, (200, "a".to_owned()));
    }

    // Upload version b on A: B and C serve it within 2 s of A's answer.
    let (status, answer) = a
        .admin(
            Method::POST,
            "/handlers/version/versions",
            Some(read_wasm(guests::VERSION_B_WASM)),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["nodes_seen"], 3, "{answer}");
    assert!(answer["deploy_id"].as_u64().unwrap() >= 2, "{answer}");
    assert_eq!(
        a.get("/").await,
        (200, "b".to_owned()),
        "the deploying node serves it at once"
    );
    let (b_ref, c_ref) = (&b, &c);
    let took = within(Duration::from_secs(2), || async move {
        all_serve(&[b_ref, c_ref], "/", "b").await
    })
    .await;
    assert!(took.is_some(), "B and C did not serve version b within 2 s");
    let sha_b = sha256_hex(&read_wasm(guests::VERSION_B_WASM));
    for node in [&a, &b, &c] {
        assert_eq!(node.active_sha("version").await, sha_b);
    }
    // The version number the deploying node gave is kept everywhere.
    let version_on = |info: serde_json::Value| info["active_version"].as_u64().unwrap();
    let on_a = version_on(a.admin(Method::GET, "/handlers/version", None).await.1);
    for node in [&b, &c] {
        assert_eq!(
            version_on(node.admin(Method::GET, "/handlers/version", None).await.1),
            on_a
        );
    }

    // A rollback on C with ?wait=all: answered once every node applied it.
    let (status, answer) = c
        .admin(
            Method::POST,
            "/handlers/version/rollback?wait=all&timeout=10",
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["nodes_seen"], 3, "{answer}");
    assert_eq!(answer["nodes_applied"], 3, "{answer}");
    assert!(
        all_serve(&[&a, &b, &c], "/", "a").await,
        "after wait=all every node serves a"
    );

    // A route change on B reaches A and C.
    let routes = serde_json::json!({ "routes": [
        { "pattern": "/", "handler": "version" },
        { "pattern": "/also", "handler": "version" },
    ]});
    let (status, answer) = b
        .admin(
            Method::PUT,
            "/routes?wait=all",
            Some(serde_json::to_vec(&routes).unwrap()),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["nodes_applied"], 3, "{answer}");
    assert!(all_serve(&[&a, &b, &c], "/also", "a").await);

    // Activate version b again on A, then start D: D catches up before it
    // serves, so its very first answer is b, and it has the routes.
    let (status, answer) = a
        .admin(
            Method::POST,
            &format!("/handlers/version/versions/{on_a}/activate?wait=all"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let d = Node::start(app.path());
    assert_eq!(d.get("/").await, (200, "b".to_owned()), "D's first answer");
    assert_eq!(d.get("/also").await, (200, "b".to_owned()));
    assert_eq!(d.active_sha("version").await, sha_b);
    let log = d.process.log();
    assert!(
        log.contains("catching up with the active set before serving"),
        "{log}"
    );
    let catch_up = log.find("applied the active set").expect("D applied the set");
    let serving = log.find("serving on http://").expect("D serves");
    assert!(catch_up < serving, "D served before catching up:\n{log}");

    // Four nodes now, all on the newest deploy; the gauges say so.
    let seen = within(Duration::from_secs(3), || async {
        let metrics = d
            .process
            .admin(Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics.contains("waterspout_cluster_deploy_nodes_seen 4")
            && metrics.contains("waterspout_cluster_deploy_nodes_applied 4")
    })
    .await;
    assert!(seen.is_some(), "the gauges never showed 4 nodes, all applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_changes_no_node_and_a_deleted_handler_leaves_every_node() {
    let redis = Redis::start();
    let app = cluster_app(&version_manifest(), &redis);
    let a = Node::start(app.path());
    let b = Node::start(app.path());

    // Not a component: refused on A, recorded nowhere.
    let (status, answer) = a
        .admin(
            Method::POST,
            "/handlers/version/versions",
            Some(b"not wasm".to_vec()),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.get("/").await, (200, "a".to_owned()));

    // A new handler uploaded on B exists on A; deleted on A, it leaves B.
    let (status, answer) = b
        .admin(
            Method::POST,
            "/handlers/extra/versions?wait=all",
            Some(read_wasm(guests::VERSION_B_WASM)),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["nodes_applied"], 2, "{answer}");
    assert_eq!(a.admin(Method::GET, "/handlers/extra", None).await.0, 200);
    let (status, answer) = a.admin(Method::DELETE, "/handlers/extra?wait=all", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["nodes_applied"], 2, "{answer}");
    assert_eq!(b.admin(Method::GET, "/handlers/extra", None).await.0, 404);
}

/// Each round: an upload on A, and after a delay (0 to 300 ms, so the kill
/// falls before, during and after A records it) A is killed with SIGKILL;
/// in odd rounds B too, while it applies. The killed nodes restart on their
/// stores. Every node must then serve one and the same version, the
/// cluster's, from its first answer on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_killed_mid_deploy_leave_every_node_on_one_version() {
    let redis = Redis::start();
    let app = cluster_app(&version_manifest(), &redis);
    let mut a = Node::start(app.path());
    let mut b = Node::start(app.path());
    let c = Node::start(app.path());
    let wasm = [
        read_wasm(guests::VERSION_A_WASM),
        read_wasm(guests::VERSION_B_WASM),
    ];
    let body_of = |sha: &str| {
        if sha == sha256_hex(&wasm[0]) {
            "a"
        } else {
            assert_eq!(sha, sha256_hex(&wasm[1]), "an unknown version is active");
            "b"
        }
    };
    let mut outcomes = Vec::new();
    for (round, delay_ms) in [0u64, 10, 30, 60, 70, 80, 90, 100, 200, 300]
        .into_iter()
        .enumerate()
    {
        let current = c.active_sha("version").await;
        let next = if body_of(&current) == "a" {
            &wasm[1]
        } else {
            &wasm[0]
        };
        let upload = a
            .process
            .admin(Method::POST, "/handlers/version/versions")
            .body(next.clone())
            .send();
        let upload = tokio::spawn(upload);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        a.process.kill_9();
        if round % 2 == 1 {
            b.process.kill_9();
        }
        let _ = upload.await;
        a.restart(app.path());
        if round % 2 == 1 {
            b.restart(app.path());
        }
        // The restarted nodes caught up before serving: they agree with C
        // as soon as they answer (C may still be applying: allow it 2 s).
        let agreed = within(Duration::from_secs(2), || async {
            let shas = [
                a.active_sha("version").await,
                b.active_sha("version").await,
                c.active_sha("version").await,
            ];
            shas.iter().all(|s| *s == shas[0])
        })
        .await;
        let shas = [
            a.active_sha("version").await,
            b.active_sha("version").await,
            c.active_sha("version").await,
        ];
        assert!(
            agreed.is_some(),
            "round {round} (kill after {delay_ms} ms): nodes disagree: {shas:?}"
        );
        let body = body_of(&shas[0]);
        for node in [&a, &b, &c] {
            assert_eq!(node.get("/").await, (200, body.to_owned()), "round {round}");
        }
        outcomes.push((delay_ms, shas[0] != current));
    }
    eprintln!("(kill delay ms, the deploy survived): {outcomes:?}");
}
