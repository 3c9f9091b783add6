//! The web layers of issue 12 (items 4, 5, 7), over real sockets: static
//! files (304, 206, 200 for a whole range, 416, the traversal corpus),
//! response compression (gzip, brotli, streamed) and request inflation (a
//! gzip bomb → 413), TLS with HTTP/2 by ALPN (reqwest's h2 and curl), h2c
//! with prior knowledge, wss, the admin API over TLS, and xheaders.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use waterspout::ServerConfig;
use waterspout_tests::guests;
use waterspout_tests::harness::raw::{PATIENCE, exchange};
use waterspout_tests::harness::{ADMIN_TOKEN, TestCertificate, TestServer, admin_config};

const SECRET: &str = "TOP SECRET: outside the static root";
const LINE: &str = "Waterspout serves Tornado apps as WebAssembly components, one sandbox a request.\n";

/// What the `web-layers` guest's `/big?n=N` writes.
fn text(n: usize) -> String {
    LINE.repeat(n / LINE.len() + 1)[..n].to_owned()
}

/// An app: the `web-layers` guest at `/whoami`, `/big`, `/stream`, `/echo`, the
/// WebSocket echo at `/ws`, a `static/` directory (and a secret beside it),
/// and `extra` appended to `[app]`.
fn web_app(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "[app]\nstatic_path = \"static\"\n{extra}\n\
         [[route]]\npattern = \"/(whoami|big|stream|echo)\"\nhandler = \"web\"\n\
         [[route]]\npattern = \"/ws\"\nhandler = \"echo\"\n\
         [handler.web]\nwasm = {:?}\n[handler.echo]\nwasm = {:?}\n",
        guests::WEB_LAYERS_WASM,
        guests::ECHO_WASM
    );
    std::fs::write(dir.path().join("waterspout.toml"), manifest).unwrap();
    let root = dir.path().join("static");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    std::fs::write(root.join("hello.txt"), text(2000)).unwrap();
    std::fs::write(root.join("sub/page.html"), "<p>inside</p>").unwrap();
    std::fs::write(root.join("favicon.ico"), [0u8, 0, 1, 0]).unwrap();
    std::fs::write(root.join("pixel.png"), vec![0x89u8; 4096]).unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).unwrap();
    std::os::unix::fs::symlink("..", root.join("up")).unwrap();
    std::os::unix::fs::symlink("sub/page.html", root.join("inside.html")).unwrap();
    dir
}

async fn start(dir: &Path, config: ServerConfig) -> TestServer {
    TestServer::start_with(dir.to_str().unwrap(), config).await
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn static_files_answer_conditional_and_range_requests_as_tornado() {
    let dir = web_app("");
    let server = start(dir.path(), ServerConfig::default()).await;
    let url = server.url("/static/hello.txt");
    let whole = text(2000);

    let r = server.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(header(&r, "content-type").as_deref(), Some("text/plain"));
    assert_eq!(header(&r, "content-length").as_deref(), Some("2000"));
    assert_eq!(header(&r, "cache-control"), None, "unversioned: no long caching");
    let etag = header(&r, "etag").expect("an ETag");
    let modified = header(&r, "last-modified").expect("a Last-Modified");
    assert_eq!(r.text().await.unwrap(), whole);

    // If-None-Match / If-Modified-Since → 304 without a body.
    let get = |h: &'static str, v: &str| server.client.get(&url).header(h, v).send();
    let r = get("if-none-match", &etag).await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag").as_deref(), Some(etag.as_str()));
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(
        get("if-none-match", "\"other\", W/\"x\"").await.unwrap().status(),
        200
    );
    assert_eq!(get("if-modified-since", &modified).await.unwrap().status(), 304);
    let old = "Sat, 01 Jan 2000 00:00:00 GMT";
    assert_eq!(get("if-modified-since", old).await.unwrap().status(), 200);

    // Ranges: 206 for a part, 200 for the whole file, 416 past the end.
    let r = get("range", "bytes=10-19").await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range").as_deref(), Some("bytes 10-19/2000"));
    assert_eq!(r.text().await.unwrap(), whole[10..20]);
    let r = get("range", "bytes=-5").await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), whole[1995..]);
    for covering in ["bytes=0-1999", "bytes=0-", "bytes=0-5000"] {
        let r = get("range", covering).await.unwrap();
        assert_eq!(r.status(), 200, "{covering}");
        assert_eq!(header(&r, "content-range"), None, "{covering}");
        assert_eq!(r.text().await.unwrap(), whole, "{covering}");
    }
    let r = get("range", "bytes=2000-").await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "content-range").as_deref(), Some("bytes */2000"));

    // static_url: versioned by content, cached for ten years.
    let statics = server.app.statics().expect("static_path is set").clone();
    let versioned = statics.static_url("hello.txt");
    let version = versioned.split_once("?v=").expect("a version").1;
    assert_eq!(etag, format!("\"{version}\""), "the ETag is the content hash");
    let r = server.get(&versioned).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "cache-control").as_deref(), Some("max-age=315360000"));
    assert!(header(&r, "expires").is_some());

    // HEAD, other verbs, Tornado's root files, a symlink inside the root,
    // and the guest routes beside the static ones.
    let r = server.client.head(&url).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), header(&r, "content-length")),
        (200, Some("2000".into()))
    );
    assert_eq!(server.client.post(&url).send().await.unwrap().status(), 405);
    let r = server.get("/favicon.ico").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), [0, 0, 1, 0]);
    assert_eq!(
        server.get_text("/static/inside.html").await,
        (200, "<p>inside</p>".into())
    );
    assert_eq!(server.get_text("/static/nope.css").await.0, 404);
    assert_eq!(server.get_text("/whoami").await, (200, "127.0.0.1 http".into()));
    server.shutdown().await;
}

/// A file of several reads (the server reads 64 KiB at a time, on its
/// worker thread): whole, and a range starting inside one read and ending
/// inside another. Then, once it has not changed for a second, the same
/// from memory (a file of up to 1 MiB is kept: read whole once, then
/// served without reading it); and one of over 1 MiB, still streamed.
#[tokio::test]
async fn static_files_larger_than_one_read_come_whole_and_in_ranges() {
    let dir = web_app("");
    let big: Vec<u8> = (0..300_001u32).map(|i| (i % 251) as u8).collect();
    let bigger: Vec<u8> = (0..(1 << 20) + 1u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(dir.path().join("static/big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("static/bigger.bin"), &bigger).unwrap();
    let server = start(dir.path(), ServerConfig::default()).await;
    let check = async |name: &str, file: &[u8]| {
        let url = server.url(&format!("/static/{name}"));
        let r = server.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let len = file.len().to_string();
        assert_eq!(header(&r, "content-length").as_deref(), Some(&*len));
        let etag = header(&r, "etag").expect("an ETag");
        assert!(r.bytes().await.unwrap() == file, "{name} whole, byte for byte");
        let r = server
            .client
            .get(&url)
            .header("range", "bytes=70000-200000")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(
            header(&r, "content-range"),
            Some(format!("bytes 70000-200000/{len}"))
        );
        assert!(
            r.bytes().await.unwrap() == file[70000..=200000],
            "{name}: the range, byte for byte"
        );
        etag
    };
    // Just written: streamed.
    let streamed = check("big.bin", &big).await;
    check("bigger.bin", &bigger).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Settled: read whole and kept at the first request, then from memory.
    for _ in 0..2 {
        assert_eq!(check("big.bin", &big).await, streamed);
        check("bigger.bin", &bigger).await;
    }
    server.shutdown().await;
}

/// A small file is kept in memory with its hash once it has not changed
/// for a second; rewritten in place with the same size and its old mtime
/// (as `cp -p`, `touch -r` or tar leave it), it is served anew: new body,
/// new ETag, and no 304 for the old ETag. Before, the hash was kept by
/// mtime and size alone, and the old ETag still got a 304.
#[tokio::test]
async fn a_small_static_file_changed_in_place_is_served_anew() {
    let dir = web_app("");
    let path = dir.path().join("static/hello.txt");
    let server = start(dir.path(), ServerConfig::default()).await;
    let url = server.url("/static/hello.txt");
    // Settled: kept in memory from the next request on.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut etags = Vec::new();
    for _ in 0..2 {
        let r = server.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        etags.push(header(&r, "etag").expect("an ETag"));
        assert_eq!(r.text().await.unwrap(), text(2000));
    }
    assert_eq!(etags[0], etags[1]);
    let r = server
        .client
        .get(&url)
        .header("range", "bytes=100-109")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), text(2000)[100..110]);

    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let changed = text(2000).to_uppercase();
    std::fs::write(&path, &changed).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);

    let r = server
        .client
        .get(&url)
        .header("if-none-match", &etags[0])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the old ETag must not match the new content");
    assert_ne!(header(&r, "etag").as_ref(), Some(&etags[0]));
    assert_eq!(r.text().await.unwrap(), changed);
    server.shutdown().await;
}

// Raw requests: a polite client would normalize these paths before sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_static_path_leaves_the_root() {
    let dir = web_app("");
    let server = start(dir.path(), ServerConfig::default()).await;
    let corpus = [
        "/static/../secret.txt",
        "/static/..%2fsecret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/.%2e/secret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/%252e%252e%252fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/%5c..%5csecret.txt",
        "/static/sub%5c..%5c..%5csecret.txt",
        "/static/hello.txt%00",
        "/static/%00../secret.txt",
        "/static/%c0%ae%c0%ae/secret.txt",
        "/static/%c0%ae%c0%ae%c0%afsecret.txt",
        "/static/%e0%80%ae%e0%80%ae/secret.txt",
        "/static//etc/passwd",
        "/static///etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/./../secret.txt",
        "/static/sub/../../secret.txt",
        "/static/sub/%2e%2e/%2e%2e/secret.txt",
        "/static/....//secret.txt",
        "/static/..;/secret.txt",
        "/static/escape.txt",
        "/static/passwd",
        "/static/up/secret.txt",
        "/static/sub",
        "/static/",
    ];
    for path in corpus {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let outcome = exchange(server.addr, request.as_bytes(), PATIENCE).await;
        let reply = outcome
            .replies
            .first()
            .unwrap_or_else(|| panic!("{path}: no reply: {}", outcome.raw));
        assert!(
            reply.status == 403 || reply.status == 404,
            "{path}: {} {}",
            reply.status,
            reply.head
        );
        let body = reply.body_text();
        assert!(
            !body.contains("TOP SECRET") && !body.contains("root:"),
            "{path}: {body}"
        );
        assert_eq!(reply.header("location"), None, "{path}");
    }
    // A raw backslash is not a valid request target: hyper refuses it first.
    let outcome = exchange(
        server.addr,
        b"GET /static/..\\secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        PATIENCE,
    )
    .await;
    assert!(!outcome.raw.contains("TOP SECRET"), "{}", outcome.raw);
    assert!(
        matches!(outcome.statuses().first(), Some(400 | 403 | 404)),
        "{}",
        outcome.raw
    );
    server.shutdown().await;
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("valid gzip");
    out
}

#[tokio::test]
async fn compress_response_gzips_and_brotlis_guest_and_static_responses() {
    let dir = web_app("compress_response = true");
    let server = start(dir.path(), ServerConfig::default()).await;
    let get = |path: &str, accept: &'static str| {
        server
            .client
            .get(server.url(path))
            .header("accept-encoding", accept)
            .send()
    };

    let r = get("/big?n=5000", "gzip").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(
        header(&r, "vary").map(|v| v.to_ascii_lowercase()).as_deref(),
        Some("accept-encoding")
    );
    let body = r.bytes().await.unwrap();
    assert!(body.len() < 1000, "compressed to {} bytes", body.len());
    assert_eq!(gunzip(&body), text(5000));

    let r = get("/big?n=5000", "gzip;q=0.5, br").await.unwrap();
    assert_eq!(header(&r, "content-encoding").as_deref(), Some("br"));
    let mut out = String::new();
    brotli::Decompressor::new(r.bytes().await.unwrap().as_ref(), 4096)
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, text(5000));

    // Not asked for, too small: identity (still Vary).
    let r = get("/big?n=5000", "identity").await.unwrap();
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(
        header(&r, "vary").map(|v| v.to_ascii_lowercase()).as_deref(),
        Some("accept-encoding")
    );
    assert_eq!(r.text().await.unwrap(), text(5000));
    let r = get("/big?n=500", "gzip").await.unwrap();
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(r.text().await.unwrap(), text(500));

    // Streamed: flushed chunks compressed as they come.
    let r = get("/stream?n=50", "gzip").await.unwrap();
    assert_eq!(header(&r, "content-encoding").as_deref(), Some("gzip"));
    let expected: String = (0..50).map(|i| format!("{i:>3} {}", text(96))).collect();
    assert_eq!(gunzip(&r.bytes().await.unwrap()), expected);

    // Static: compressed whole, never a range, a 304 or an image.
    let r = get("/static/hello.txt", "gzip").await.unwrap();
    assert_eq!(header(&r, "content-encoding").as_deref(), Some("gzip"));
    let etag = header(&r, "etag").unwrap();
    assert_eq!(gunzip(&r.bytes().await.unwrap()), text(2000));
    let r = server
        .client
        .get(server.url("/static/hello.txt"))
        .header("accept-encoding", "gzip")
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "content-encoding")), (206, None));
    assert_eq!(r.text().await.unwrap(), text(10));
    let r = server
        .client
        .get(server.url("/static/hello.txt"))
        .header("accept-encoding", "gzip")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "content-encoding")), (304, None));
    let r = get("/static/pixel.png", "gzip").await.unwrap();
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(r.bytes().await.unwrap().len(), 4096);
    server.shutdown().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn decompress_request_inflates_under_the_body_limit_and_stops_a_gzip_bomb() {
    let dir = web_app("decompress_request = true\nmax_body_size = 65536");
    let server = start(dir.path(), ServerConfig::default()).await;
    let post = |body: Vec<u8>| {
        server
            .client
            .post(server.url("/echo"))
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };

    let original = text(10_000);
    let r = post(gzip(original.as_bytes())).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-body-length").as_deref(), Some("10000"));
    assert_eq!(header(&r, "x-consumed-content-encoding").as_deref(), Some("gzip"));
    assert_eq!(r.text().await.unwrap(), original);

    // 32 MiB of zeros in ~32 KiB of gzip (under the limit as sent): refused
    // once 64 KiB are inflated.
    let bomb = gzip(&vec![0u8; 32 << 20]);
    assert!(
        bomb.len() < 65536,
        "the bomb itself fits the limit: {}",
        bomb.len()
    );
    let started = std::time::Instant::now();
    let r = post(bomb).await.unwrap();
    assert_eq!(r.status(), 413);
    assert!(started.elapsed() < Duration::from_secs(20));

    // Corrupt gzip → 400; and the server keeps serving.
    assert_eq!(post(b"not gzip at all".to_vec()).await.unwrap().status(), 400);
    assert_eq!(server.get_text("/whoami").await.0, 200);
    server.shutdown().await;

    // Without decompress_request the body reaches the guest as sent.
    let dir = web_app("");
    let server = start(dir.path(), ServerConfig::default()).await;
    let compressed = gzip(original.as_bytes());
    let r = server
        .client
        .post(server.url("/echo"))
        .header("content-encoding", "gzip")
        .body(compressed.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-consumed-content-encoding").as_deref(), Some("-"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), compressed.as_slice());
    server.shutdown().await;
}

#[tokio::test]
async fn xheaders_set_remote_ip_and_protocol_only_when_trusted() {
    let whoami = |server: &TestServer, headers: &[(&'static str, &'static str)]| {
        let mut request = server.client.get(server.url("/whoami"));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let dir = web_app("xheaders = true");
    let server = start(dir.path(), ServerConfig::default()).await;
    let forwarded = [("x-forwarded-for", "203.0.113.7, 198.51.100.2")];
    assert_eq!(whoami(&server, &forwarded).await, "198.51.100.2 http");
    let real = [("x-real-ip", "2001:db8::1"), ("x-forwarded-proto", "https")];
    assert_eq!(whoami(&server, &real).await, "2001:db8::1 https");
    let scheme = [("x-scheme", "https"), ("x-forwarded-proto", "http")];
    assert_eq!(whoami(&server, &scheme).await, "127.0.0.1 https");
    let bogus = [("x-forwarded-for", "not-an-ip"), ("x-scheme", "gopher")];
    assert_eq!(whoami(&server, &bogus).await, "127.0.0.1 http");
    server.shutdown().await;

    let dir = web_app("xheaders = true\ntrusted_downstream = [\"198.51.100.2\"]");
    let server = start(dir.path(), ServerConfig::default()).await;
    assert_eq!(whoami(&server, &forwarded).await, "203.0.113.7 http");
    server.shutdown().await;

    let dir = web_app("");
    let server = start(dir.path(), ServerConfig::default()).await;
    assert_eq!(
        whoami(&server, &real).await,
        "127.0.0.1 http",
        "not trusted by default"
    );
    server.shutdown().await;
}

/// A test CA and a certificate for `localhost` / 127.0.0.1 it signed,
/// written to `dir` as `cert.pem` and `key.pem`; returns the CA's PEM.
fn make_certificate(dir: &Path) -> String {
    let made = TestCertificate::new("Waterspout test CA", &["localhost", "127.0.0.1"]);
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.key.serialize_pem()).unwrap();
    made.ca_pem
}

/// Adds `tables` (`[app.tls]` and the like) to the app's manifest, after `[app]`'s keys.
fn add_tables(dir: &Path, tables: &str) {
    let manifest = dir.join("waterspout.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen("[[route]]", &format!("{tables}\n[[route]]"), 1),
    )
    .unwrap();
}

const TLS: &str = "[app.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n";

fn tls_client(
    ca: &str,
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(ca.as_bytes()).unwrap();
    configure(
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .timeout(Duration::from_secs(30)),
    )
    .build()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_http2_by_alpn_and_http1_and_h2c_stays() {
    let dir = web_app("");
    let ca = make_certificate(dir.path());
    add_tables(dir.path(), TLS);

    let server = start(dir.path(), ServerConfig::default()).await;
    let port = server.addr.port();
    let url = format!("https://localhost:{port}/whoami");

    // reqwest (hyper + the h2 crate): ALPN picks h2.
    let h2 = tls_client(&ca, |b| b.resolve("localhost", server.addr));
    let r = h2.get(&url).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.unwrap(), "127.0.0.1 https");
    let r = h2
        .get(format!("https://localhost:{port}/static/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_2, 200)
    );
    assert_eq!(r.text().await.unwrap(), text(2000));
    // HTTP/1.1 over TLS.
    let h1 = tls_client(&ca, |b| b.resolve("localhost", server.addr).http1_only());
    let r = h1.get(&url).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.text().await.unwrap(), "127.0.0.1 https");

    // curl --http2, a client of its own (nghttp2, OpenSSL).
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let output = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--http2", "--max-time", "20"])
        .arg("--cacert")
        .arg(&ca_file)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["--write-out", "\n%{http_version} %{response_code}"])
        .arg(&url)
        .output()
        .await
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        "127.0.0.1 https\n2 200",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A client that does not trust the certificate gets no answer.
    let untrusting = reqwest::Client::builder()
        .resolve("localhost", server.addr)
        .build()
        .unwrap();
    assert!(untrusting.get(&url).send().await.is_err());
    // Plain HTTP on the TLS port is not served.
    let outcome = exchange(
        server.addr,
        b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(outcome.replies.is_empty(), "{}", outcome.raw);
    server.shutdown().await;

    // h2c with prior knowledge on a plain listener.
    let dir = web_app("");
    let server = start(dir.path(), ServerConfig::default()).await;
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2c.get(server.url("/whoami")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.unwrap(), "127.0.0.1 http");
    server.shutdown().await;
}

/// Standard wasi:http components (0.2 and 0.3) are told the scheme the
/// client used: `https` over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_http_components_see_the_scheme_the_client_used() {
    for tls in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let manifest = format!(
            "[app]\n{}\n[[route]]\npattern = \"/p2/.*\"\nhandler = \"p2\"\n\
             [[route]]\npattern = \"/p3/.*\"\nhandler = \"p3\"\n\
             [handler.p2]\nwasm = {:?}\n[handler.p3]\nwasm = {:?}\n",
            if tls { TLS } else { "" },
            guests::WASI_FETCH_WASM,
            guests::WASI_FETCH_P3_WASM
        );
        std::fs::write(dir.path().join("waterspout.toml"), manifest).unwrap();
        let ca = make_certificate(dir.path());
        let server = start(dir.path(), ServerConfig::default()).await;
        let (client, base) = if tls {
            let client = tls_client(&ca, |b| b.resolve("localhost", server.addr));
            (client, format!("https://localhost:{}", server.addr.port()))
        } else {
            (server.client.clone(), format!("http://{}", server.addr))
        };
        let expected = if tls { "https" } else { "http" };
        for version in ["p2", "p3"] {
            let r = client
                .get(format!("{base}/{version}/scheme"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.text().await.unwrap(), expected, "{version}, tls: {tls}");
        }
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_over_tls_and_the_admin_api_over_tls() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    let dir = web_app("");
    let ca = make_certificate(dir.path());
    add_tables(
        dir.path(),
        &format!("{TLS}{}", TLS.replace("[app.tls]", "[app.admin_tls]")),
    );
    let server = start(dir.path(), admin_config()).await;

    // wss: TLS with ALPN http/1.1, then the upgrade.
    let mut roots = rustls::RootCertStore::empty();
    let ca_der = rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap();
    roots.add(ca_der).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let (mut ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::client_async(url, tls))
        .await
        .unwrap()
        .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text("over tls"))
        .await
        .unwrap();
    let reply = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "over tls");
    ws.close(None).await.unwrap();

    // The admin API over TLS.
    let admin = server.admin.as_ref().unwrap().local_addr();
    let client = tls_client(&ca, |b| b.resolve("localhost", admin));
    let r = client
        .get(format!("https://localhost:{}/handlers", admin.port()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("\"web\""));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_web_settings_name_the_file_and_line() {
    let load = |extra: &str| {
        let dir = web_app(extra);
        let error = waterspout::App::load(dir.path(), ServerConfig::default())
            .err()
            .expect("refused")
            .to_string();
        (dir, error)
    };
    let (_d, e) = load("static_url_prefix = \"static\"");
    assert!(
        e.contains("waterspout.toml:3:") && e.contains("static_url_prefix"),
        "{e}"
    );
    let (_d, e) = load("trusted_downstream = [\"proxy.local\"]");
    assert!(
        e.contains("waterspout.toml:3:") && e.contains("trusted_downstream"),
        "{e}"
    );
    let (_d, e) = load("[app.tls]\ncert = \"missing.pem\"\nkey = \"key.pem\"");
    assert!(
        (e.contains("waterspout.toml:3:") || e.contains("waterspout.toml:4:")) && e.contains("missing.pem"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("waterspout.toml"),
        "[app]\nstatic_path = \"nowhere\"\n[[route]]\npattern = \"/\"\nhandler = \"h\"\n[handler.h]\nwasm = \"h.wasm\"\n",
    )
    .unwrap();
    let e = waterspout::App::load(dir.path(), ServerConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("waterspout.toml:2:") && e.contains("static_path"),
        "{e}"
    );

    // A certificate file that is not PEM: start-up names the file.
    let dir = web_app("[app.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"");
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let path = dir.path().to_owned();
    let app = tokio::task::spawn_blocking(move || waterspout::App::load(&path, ServerConfig::default()))
        .await
        .unwrap()
        .unwrap();
    let e = waterspout::server::start(app, "127.0.0.1:0".parse().unwrap())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cert.pem"), "{e}");
}
