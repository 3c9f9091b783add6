//! Hot swap under load, crash safety of the store (kill -9 during uploads),
//! and `serve --watch`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use waterspout_tests::guests;
use waterspout_tests::harness::{
    ServerProcess, TestServer, admin_call, admin_config, check_store, read_wasm, version_app,
};

/// The body each version answers with.
fn body_of_generation(generation: u64) -> &'static str {
    if generation.is_multiple_of(2) { "a" } else { "b" }
}

/// 8 clients request `/` for several seconds while the handler is swapped 50
/// times between version a and version b by upload. No request may fail or
/// get a 5xx; a request that starts after a swap call returned (and before
/// the next one began) must get the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_swaps_under_load_fail_nothing_and_never_serve_the_old_version() {
    const CLIENTS: usize = 8;
    const SWAPS: u64 = 50;
    let cache = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let mut config = admin_config();
    config.engine.cache_dir = Some(cache.path().to_owned());
    config.store_dir = Some(store.path().to_owned());
    let server = Arc::new(TestServer::start_with(guests::VERSION_A_APP, config).await);
    let versions = [
        read_wasm(guests::VERSION_A_WASM),
        read_wasm(guests::VERSION_B_WASM),
    ];

    // 2 × completed swaps, +1 while a swap call is in flight.
    let phase = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (server, phase, stop, failures) = (server.clone(), phase.clone(), stop.clone(), failures.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let (mut total, mut strict) = (0u64, 0u64);
            while !stop.load(Ordering::SeqCst) {
                let before = phase.load(Ordering::SeqCst);
                let result = client.get(server.url("/")).send().await;
                let outcome = match result {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        r.text().await.map(|body| (status, body))
                    }
                    Err(e) => Err(e),
                };
                let after = phase.load(Ordering::SeqCst);
                total += 1;
                match outcome {
                    Ok((200, body)) if body == "a" || body == "b" => {
                        if before == after && before.is_multiple_of(2) {
                            strict += 1;
                            let expected = body_of_generation(before / 2);
                            if body != expected {
                                failures.lock().unwrap().push(format!(
                                    "stale: after swap {} returned, got {body:?} (expected {expected:?})",
                                    before / 2
                                ));
                            }
                        }
                    }
                    Ok((status, body)) => failures.lock().unwrap().push(format!("{status}: {body}")),
                    Err(e) => failures.lock().unwrap().push(format!("request failed: {e}")),
                }
            }
            (total, strict)
        }));
    }

    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut swap_times = Vec::new();
    for swap in 1..=SWAPS {
        phase.store(2 * swap - 1, Ordering::SeqCst);
        let bytes = versions[(swap % 2) as usize].clone();
        let t = Instant::now();
        let response = server
            .admin(Method::POST, "/handlers/version/versions")
            .body(bytes)
            .send()
            .await
            .unwrap();
        swap_times.push(t.elapsed());
        assert_eq!(
            response.status(),
            201,
            "swap {swap}: {}",
            response.text().await.unwrap()
        );
        phase.store(2 * swap, Ordering::SeqCst);
        // The very next request gets the new version.
        let (status, body) = server.get_text("/").await;
        assert_eq!(
            (status, body.as_str()),
            (200, body_of_generation(swap)),
            "right after swap {swap}"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut total, mut strict) = (0, 0);
    for client in clients {
        let (t, s) = tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("clients stop")
            .unwrap();
        total += t;
        strict += s;
    }
    let elapsed = started.elapsed();
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    assert!(
        failures.is_empty(),
        "{} failures of {total}, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(elapsed >= Duration::from_secs(3), "the load ran {elapsed:?}");
    assert!(
        total > 1000 && strict > 500,
        "too few requests checked: {total} ({strict} strictly)"
    );
    swap_times.sort();
    eprintln!(
        "{total} requests ({strict} checked strictly) over {elapsed:?}; swap call p50 {:?}, max {:?}",
        swap_times[swap_times.len() / 2],
        swap_times.last().unwrap()
    );
    let (status, versions) = admin_call(server.admin(Method::GET, "/handlers/version/versions")).await;
    assert_eq!(status, 200);
    assert_eq!(versions["active_version"], SWAPS + 1);
    Arc::into_inner(server)
        .expect("clients are done")
        .shutdown()
        .await;
}

/// kill -9 at many moments of an upload (while the body streams in, while it
/// compiles, while the store is written, right after): every restart serves
/// a valid version, and an upload whose call returned is the one served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_uploads_restarts_serving_a_valid_version() {
    let app = version_app(guests::VERSION_A_WASM);
    let store = tempfile::tempdir().unwrap();
    let bytes = [
        read_wasm(guests::VERSION_A_WASM),
        read_wasm(guests::VERSION_B_WASM),
    ];
    let mut server = ServerProcess::with_admin(app.path(), store.path(), &[]);
    assert_eq!(server.get_text("/").await, (200, "a".into()));

    // A body that stops halfway: killed while streaming, nothing may change.
    let first_half = bytes[1][..20_000].to_vec();
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(first_half)]).chain(
        futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Vec::new())
        }),
    );
    use futures_util::StreamExt as _;
    let upload = server
        .admin(Method::POST, "/handlers/version/versions")
        .header("content-length", bytes[1].len())
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let upload = tokio::spawn(upload);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_9();
    assert!(upload.await.unwrap().is_err(), "the upload cannot have succeeded");
    server = ServerProcess::with_admin(app.path(), store.path(), &[]);
    assert_eq!(server.get_text("/").await, (200, "a".into()));

    let mut expected_known = 0;
    for (round, delay_ms) in [0u64, 1, 2, 4, 8, 15, 30, 60, 120].into_iter().enumerate() {
        let (status, before) = server.get_text("/").await;
        assert_eq!(status, 200);
        let payload = if before == "a" { 1 } else { 0 };
        let wanted = ["a", "b"][payload];
        let upload = server
            .admin(Method::POST, "/handlers/version/versions")
            .body(bytes[payload].clone())
            .send();
        let upload = tokio::spawn(async move { upload.await.map(|r| r.status().as_u16()) });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill_9();
        let returned = matches!(upload.await.unwrap(), Ok(201));

        // Whatever the moment, the store is consistent on restart.
        server = ServerProcess::with_admin(app.path(), store.path(), &[]);
        let what = format!("round {round} (kill after {delay_ms} ms)");
        let (status, now) = server.get_text("/").await;
        assert_eq!(status, 200, "{what}:\n{}", server.log());
        assert!(now == "a" || now == "b", "{what}: {now:?}");
        if returned {
            expected_known += 1;
            assert_eq!(
                now, wanted,
                "{what}: the upload returned 201, so its version must be served"
            );
        }
        check_store(&server, store.path(), &what).await;
    }
    eprintln!("{expected_known} of 9 uploads returned before the kill");
}

/// `serve --watch`: a rebuilt wasm file is swapped in; a bad one is refused
/// and the old version keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_swaps_in_a_rebuilt_file_and_ignores_a_bad_one() {
    let app = version_app(guests::VERSION_A_WASM);
    let store = tempfile::tempdir().unwrap();
    let server = ServerProcess::with_admin(app.path(), store.path(), &["--watch"]);
    assert_eq!(server.get_text("/").await, (200, "a".into()));
    let file = app.path().join("version.wasm");

    // A broken build output: refused, a keeps serving.
    std::fs::write(&file, b"\0asm\x01\0\0\0").unwrap();
    server.wait_for_log("changed but was refused");
    assert_eq!(server.get_text("/").await, (200, "a".into()));

    // Rewritten in place (as `cp` does).
    std::fs::copy(guests::VERSION_B_WASM, &file).unwrap();
    wait_for_body(&server, "b").await;

    // Replaced by a rename (as many build tools do).
    let tmp = app.path().join("version.wasm.tmp");
    std::fs::copy(guests::VERSION_A_WASM, &tmp).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    wait_for_body(&server, "a").await;

    let (_, versions) = admin_call(server.admin(Method::GET, "/handlers/version/versions")).await;
    let listed = versions["versions"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{versions}");
    assert_eq!(listed[1]["source"], "watch");
    assert_eq!(versions["active_version"], 3);
}

async fn wait_for_body(server: &ServerProcess, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, now) = server.get_text("/").await;
        assert_eq!(status, 200);
        if now == body {
            return;
        }
        assert!(Instant::now() < deadline, "still {now:?}; log:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
