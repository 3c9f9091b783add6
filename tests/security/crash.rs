//! Crash safety (issue 6, item 7), beside `hot_swap`'s kill -9 during
//! uploads: kill -9 at many moments of activations, rollbacks and route
//! replacements, then restart on the same store. Every restart serves a valid
//! version, a change whose call returned is the one in force, and the store
//! has no leftovers and no version without its bytes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use waterspout_tests::guests;
use waterspout_tests::harness::{ADMIN_TOKEN, spawn_server};

/// The `waterspout` binary on an app and a store, with the admin API.
struct Server {
    child: Child,
    addr: String,
    admin: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(app: &Path, store: &Path) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_waterspout-test-server"));
        command
            .arg("serve")
            .arg(app)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--store",
            ])
            .arg(store)
            .env("WATERSPOUT_LOG", "info")
            .env("WATERSPOUT_ADMIN_TOKEN", ADMIN_TOKEN);
        let spawned = spawn_server(command, true);
        Server {
            child: spawned.child,
            addr: spawned.addr,
            admin: spawned.admin.unwrap(),
            log: spawned.log,
        }
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn body_of(client: &reqwest::Client, server: &Server) -> String {
    let r = client
        .get(format!("http://{}/", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", server.log.lock().unwrap());
    r.text().await.unwrap()
}

async fn admin_json(client: &reqwest::Client, server: &Server, path: &str) -> Value {
    client
        .get(format!("http://{}{path}", server.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The store is whole: the active version is listed, every listed version's
/// bytes are there and match, no temporary file is left.
async fn check_store(client: &reqwest::Client, server: &Server, store: &Path, what: &str) {
    let versions = admin_json(client, server, "/handlers/version/versions").await;
    let active = versions["active_version"].as_u64().expect("an active version");
    let listed = versions["versions"].as_array().unwrap();
    assert!(
        listed.iter().any(|v| v["version"] == active),
        "{what}: {versions}"
    );
    for v in listed {
        let file = store.join(format!("handlers/version/{}.wasm", v["version"]));
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{what}: {}: {e}", file.display()));
        assert_eq!(
            v["sha256"].as_str().unwrap(),
            waterspout_tests::harness::sha256_hex(&bytes),
            "{what}"
        );
    }
    let leftovers: Vec<_> = files(store)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{what}: leftovers {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_activations_rollbacks_and_route_changes() {
    let app = tempfile::tempdir().unwrap();
    std::fs::copy(guests::VERSION_A_WASM, app.path().join("version.wasm")).unwrap();
    std::fs::write(
        app.path().join("waterspout.toml"),
        "[[route]]\npattern = \"/\"\nhandler = \"version\"\n\n[handler.version]\nwasm = \"version.wasm\"\n",
    )
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let client = client();
    let mut server = Server::start(app.path(), store.path());
    // Version 2 is b.
    let r = client
        .post(format!("http://{}/handlers/version/versions", server.admin))
        .bearer_auth(ADMIN_TOKEN)
        .body(std::fs::read(guests::VERSION_B_WASM).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(body_of(&client, &server).await, "b");

    let mut returned_before_kill = 0;
    for (round, delay_ms) in [0u64, 1, 2, 3, 5, 8, 13, 21, 40, 80].into_iter().enumerate() {
        let before = body_of(&client, &server).await;
        // Alternate between activating the other version and rolling back.
        let (path, wanted) = match (round % 2, before.as_str()) {
            (0, "a") => ("/handlers/version/versions/2/activate", "b"),
            (0, _) => ("/handlers/version/versions/1/activate", "a"),
            (_, "a") => ("/handlers/version/rollback", "b"),
            (_, _) => ("/handlers/version/rollback", "a"),
        };
        let call = client
            .post(format!("http://{}{path}", server.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send();
        let call = tokio::spawn(async move { call.await.map(|r| r.status().as_u16()) });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill_9();
        let returned = matches!(call.await.unwrap(), Ok(200));

        server = Server::start(app.path(), store.path());
        let now = body_of(&client, &server).await;
        let what = format!("round {round} ({path}, kill after {delay_ms} ms)");
        assert!(now == "a" || now == "b", "{what}: {now:?}");
        if returned {
            returned_before_kill += 1;
            assert_eq!(
                now, wanted,
                "{what}: the call returned 200, so it must be in force"
            );
        }
        check_store(&client, &server, store.path(), &what).await;
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
        let call = client
            .put(format!("http://{}/routes", server.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&table)
            .send();
        let call = tokio::spawn(async move { call.await.map(|r| r.status().as_u16()) });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill_9();
        let returned = matches!(call.await.unwrap(), Ok(200));
        server = Server::start(app.path(), store.path());
        let routes = admin_json(&client, &server, "/routes").await;
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
        assert_eq!(body_of(&client, &server).await.len(), 1, "{what}");
        check_store(&client, &server, store.path(), &what).await;
    }
}
