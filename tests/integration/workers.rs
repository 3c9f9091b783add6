//! Background workers (`[worker.NAME]`): N long-lived instances of a worker
//! component take jobs from a queue. The real binary runs them (its log is
//! what shows a restart): a trapping, failing or spinning worker is logged
//! and restarted and processes later items; the time limit applies per
//! item; an upload swaps the workers to the new version between items;
//! SIGTERM stops them cleanly.
//!
//! The test guests: `queue-handler` (HTTP → one queue call) and
//! `queue-worker` / `queue-worker-b` (two versions of one echo worker).

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use waterspout_tests::guests::{QUEUE_HANDLER_WASM, QUEUE_WORKER_B_WASM, QUEUE_WORKER_WASM};
use waterspout_tests::harness::{ServerProcess, app_with_manifest, read_wasm};

/// An app with the queue guest at `/…`, queues `jobs` and `results`, and
/// two `echo` workers (a copy of `queue-worker` in the app directory).
fn worker_app() -> tempfile::TempDir {
    let dir = app_with_manifest(&format!(
        r#"
[[route]]
pattern = "/.*"
handler = "queues"

[handler.queues]
wasm = "{QUEUE_HANDLER_WASM}"
queues = ["jobs", "results"]
timeout_ms = 10000

[handler.echo]
wasm = "echo.wasm"
queues = ["jobs", "results"]
timeout_ms = 1000
max_instances = 2

[worker.echo]
handler = "echo"
concurrency = 2

[queue.jobs]

[queue.results]
"#
    ));
    std::fs::copy(QUEUE_WORKER_WASM, dir.path().join("echo.wasm")).unwrap();
    dir
}

fn start(dir: &Path) -> (ServerProcess, tempfile::TempDir) {
    let store = tempfile::tempdir().unwrap();
    let server = ServerProcess::with_admin(dir, store.path(), &[]);
    (server, store)
}

async fn call(server: &ServerProcess, path: &str) -> String {
    let (status, text) = server.get_text(path).await;
    assert_eq!(status, 200, "{path}: {text}");
    text
}

async fn put_job(server: &ServerProcess, job: &str) {
    assert_eq!(call(server, &format!("/put?q=jobs&item={job}")).await, "ok");
}

/// The next result, waiting up to 8 s.
async fn result(server: &ServerProcess) -> String {
    let got = call(server, "/get?q=results&timeout=8000").await;
    got.strip_prefix("item:")
        .unwrap_or_else(|| panic!("no result: {got}\n{}", server.log()))
        .to_owned()
}

/// Waits (up to 10 s, without blocking the runtime) until the log has
/// `needle` `times` times.
async fn log_count(server: &ServerProcess, needle: &str, times: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if log.matches(needle).count() >= times {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "log never had {needle:?} {times}×:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn workers_take_jobs_from_a_queue() {
    let dir = worker_app();
    let (server, _store) = start(dir.path());
    log_count(&server, "worker queue-worker#", 2).await;
    for i in 0..6 {
        put_job(&server, &format!("echo:{i}")).await;
    }
    let mut results = Vec::new();
    for _ in 0..6 {
        results.push(result(&server).await);
    }
    results.sort();
    for (i, r) in results.iter().enumerate() {
        assert!(r.starts_with(&format!("{i}@queue-worker#")), "{results:?}");
    }
    // Every job was marked done.
    assert_eq!(call(&server, "/join?q=jobs&timeout=2000").await, "ok");
}

#[tokio::test]
async fn a_trapping_worker_is_logged_restarted_and_takes_later_jobs() {
    let dir = worker_app();
    let (server, _store) = start(dir.path());
    log_count(&server, "worker queue-worker#", 2).await;
    // Both workers trap, one after the other; then both fail with an error.
    for job in ["trap", "trap", "fail", "fail"] {
        put_job(&server, job).await;
    }
    let log = log_count(&server, "restarts in", 4).await;
    assert_eq!(log.matches("crashed (trapped)").count(), 2, "{log}");
    assert!(
        log.contains("job asked for a trap"),
        "the guest's panic message is logged:\n{log}"
    );
    assert!(log.contains("failed: job asked to fail"), "{log}");
    assert!(
        log.contains("worker \"echo\" #"),
        "the log names the worker:\n{log}"
    );
    // The restarted workers take the jobs that follow.
    for i in 0..4 {
        put_job(&server, &format!("echo:after{i}")).await;
    }
    let mut results = Vec::new();
    for _ in 0..4 {
        results.push(result(&server).await);
    }
    results.sort();
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(i, r)| r.starts_with(&format!("after{i}@"))),
        "{results:?}"
    );
}

#[tokio::test]
async fn the_time_limit_applies_per_item() {
    let dir = worker_app();
    let (server, _store) = start(dir.path());
    log_count(&server, "worker queue-worker#", 2).await;
    // Four 400 ms jobs on two workers: 800 ms each, within 1000 ms per item
    // but beyond it for a whole run: no worker is stopped.
    for _ in 0..4 {
        put_job(&server, "slow:400").await;
    }
    for _ in 0..4 {
        assert_eq!(result(&server).await, "slow@queue-worker");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    for _ in 0..2 {
        put_job(&server, "slow:300").await;
    }
    for _ in 0..2 {
        assert_eq!(result(&server).await, "slow@queue-worker");
    }
    assert!(!server.log().contains("time limit"), "{}", server.log());
    // One job that never ends is stopped at the limit; the worker restarts.
    put_job(&server, "spin").await;
    let log = log_count(&server, "restarts in", 1).await;
    assert!(
        log.contains("exceeded the handler's time limit of 1000 ms"),
        "{log}"
    );
    put_job(&server, "echo:alive").await;
    assert!(result(&server).await.starts_with("alive@queue-worker#"));
}

#[tokio::test]
async fn workers_swap_to_an_uploaded_version_between_items() {
    let dir = worker_app();
    let (server, _store) = start(dir.path());
    log_count(&server, "worker queue-worker#", 2).await;
    put_job(&server, "echo:before").await;
    assert!(result(&server).await.starts_with("before@queue-worker#"));
    // A job in hand when the upload lands is finished by the old version.
    put_job(&server, "slow:800").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = server
        .admin(Method::POST, "/handlers/echo/versions")
        .body(read_wasm(QUEUE_WORKER_B_WASM))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    assert_eq!(result(&server).await, "slow@queue-worker");
    // Both workers stop between items and come back as version B.
    log_count(&server, "worker queue-worker-b#", 2).await;
    let log = log_count(&server, "worker queue-worker#", 2).await;
    assert_eq!(log.matches("stopped (version 1)").count(), 2, "{log}");
    for i in 0..4 {
        put_job(&server, &format!("echo:{i}")).await;
    }
    for _ in 0..4 {
        let r = result(&server).await;
        assert!(r.contains("@queue-worker-b#"), "{r}");
    }
    assert!(!server.log().contains("restarts in"), "{}", server.log());
    // A component of another world is refused for a worker's handler.
    let response = server
        .admin(Method::POST, "/handlers/echo/versions")
        .body(read_wasm(QUEUE_HANDLER_WASM))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn sigterm_stops_the_workers_after_their_item() {
    let dir = worker_app();
    let (mut server, _store) = start(dir.path());
    log_count(&server, "worker queue-worker#", 2).await;
    put_job(&server, "slow:600").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    // Wait for the log reader to see the last lines.
    let log = log_count(&server, "background worker(s) stopped", 1).await;
    // Each worker left its loop (the SDK's `for job in q.items()` ended).
    assert_eq!(log.matches("worker queue-worker#").count(), 4, "{log}");
    assert!(log.contains("stopping"), "{log}");
    assert!(!log.contains("restarts in"), "{log}");
    assert!(!log.contains("still running"), "{log}");
}
