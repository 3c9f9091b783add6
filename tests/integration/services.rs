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
    let config = ServerConfig {
        workers: 1,
        ..ServerConfig::default()
    };
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

/// A small HTTP/1.1 origin server for the http-client tests, on
/// 127.0.0.1:0: `/hello` → "hello"; `/redirect?to=URL` → 302 to URL;
/// `/see-other?to=URL` → 303; `/auth` → the request's Authorization header
/// (or "none") and its method; `/slow` → answers after 10 s; `/big` → 2 MB
/// with Content-Length; `/big-stream` → 2 MB without it (until close);
/// `/status/N` → status N. It counts the connections it accepted.
pub(crate) struct Origin {
    addr: std::net::SocketAddr,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    pub(crate) async fn start() -> Origin {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(Origin::serve(socket));
            }
        });
        Origin {
            addr,
            connections,
            task,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn serve(mut socket: tokio::net::TcpStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = Vec::new();
        loop {
            // One request head (the tests send no bodies the origin reads).
            let end = loop {
                if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
                let mut chunk = [0u8; 4096];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while buffer.len() < end + length {
                let mut chunk = [0u8; 4096];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            buffer.drain(..end + length);
            let mut words = head.split_whitespace();
            let method = words.next().unwrap_or("").to_owned();
            let target = words.next().unwrap_or("/").to_owned();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let arg = |name: &str| {
                form_urlencoded_pairs(query)
                    .into_iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v)
                    .unwrap_or_default()
            };
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
            };
            let reply = |status: &str, extra: &str, body: &str| {
                format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            };
            let response = match path {
                "/hello" => reply("200 OK", "", "hello"),
                "/redirect" => reply("302 Found", &format!("Location: {}\r\n", arg("to")), ""),
                "/see-other" => reply("303 See Other", &format!("Location: {}\r\n", arg("to")), ""),
                "/auth" => reply(
                    "200 OK",
                    "",
                    &format!(
                        "{} {}",
                        method,
                        header("authorization").unwrap_or_else(|| "none".into())
                    ),
                ),
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    reply("200 OK", "", "slow")
                }
                "/big" => reply("200 OK", "", &"x".repeat(2 << 20)),
                "/big-stream" => {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                        .await;
                    for _ in 0..2048 {
                        if socket.write_all(&[b'y'; 1024]).await.is_err() {
                            return;
                        }
                    }
                    return;
                }
                p if p.starts_with("/status/") => reply(&format!("{} Whatever", &p[8..]), "", "status"),
                _ => reply("404 Not Found", "", "no such path"),
            };
            if socket.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((decode(k), decode(v)))
        })
        .collect()
}

/// Percent-decoding for the test origin's query (the tests' URLs only).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` as a query value.
pub(crate) fn q(url: &str) -> String {
    url.replace('%', "%25")
        .replace('&', "%26")
        .replace('?', "%3F")
        .replace('=', "%3D")
        .replace(':', "%3A")
        .replace('/', "%2F")
}

/// The guest's answer to `/fetcher/fetch?…` as JSON (panics on an error value).
async fn fetched(server: &TestServer, query: &str) -> serde_json::Value {
    let (status, text) = server.get_text(&format!("/fetcher/fetch?{query}")).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not a response: {text}"))
}

#[tokio::test]
async fn fetch_reaches_an_allowed_host_and_returns_any_status() {
    let origin = Origin::start().await;
    let server = TestServer::start(SERVICES_APP).await;
    let r = fetched(&server, &format!("url={}", q(&origin.url("/hello")))).await;
    assert_eq!(r["status"], 200);
    assert_eq!(r["body"], "hello");
    assert_eq!(r["effective_url"], origin.url("/hello"));
    // A 404 is a response, not an error.
    let r = fetched(&server, &format!("url={}", q(&origin.url("/status/404")))).await;
    assert_eq!(r["status"], 404);
    // Method and body go through (the origin answers the method).
    let r = fetched(
        &server,
        &format!("url={}&method=POST&body=x", q(&origin.url("/auth"))),
    )
    .await;
    assert_eq!(r["body"], "POST none");
    server.shutdown().await;
}

#[tokio::test]
async fn fetch_outside_the_allowlist_is_the_denied_error_value() {
    let origin = Origin::start().await;
    let server = TestServer::start(SERVICES_APP).await;
    // Handler "a" has no allowed_outbound_hosts: deny by default.
    let (status, text) = server
        .get_text(&format!("/a/fetch?url={}", q(&origin.url("/hello"))))
        .await;
    assert_eq!(status, 200);
    assert!(text.starts_with("ERR denied"), "{text}");
    // "fetcher" allows 127.0.0.1 only: localhost (same machine) is another host.
    let other = format!("http://localhost:{}/hello", origin.addr.port());
    let (_, text) = server
        .get_text(&format!("/fetcher/fetch?url={}", q(&other)))
        .await;
    assert!(
        text.starts_with("ERR denied") && text.contains("localhost"),
        "{text}"
    );
    // A redirect to a host not allowed is denied at that hop.
    let hop = origin.url(&format!("/redirect?to={}", q(&other)));
    let (_, text) = server.get_text(&format!("/fetcher/fetch?url={}", q(&hop))).await;
    assert!(text.starts_with("ERR denied"), "{text}");
    assert_eq!(origin.connections(), 1, "only the allowed hop was connected to");
    server.shutdown().await;
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit_and_drop_authorization_across_origins() {
    let a = Origin::start().await;
    let b = Origin::start().await;
    let server = TestServer::start(SERVICES_APP).await;
    // Same origin: the header is kept.
    let same = a.url(&format!("/redirect?to={}", q(&a.url("/auth"))));
    let r = fetched(
        &server,
        &format!("url={}&header=Authorization:Bearer%20s3cret", q(&same)),
    )
    .await;
    assert_eq!(r["body"], "GET Bearer s3cret");
    assert_eq!(r["effective_url"], a.url("/auth"));
    // Another port is another origin: Authorization is dropped.
    let cross = a.url(&format!("/redirect?to={}", q(&b.url("/auth"))));
    let r = fetched(
        &server,
        &format!("url={}&header=Authorization:Bearer%20s3cret", q(&cross)),
    )
    .await;
    assert_eq!(r["body"], "GET none");
    // 303 turns a POST into a GET.
    let see_other = a.url(&format!("/see-other?to={}", q(&a.url("/auth"))));
    let r = fetched(&server, &format!("url={}&method=POST&body=x", q(&see_other))).await;
    assert_eq!(r["body"], "GET none");
    // Not followed: the 302 itself.
    let r = fetched(&server, &format!("url={}&follow_redirects=0", q(&same))).await;
    assert_eq!(r["status"], 302);
    // A chain longer than max_redirects answers its last 3xx (as Tornado).
    let inner = a.url(&format!("/redirect?to={}", q(&a.url("/hello"))));
    let chain = a.url(&format!("/redirect?to={}", q(&inner)));
    let r = fetched(&server, &format!("url={}&max_redirects=1", q(&chain))).await;
    assert_eq!(r["status"], 302);
    let r = fetched(&server, &format!("url={}", q(&chain))).await;
    assert_eq!(r["body"], "hello");
    server.shutdown().await;
}

#[tokio::test]
async fn fetch_errors_are_typed_values() {
    let origin = Origin::start().await;
    let server = TestServer::start(SERVICES_APP).await;
    let error = async |query: String| {
        let (status, text) = server.get_text(&format!("/fetcher/fetch?{query}")).await;
        assert_eq!(status, 200, "{text}");
        text
    };
    let text = error(format!("url={}&request_timeout_ms=300", q(&origin.url("/slow")))).await;
    assert!(text.starts_with("ERR timeout"), "{text}");
    let text = error(format!("url={}&max_size=1000", q(&origin.url("/big")))).await;
    assert!(
        text.starts_with("ERR too-large") && text.contains("1000"),
        "{text}"
    );
    let text = error(format!("url={}&max_size=100000", q(&origin.url("/big-stream")))).await;
    assert!(text.starts_with("ERR too-large"), "{text}");
    let r = fetched(&server, &format!("url={}", q(&origin.url("/big")))).await;
    assert_eq!(r["body"].as_str().unwrap().len(), 2 << 20);
    let text = error("url=not%20a%20url".into()).await;
    assert!(text.starts_with("ERR bad-url"), "{text}");
    let text = error("url=ftp%3A%2F%2F127.0.0.1%2Fx".into()).await;
    assert!(text.starts_with("ERR bad-url"), "{text}");
    let text = error("url=http%3A%2F%2Fno-such-host.invalid%2F".into()).await;
    assert!(text.starts_with("ERR dns"), "{text}");
    // A port nobody listens on: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = error(format!("url=http%3A%2F%2F127.0.0.1%3A{port}%2F")).await;
    assert!(text.starts_with("ERR connect"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_fetch_past_the_handler_timeout_is_cut_off() {
    let origin = Origin::start().await;
    let server = TestServer::start(SERVICES_APP).await;
    // "fetcher" has timeout_ms = 5000 wall clock; the origin answers after 10 s
    // and the fetch would allow 20 s: the handler's limit ends it (503).
    let (status, _) = server
        .get_text(&format!(
            "/fetcher/fetch?url={}&request_timeout_ms=60000",
            q(&origin.url("/slow"))
        ))
        .await;
    assert_eq!(status, 503);
    server.shutdown().await;
}

#[tokio::test]
async fn fetch_all_runs_several_fetches_in_order_and_connections_are_pooled() {
    let origin = Origin::start().await;
    let config = ServerConfig {
        workers: 1,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(SERVICES_APP, config).await;
    let denied = "http://localhost:1/";
    let urls = [origin.url("/hello"), origin.url("/status/500"), denied.to_owned()];
    let query: Vec<String> = urls.iter().map(|u| format!("url={}", q(u))).collect();
    let (status, text) = server
        .get_text(&format!("/fetcher/fetch-all?{}", query.join("&")))
        .await;
    assert_eq!(status, 200, "{text}");
    let results: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(results[0]["body"], "hello");
    assert_eq!(results[1]["status"], 500);
    assert!(
        results[2]["error"].as_str().unwrap().starts_with("ERR denied"),
        "{text}"
    );
    // Sequential fetches from one worker reuse a pooled connection.
    let before = origin.connections();
    for _ in 0..5 {
        let r = fetched(&server, &format!("url={}", q(&origin.url("/hello")))).await;
        assert_eq!(r["body"], "hello");
    }
    assert!(
        origin.connections() - before <= 1,
        "{} connections for 5 fetches",
        origin.connections() - before
    );
    server.shutdown().await;
}

/// The services example of another language (`examples/LANG/services`):
/// kv through its SDK (namespace "LANG" only), the host's timer, and the
/// http client against a local origin (fetch, fetch-all, the denied error).
/// `sleep` is the query of a short sleep in that app's units.
pub(crate) async fn check_services_example(app: &str, sleep: &str) {
    let origin = Origin::start().await;
    let server = TestServer::start(app).await;
    assert_eq!(server.get_text("/kv?op=get&key=k").await, (200, "NONE".into()));
    assert_eq!(
        server.get_text("/kv?op=set&key=k&value=v%C3%A9").await,
        (200, "OK".into())
    );
    assert_eq!(server.get_text("/kv?op=get&key=k").await, (200, "vé".into()));
    assert_eq!(server.get_text("/kv?op=incr&key=n&delta=2").await.1, "2");
    assert_eq!(server.get_text("/kv?op=incr&key=n").await.1, "3");
    assert_eq!(server.get_text("/kv?op=cas&key=lock&value=me").await.1, "won");
    assert_eq!(server.get_text("/kv?op=cas&key=lock&value=you").await.1, "lost");
    assert_eq!(
        server
            .get_text("/kv?op=cas&key=lock&expected=me&value=you")
            .await
            .1,
        "won"
    );
    assert_eq!(server.get_text("/kv?op=list&prefix=").await.1, "k,lock,n");
    let (status, text) = server.get_text("/kv?op=get&key=k&ns=other").await;
    assert_eq!(status, 200);
    assert!(text.starts_with("ERR denied"), "{text}");
    let (status, text) = server.get_text(&format!("/sleep?{sleep}")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.starts_with("slept"), "{text}");
    let (status, text) = server
        .get_text(&format!("/fetch?url={}", q(&origin.url("/hello"))))
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("hello") && text.contains("200"), "{text}");
    let (status, text) = server.get_text("/fetch?url=http%3A%2F%2Fexample.com%2F").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        (text.contains("denied") && text.contains("599")) || text.starts_with("ERR 1:"),
        "{text}"
    );
    let both = format!("url={}&url={}", q(&origin.url("/hello")), q(&origin.url("/auth")));
    let (status, text) = server.get_text(&format!("/fetch-all?{both}")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("hello") && text.contains("GET none"), "{text}");
    server.shutdown().await;
}

/// An HTTPS origin on 127.0.0.1:0 (tokio-rustls + hyper) with a certificate
/// for 127.0.0.1 signed by a test CA it makes: answers every request with
/// "hello over tls". Returns its address, the CA's PEM and its task.
async fn https_origin() -> (std::net::SocketAddr, String, tokio::task::JoinHandle<()>) {
    use tokio_rustls::rustls;
    let made =
        waterspout_tests::harness::TestCertificate::new("Waterspout http-client test CA", &["127.0.0.1"]);
    let (cert, key) = (&made.cert, &made.key);

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the CA gives up in the handshake.
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(b"hello over tls"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, made.ca_pem.clone(), task)
}

/// The services guest's "fetcher" handler, with `[app] tables` before it.
fn fetcher_app(app: &str) -> tempfile::TempDir {
    app_with_manifest(&format!(
        "{app}\n[[route]]\npattern = \"/fetcher(/.*)\"\nhandler = \"fetcher\"\n\n\
         [handler.fetcher]\nwasm = {SERVICES_WASM:?}\nallowed_outbound_hosts = [\"127.0.0.1:*\"]\n"
    ))
}

#[tokio::test]
async fn an_https_fetch_trusts_the_apps_http_client_ca() {
    let (addr, ca, origin) = https_origin().await;
    let url = format!("https://127.0.0.1:{}/hello", addr.port());

    // Without the CA: the certificate is refused, an error value (not a trap).
    let plain = fetcher_app("");
    let server = TestServer::start(plain.path().to_str().unwrap()).await;
    let (status, text) = server.get_text(&format!("/fetcher/fetch?url={}", q(&url))).await;
    assert_eq!(status, 200);
    assert!(
        text.starts_with("ERR "),
        "an untrusted certificate must fail: {text}"
    );
    server.shutdown().await;

    // With `[app] http_client_ca`: the fetch goes through, over TLS.
    let app = fetcher_app("[app]\nhttp_client_ca = \"ca.pem\"\n");
    std::fs::write(app.path().join("ca.pem"), &ca).unwrap();
    let server = TestServer::start(app.path().to_str().unwrap()).await;
    let r = fetched(&server, &format!("url={}", q(&url))).await;
    assert_eq!(r["status"], 200);
    assert_eq!(r["body"], "hello over tls");
    assert_eq!(r["effective_url"], url);
    server.shutdown().await;
    origin.abort();

    // A CA file that is missing or not PEM refuses the manifest, naming the setting.
    for content in [None, Some("not a certificate")] {
        let app = fetcher_app("[app]\nhttp_client_ca = \"ca.pem\"\n");
        if let Some(content) = content {
            std::fs::write(app.path().join("ca.pem"), content).unwrap();
        }
        let dir = app.path().to_owned();
        let error = tokio::task::spawn_blocking(move || waterspout::App::load(&dir, ServerConfig::default()))
            .await
            .unwrap()
            .err()
            .expect("a bad http_client_ca must not load");
        let text = error.to_string();
        assert!(
            text.contains("http_client_ca") && text.contains("ca.pem") && text.contains("waterspout.toml:2"),
            "{text}"
        );
    }
}
