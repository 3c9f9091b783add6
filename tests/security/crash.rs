//! Crash safety (issue 6, item 7), beside `hot_swap`'s kill -9 during
//! uploads: kill -9 at many moments of activations, rollbacks and route
//! replacements, then restart on the same store. Every restart serves a valid
//! version, a change whose call returned is the one in force, and the store
//! has no leftovers and no version without its bytes.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use waterspout_tests::guests;
use waterspout_tests::harness::{ServerProcess, admin_call, check_store, read_wasm, version_app};

/// The body `server` answers `/` with (it must answer 200).
async fn body_of(server: &ServerProcess) -> String {
    let (status, body) = server.get_text("/").await;
    assert_eq!(status, 200, "{}", server.log());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_activations_rollbacks_and_route_changes() {
    let app = version_app(guests::VERSION_A_WASM);
    let store = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::with_admin(app.path(), store.path(), &[]);
    // Version 2 is b.
    let (status, body) = admin_call(
        server
            .admin(Method::POST, "/handlers/version/versions")
            .body(read_wasm(guests::VERSION_B_WASM)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body_of(&server).await, "b");

    let mut returned_before_kill = 0;
    for (round, delay_ms) in [0u64, 1, 2, 3, 5, 8, 13, 21, 40, 80].into_iter().enumerate() {
        let before = body_of(&server).await;
        // Alternate between activating the other version and rolling back.
        let (path, wanted) = match (round % 2, before.as_str()) {
            (0, "a") => ("/handlers/version/versions/2/activate", "b"),
            (0, _) => ("/handlers/version/versions/1/activate", "a"),
            (_, "a") => ("/handlers/version/rollback", "b"),
            (_, _) => ("/handlers/version/rollback", "a"),
        };
        let call = server.admin(Method::POST, path).send();
        let call = tokio::spawn(async move { call.await.map(|r| r.status().as_u16()) });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill_9();
        let returned = matches!(call.await.unwrap(), Ok(200));

        server = ServerProcess::with_admin(app.path(), store.path(), &[]);
        let now = body_of(&server).await;
        let what = format!("round {round} ({path}, kill after {delay_ms} ms)");
        assert!(now == "a" || now == "b", "{what}: {now:?}");
        if returned {
            returned_before_kill += 1;
            assert_eq!(
                now, wanted,
                "{what}: the call returned 200, so it must be in force"
            );
        }
        check_store(&server, store.path(), &what).await;
    }
    eprintln!("{returned_before_kill} of 10 activations returned before the kill");

    // Route table replacements: the table after a restart is the old or the
    // new one, never a mix or nothing.
    let tables = [
        json!({"routes": [{"pattern": "/", "handler": "version"}]}),
        json!({"routes": [{"pattern": "/", "handler": "version"}, {"pattern": "/v", "handler": "version"}]}),
    ];
    for (round, delay_ms) in [0u64, 1, 3, 8, 20].into_iter().enumerate() {
        let table = tables[round % 2].clone();
        let call = server.admin(Method::PUT, "/routes").json(&table).send();
        let call = tokio::spawn(async move { call.await.map(|r| r.status().as_u16()) });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill_9();
        let returned = matches!(call.await.unwrap(), Ok(200));
        server = ServerProcess::with_admin(app.path(), store.path(), &[]);
        let (_, routes) = admin_call(server.admin(Method::GET, "/routes")).await;
        let patterns: Vec<&str> = routes["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["pattern"].as_str().unwrap())
            .collect();
        let what = format!("routes round {round} (kill after {delay_ms} ms)");
        assert!(patterns == ["/"] || patterns == ["/", "/v"], "{what}: {routes}");
        if returned {
            let wanted = table["routes"].as_array().unwrap().len();
            assert_eq!(patterns.len(), wanted, "{what}: the call returned 200: {routes}");
        }
        assert_eq!(body_of(&server).await.len(), 1, "{what}");
        check_store(&server, store.path(), &what).await;
    }
}
