//! The host services from a Rust guest (tests/guests/services), over real
//! sockets: kv (namespaces, CAS, increment, TTL, persistence across a
//! restart and a kill -9) and timers.

use std::time::{Duration, Instant};

use waterspout::ServerConfig;
use waterspout_tests::guests::{SERVICES_APP, SERVICES_WASM};
use waterspout_tests::harness::{ServerProcess, TestServer, app_with_manifest, serve_command};

/// A manifest serving the services guest at `/a` (kv namespace "a") with
/// `[app] kv_persist = true`.
fn persistent_app() -> tempfile::TempDir {
    app_with_manifest(&format!(
        "[app]\nkv_persist = true\n\n[[route]]\npattern = \"/a(/.*)\"\nhandler = \"a\"\n\n\
         [handler.a]\nwasm = {SERVICES_WASM:?}\nkv = [\"a\"]\n"
    ))
}

#[tokio::test]
async fn kv_set_get_delete_increment_list() {
    let server = TestServer::start(SERVICES_APP).await;
    assert_eq!(server.get_text("/a/kv/get?key=k").await, (200, "NONE".into()));
    assert_eq!(
        server.get_text("/a/kv/set?key=k&value=v1").await,
        (200, "OK".into())
    );
    assert_eq!(server.get_text("/a/kv/get?key=k").await, (200, "v1".into()));
    assert_eq!(
        server.get_text("/a/kv/incr?key=n&delta=5").await,
        (200, "5".into())
    );
    assert_eq!(
        server.get_text("/a/kv/incr?key=n&delta=-2").await,
        (200, "3".into())
    );
    let (_, text) = server.get_text("/a/kv/incr?key=k").await;
    assert!(text.starts_with("ERR not-a-number"), "{text}");
    for key in ["user:1", "user:2", "other"] {
        server.get_text(&format!("/a/kv/set?key={key}&value=x")).await;
    }
    assert_eq!(
        server.get_text("/a/kv/list?prefix=user:").await,
        (200, "user:1,user:2".into())
    );
    assert_eq!(
        server.get_text("/a/kv/list?prefix=user:&limit=1").await,
        (200, "user:1".into())
    );
    assert_eq!(server.get_text("/a/kv/delete?key=k").await, (200, "true".into()));
    assert_eq!(server.get_text("/a/kv/delete?key=k").await, (200, "false".into()));
    assert_eq!(server.get_text("/a/kv/get?key=k").await, (200, "NONE".into()));
    let (_, text) = server.get_text("/a/kv/get?key=").await;
    assert!(text.starts_with("ERR invalid"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn kv_namespaces_are_granted_per_handler() {
    let server = TestServer::start(SERVICES_APP).await;
    server.get_text("/a/kv/set?key=secret&value=from-a").await;
    // b's default namespace is "b": a's key is not there.
    assert_eq!(
        server.get_text("/b/kv/get?key=secret").await,
        (200, "NONE".into())
    );
    // Naming a's namespace is refused with the error value, not a fault.
    let (status, text) = server.get_text("/b/kv/get?key=secret&ns=a").await;
    assert_eq!(status, 200);
    assert!(text.starts_with("ERR denied") && text.contains("\"a\""), "{text}");
    let (_, text) = server.get_text("/b/kv/set?key=secret&value=x&ns=a").await;
    assert!(text.starts_with("ERR denied"), "{text}");
    // A handler granted nothing gets denied for its default namespace too.
    let (status, text) = server.get_text("/none/kv/get?key=secret").await;
    assert_eq!(status, 200);
    assert!(
        text.starts_with("ERR denied") && text.contains("kv = ["),
        "{text}"
    );
    // A namespace granted to both is shared.
    server.get_text("/a/kv/set?key=hello&value=both&ns=shared").await;
    assert_eq!(
        server.get_text("/b/kv/get?key=hello&ns=shared").await,
        (200, "both".into())
    );
    // a's own data is untouched.
    assert_eq!(
        server.get_text("/a/kv/get?key=secret").await,
        (200, "from-a".into())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn compare_and_swap_from_concurrent_requests_has_exactly_one_winner() {
    let server = TestServer::start(SERVICES_APP).await;
    let attempts = (0..40).map(|i| {
        let client = server.client.clone();
        let url = server.url(&format!("/a/kv/cas?key=leader&value=r{i}"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    });
    let answers: Vec<String> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<usize> = (0..answers.len()).filter(|&i| answers[i] == "won").collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert!(answers.iter().all(|a| a == "won" || a == "lost"), "{answers:?}");
    let (_, leader) = server.get_text("/a/kv/get?key=leader").await;
    assert_eq!(leader, format!("r{}", winners[0]));
    // Swapping from the winner's value works once, from a stale one never.
    let stale = if winners[0] == 0 { "r1" } else { "r0" };
    assert_eq!(
        server
            .get_text(&format!("/a/kv/cas?key=leader&expected={stale}&value=x"))
            .await
            .1,
        "lost"
    );
    assert_eq!(
        server
            .get_text(&format!("/a/kv/cas?key=leader&expected={leader}&value=next"))
            .await
            .1,
        "won"
    );
    // Concurrent increments lose nothing.
    let incs = (0..50).map(|_| {
        let client = server.client.clone();
        let url = server.url("/a/kv/incr?key=hits");
        tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
    });
    for status in futures_util::future::join_all(incs).await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(server.get_text("/a/kv/get?key=hits").await.1, "50");
    server.shutdown().await;
}

#[tokio::test]
async fn a_key_with_a_ttl_expires() {
    let server = TestServer::start(SERVICES_APP).await;
    server.get_text("/a/kv/set?key=short&value=v&ttl_ms=400").await;
    server.get_text("/a/kv/set?key=long&value=v").await;
    assert_eq!(server.get_text("/a/kv/get?key=short").await.1, "v");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(server.get_text("/a/kv/get?key=short").await.1, "NONE");
    assert_eq!(server.get_text("/a/kv/get?key=long").await.1, "v");
    assert_eq!(server.get_text("/a/kv/list?prefix=").await.1, "long");
    // An expired key can be claimed again by CAS-if-absent.
    assert_eq!(server.get_text("/a/kv/cas?key=short&value=w").await.1, "won");
    server.shutdown().await;
}

#[tokio::test]
async fn kv_data_survives_a_restart_when_persisted() {
    let app = persistent_app();
    let store = tempfile::tempdir().unwrap();
    let config = || ServerConfig {
        store_dir: Some(store.path().to_owned()),
        ..ServerConfig::default()
    };
    let dir = app.path().to_str().unwrap();
    let server = TestServer::start_with(dir, config()).await;
    server.get_text("/a/kv/set?key=kept&value=yes").await;
    server.get_text("/a/kv/set?key=dropped&value=x").await;
    server.get_text("/a/kv/delete?key=dropped").await;
    server.get_text("/a/kv/incr?key=n&delta=7").await;
    server.shutdown().await;
    let server = TestServer::start_with(dir, config()).await;
    assert_eq!(server.get_text("/a/kv/get?key=kept").await.1, "yes");
    assert_eq!(server.get_text("/a/kv/get?key=dropped").await.1, "NONE");
    assert_eq!(server.get_text("/a/kv/incr?key=n").await.1, "8");
    server.shutdown().await;
    // Without kv_persist nothing is kept.
    let server = TestServer::start(SERVICES_APP).await;
    assert_eq!(server.get_text("/a/kv/get?key=kept").await.1, "NONE");
    server.shutdown().await;
}

#[tokio::test]
async fn kv_persist_without_a_store_is_refused_with_a_reason() {
    let app = persistent_app();
    let dir = app.path().to_owned();
    let error = tokio::task::spawn_blocking(move || waterspout::App::load(&dir, ServerConfig::default()))
        .await
        .unwrap()
        .err()
        .expect("kv_persist without a store must not load");
    let text = error.to_string();
    assert!(
        text.contains("kv_persist") && text.contains("waterspout.toml"),
        "{text}"
    );
}

#[tokio::test]
async fn every_acknowledged_kv_write_survives_kill_9() {
    let app = persistent_app();
    let store = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(serve_command(app.path(), store.path()), false);
    // Writers keep setting keys; the process is killed in the middle.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = server.client.clone();
            let base = server.url("/a/kv/set");
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("w{w}-{i}");
                    let url = format!("{base}?key={key}&value=v{i}");
                    let Ok(response) = client.get(url).send().await else {
                        break;
                    };
                    if response.status() != 200 || !response.text().await.is_ok_and(|t| t == "OK") {
                        break;
                    }
                    acknowledged.lock().unwrap().push(key);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill_9();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "only {} writes before the kill",
        acknowledged.len()
    );
    let server = ServerProcess::spawn(serve_command(app.path(), store.path()), false);
    let (_, listed) = server.get_text("/a/kv/list?prefix=w").await;
    let listed: std::collections::HashSet<&str> = listed.split(',').collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|k| !listed.contains(k.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "lost {} acknowledged writes: {lost:?}",
        lost.len()
    );
    // Writing goes on after the recovery.
    assert_eq!(server.get_text("/a/kv/set?key=after&value=1").await.1, "OK");
    assert_eq!(server.get_text("/a/kv/get?key=after").await.1, "1");
}

#[tokio::test]
async fn sleep_suspends_only_the_calling_guest() {
    let mut config = ServerConfig::default();
    config.workers = 1;
    let server = TestServer::start_with(SERVICES_APP, config).await;
    // Twenty guests sleep on the one worker thread…
    let sleepers: Vec<_> = (0..20)
        .map(|_| {
            let client = server.client.clone();
            let url = server.url("/a/sleep?ms=3000");
            tokio::spawn(async move {
                let r = client.get(url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap(), Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // …and another request is served meanwhile, before any of them wakes.
    assert_eq!(
        server.get_text("/a/kv/set?key=k&value=v").await,
        (200, "OK".into())
    );
    let served_at = Instant::now();
    for sleeper in sleepers {
        let (status, text, done) = sleeper.await.unwrap();
        assert_eq!((status, text.as_str()), (200, "slept 3000"));
        assert!(done > served_at, "a sleeper finished before the other request");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_sleep_past_the_handler_timeout_is_cut_off() {
    let server = TestServer::start(SERVICES_APP).await;
    // Handler "b" has timeout_ms = 2000: waiting counts against it (→ 503).
    let start = Instant::now();
    let (status, _) = server.get_text("/b/sleep?ms=20000").await;
    assert_eq!(status, 503);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the wait was not bounded"
    );
    // The next request is served normally.
    assert_eq!(server.get_text("/b/sleep?ms=10").await, (200, "slept 10".into()));
    server.shutdown().await;
}
