//! Hot swap under load, crash safety of the store (kill -9 during uploads),
//! and `serve --watch`.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use waterspout_tests::guests;
use waterspout_tests::harness::{ADMIN_TOKEN, TestServer, admin_config, spawn_server};

fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

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
    let versions = [wasm(guests::VERSION_A_WASM), wasm(guests::VERSION_B_WASM)];

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
    let (status, versions) = {
        let r = server
            .admin(Method::GET, "/handlers/version/versions")
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(versions["active_version"], SWAPS + 1);
    Arc::into_inner(server)
        .expect("clients are done")
        .shutdown()
        .await;
}

/// A `waterspout serve` process (the real binary) and its log.
struct ServerProcess {
    child: Child,
    addr: String,
    admin: Option<String>,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    fn start(app: &Path, store: &Path, extra: &[&str]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_waterspout-test-server"));
        command
            .arg("serve")
            .arg(app)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--store")
            .arg(store)
            .args(extra)
            .env("WATERSPOUT_LOG", "info")
            .env("WATERSPOUT_ADMIN_TOKEN", ADMIN_TOKEN);
        let spawned = spawn_server(command, true);
        ServerProcess {
            child: spawned.child,
            addr: spawned.addr,
            admin: spawned.admin,
            log: spawned.log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin.as_deref().unwrap())
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no chance to clean up.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An app directory whose handler `version` is `version.wasm` beside the manifest.
fn app_dir(wasm_file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wasm_file, dir.path().join("version.wasm")).unwrap();
    std::fs::write(
        dir.path().join("waterspout.toml"),
        "[[route]]\npattern = \"/\"\nhandler = \"version\"\n\n[handler.version]\nwasm = \"version.wasm\"\n",
    )
    .unwrap();
    dir
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn get_text(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            found.push(entry.display().to_string());
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// kill -9 at many moments of an upload (while the body streams in, while it
/// compiles, while the store is written, right after): every restart serves
/// a valid version, and an upload whose call returned is the one served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_uploads_restarts_serving_a_valid_version() {
    let app = app_dir(guests::VERSION_A_WASM);
    let store = tempfile::tempdir().unwrap();
    let client = client();
    let bytes = [wasm(guests::VERSION_A_WASM), wasm(guests::VERSION_B_WASM)];
    let mut server = ServerProcess::start(app.path(), store.path(), &[]);
    assert_eq!(get_text(&client, &server.url("/")).await, (200, "a".into()));

    // A body that stops halfway: killed while streaming, nothing may change.
    let first_half = bytes[1][..20_000].to_vec();
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(first_half)]).chain(
        futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Vec::new())
        }),
    );
    use futures_util::StreamExt as _;
    let upload = client
        .post(server.admin_url("/handlers/version/versions"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-length", bytes[1].len())
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let upload = tokio::spawn(upload);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_9();
    assert!(upload.await.unwrap().is_err(), "the upload cannot have succeeded");
    server = ServerProcess::start(app.path(), store.path(), &[]);
    assert_eq!(get_text(&client, &server.url("/")).await, (200, "a".into()));

    let mut expected_known = 0;
    for (round, delay_ms) in [0u64, 1, 2, 4, 8, 15, 30, 60, 120].into_iter().enumerate() {
        let (status, before) = get_text(&client, &server.url("/")).await;
        assert_eq!(status, 200);
        let payload = if before == "a" { 1 } else { 0 };
        let wanted = ["a", "b"][payload];
        let upload = client
            .post(server.admin_url("/handlers/version/versions"))
            .bearer_auth(ADMIN_TOKEN)
            .body(bytes[payload].clone())
            .send();
        let upload = tokio::spawn(async move { upload.await.map(|r| r.status().as_u16()) });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill_9();
        let returned = matches!(upload.await.unwrap(), Ok(201));

        // Whatever the moment, the store is consistent on restart.
        server = ServerProcess::start(app.path(), store.path(), &[]);
        let (status, now) = get_text(&client, &server.url("/")).await;
        assert_eq!(
            status,
            200,
            "round {round} (kill after {delay_ms} ms):\n{}",
            server.log()
        );
        assert!(now == "a" || now == "b", "round {round}: {now:?}");
        if returned {
            expected_known += 1;
            assert_eq!(
                now, wanted,
                "round {round}: the upload returned 201, so its version must be served"
            );
        }
        assert!(
            temporaries(store.path()).is_empty(),
            "leftovers: {:?}",
            temporaries(store.path())
        );
        let versions: Value = client
            .get(server.admin_url("/handlers/version/versions"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let active = versions["active_version"].as_u64().unwrap();
        let listed = versions["versions"].as_array().unwrap();
        assert!(listed.iter().any(|v| v["version"] == active), "{versions}");
        // Every listed version has its bytes, intact.
        for v in listed {
            let file = store
                .path()
                .join(format!("handlers/version/{}.wasm", v["version"]));
            let sha = waterspout::registry::sha256_hex(&std::fs::read(&file).unwrap());
            assert_eq!(v["sha256"].as_str().unwrap(), sha);
        }
    }
    eprintln!("{expected_known} of 9 uploads returned before the kill");
}

/// `serve --watch`: a rebuilt wasm file is swapped in; a bad one is refused
/// and the old version keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_swaps_in_a_rebuilt_file_and_ignores_a_bad_one() {
    let app = app_dir(guests::VERSION_A_WASM);
    let store = tempfile::tempdir().unwrap();
    let client = client();
    let server = ServerProcess::start(app.path(), store.path(), &["--watch"]);
    assert_eq!(get_text(&client, &server.url("/")).await, (200, "a".into()));
    let file = app.path().join("version.wasm");

    // A broken build output: refused, a keeps serving.
    std::fs::write(&file, b"\0asm\x01\0\0\0").unwrap();
    wait_for(|| server.log().contains("changed but was refused"), &server).await;
    assert_eq!(get_text(&client, &server.url("/")).await, (200, "a".into()));

    // Rewritten in place (as `cp` does).
    std::fs::copy(guests::VERSION_B_WASM, &file).unwrap();
    wait_for_body(&client, &server, "b").await;

    // Replaced by a rename (as many build tools do).
    let tmp = app.path().join("version.wasm.tmp");
    std::fs::copy(guests::VERSION_A_WASM, &tmp).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    wait_for_body(&client, &server, "a").await;

    let versions: Value = client
        .get(server.admin_url("/handlers/version/versions"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = versions["versions"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{versions}");
    assert_eq!(listed[1]["source"], "watch");
    assert_eq!(versions["active_version"], 3);
}

async fn wait_for(mut condition: impl FnMut() -> bool, server: &ServerProcess) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out; log:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_body(client: &reqwest::Client, server: &ServerProcess, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, now) = get_text(client, &server.url("/")).await;
        assert_eq!(status, 200);
        if now == body {
            return;
        }
        assert!(Instant::now() < deadline, "still {now:?}; log:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
