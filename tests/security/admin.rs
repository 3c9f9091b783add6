//! Admin API under abuse (issue 6, item 5), beside what `integration/admin.rs`
//! covers (401s, bad uploads, 413): an oversize upload is refused before its
//! body is sent, a compile bomb is bounded and does not stall serving, and
//! concurrent uploads end consistent with increasing versions.

use std::time::{Duration, Instant};

use reqwest::Method;
use tokio::io::AsyncWriteExt;
use waterspout::ServerConfig;
use waterspout_tests::guests;
use waterspout_tests::harness::{
    ADMIN_TOKEN, admin_call, admin_config, measure_alone, own_rss_kib, raw, read_wasm, start_version_a,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_upload_is_refused_before_its_body_is_sent() {
    let server = start_version_a(ServerConfig {
        max_upload_size: 1 << 20,
        ..admin_config()
    })
    .await;
    let admin = server.admin.as_ref().unwrap().local_addr();
    // Only the head: the answer must not wait for 1 GB.
    let head = format!(
        "POST /handlers/version/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Length: 1000000000\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let reply = raw::read_reply(&mut stream)
        .await
        .expect("an answer before the body");
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(raw::closes_within(&mut stream, Duration::from_secs(5)).await);
    // Without a token the size does not matter: 401 first, nothing read.
    let head = "POST /handlers/version/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n";
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let reply = raw::read_reply(&mut stream)
        .await
        .expect("an answer before the body");
    assert_eq!(reply.status, 401, "{reply:?}");
    server.shutdown().await;
}

/// A component whose one core module has `functions` small functions: all
/// compiled before the world is even checked.
fn compile_bomb(functions: usize) -> Vec<u8> {
    let mut text = String::from("(component (core module\n");
    for i in 0..functions {
        text.push_str(&format!(
            "(func (export \"f{i}\") (param i32) (result i32) local.get 0 i32.const {i} i32.add i32.const 3 i32.mul)\n"
        ));
    }
    text.push_str("))");
    wat::parse_str(&text).expect("valid wat")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compile_bomb_is_bounded_and_serving_goes_on() {
    let _alone = measure_alone().await;
    let server = start_version_a(admin_config()).await;
    let bomb = compile_bomb(50_000);
    let size_kib = bomb.len() / 1024;
    let before = own_rss_kib() / 1024;
    let (admin, url) = (
        server.client.clone(),
        server.admin_url("/handlers/version/versions"),
    );
    let started = Instant::now();
    let upload = tokio::spawn(async move {
        let response = admin
            .post(url)
            .bearer_auth(ADMIN_TOKEN)
            .body(bomb)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.text().await.unwrap(),
            started.elapsed(),
        )
    });
    // Serving while it compiles: latencies of normal requests.
    let mut latencies = Vec::new();
    let mut peak = before;
    while !upload.is_finished() && started.elapsed() < Duration::from_secs(120) {
        let start = Instant::now();
        assert_eq!(server.get_text("/").await, (200, "a".into()));
        latencies.push(start.elapsed());
        peak = peak.max(own_rss_kib() / 1024);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body, took) = upload.await.unwrap();
    latencies.sort();
    let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or_default();
    let worst = latencies.last().copied().unwrap_or_default();
    eprintln!(
        "compile bomb ({size_kib} KiB, 50,000 functions): {status} after {took:?}; RSS {before} → {peak} MiB; \
         {} requests meanwhile, p50 {p50:?}, worst {worst:?}",
        latencies.len()
    );
    // Compiled, then refused: too many functions for a pool slot (wasmtime
    // finds out only after compiling them all).
    assert_eq!(status, 422, "{body}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(peak < before + 1024, "RSS {before} → {peak} MiB");
    assert!(p50 < Duration::from_millis(50), "p50 {p50:?} while compiling");
    assert!(worst < Duration::from_secs(1), "worst {worst:?} while compiling");
    // Nothing changed.
    assert_eq!(server.get_text("/").await, (200, "a".into()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_end_consistent_with_increasing_versions() {
    let server = start_version_a(admin_config()).await;
    let bytes = [
        read_wasm(guests::VERSION_A_WASM),
        read_wasm(guests::VERSION_B_WASM),
    ];
    let uploads: Vec<_> = (0..8)
        .map(|i| {
            let request = server
                .admin(Method::POST, "/handlers/version/versions")
                .body(bytes[i % 2].clone());
            tokio::spawn(async move { (i % 2, admin_call(request).await) })
        })
        .collect();
    let mut returned = Vec::new();
    for upload in uploads {
        let (which, (status, body)) = upload.await.unwrap();
        assert_eq!(status, 201, "{body}");
        returned.push((body["version"].as_u64().expect("a version number"), which));
    }
    returned.sort();
    let numbers: Vec<u64> = returned.iter().map(|(v, _)| *v).collect();
    // Eight distinct versions after the manifest's version 1.
    assert_eq!(numbers, (2..=9).collect::<Vec<_>>(), "{returned:?}");
    let (_, listing) = admin_call(server.admin(Method::GET, "/handlers/version/versions")).await;
    let listed: Vec<u64> = listing["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=9).collect::<Vec<_>>(), "{listing}");
    // The last upload to be activated is the highest version, and is served.
    assert_eq!(listing["active_version"], 9, "{listing}");
    let (_, last) = returned.last().unwrap();
    assert_eq!(server.get_text("/").await, (200, ["a", "b"][*last].into()));
    server.shutdown().await;
}
