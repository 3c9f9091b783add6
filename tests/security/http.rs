//! HTTP/1 framing over raw TCP (issue 6, item 1): every malformed or
//! ambiguous request head gets one 4xx answer and, where the framing is in
//! doubt, a closed connection — never a second, smuggled response.
//!
//! Each request is followed on the same connection by a marker request
//! (`GET /ok` with `Connection: close`): if the server answers the marker, it
//! kept reading after the bad request, so it must have parsed it exactly.

use std::time::Duration;

use waterspout::ServerConfig;
use waterspout_tests::guests;
use waterspout_tests::harness::raw::{self, Outcome, exchange};
use waterspout_tests::harness::{MAX_URI_LEN, TestServer};

/// Asks for `ok` and closes: the second answer on a connection that is in sync.
const MARKER: &str = "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// How long a connection may stay silent before we decide it was left open.
const QUIET: Duration = Duration::from_secs(3);

/// Sends `request` and the marker on one connection.
async fn with_marker(server: &TestServer, request: &str) -> Outcome {
    exchange(server.addr, format!("{request}{MARKER}").as_bytes(), QUIET).await
}

/// `request` must get exactly one answer, `status`, and a closed connection.
async fn refused(server: &TestServer, what: &str, request: &str, status: u16) {
    let outcome = with_marker(server, request).await;
    assert_eq!(outcome.statuses(), [status], "{what}: {}", outcome.raw);
    assert!(outcome.closed, "{what}: connection left open: {}", outcome.raw);
}

/// `request` must be answered with `status`, then the marker with 200 `ok`.
async fn in_sync(server: &TestServer, what: &str, request: &str, status: u16) {
    let outcome = with_marker(server, request).await;
    assert_eq!(outcome.statuses(), [status, 200], "{what}: {}", outcome.raw);
    assert_eq!(outcome.replies[1].body_text(), "ok", "{what}: {}", outcome.raw);
    assert!(outcome.closed, "{what}: {}", outcome.raw);
}

async fn faults() -> TestServer {
    TestServer::start(guests::FAULTS_APP).await
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_answered_once_then_closed() {
    let server = faults().await;
    // hyper follows RFC 9112 §6.3: Transfer-Encoding wins, and the connection
    // closes after the response, so whatever follows the chunked body (here
    // the start of a smuggled request, then the marker) is never parsed.
    let smuggled = "GPOST /trap HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\nx=1";
    let cases = [
        (
            "CL.TE",
            "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        ),
        (
            "TE.CL",
            &format!(
                "POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n\
                 {:x}\r\n{smuggled}\r\n0\r\n\r\n",
                smuggled.len()
            ),
        ),
        (
            "CL.TE with a whole request after the body",
            "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n\
             0\r\n\r\nGET /trap HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    ];
    for (what, request) in cases {
        // 405: the faults guest has no `post`; the body was read as chunked.
        refused(&server, what, request, 405).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn odd_transfer_encodings_are_400_and_close() {
    let server = faults().await;
    let body = "5\r\nhello\r\n0\r\n\r\n";
    let cases = [
        ("chunked, chunked", "Transfer-Encoding: chunked, chunked\r\n"),
        ("gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n"),
        (
            "two chunked lines",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        ),
        ("gzip alone", "Transfer-Encoding: gzip\r\n"),
        ("identity", "Transfer-Encoding: identity\r\n"),
        ("chunked then gzip", "Transfer-Encoding: chunked, gzip\r\n"),
        ("empty value", "Transfer-Encoding: \r\n"),
        ("chunked with a trailing comma", "Transfer-Encoding: chunked,\r\n"),
        ("xchunked", "Transfer-Encoding: xchunked\r\n"),
    ];
    for (what, header) in cases {
        let request = format!("POST /ok HTTP/1.1\r\nHost: x\r\n{header}\r\n{body}");
        refused(&server, what, &request, 400).await;
    }
    // Transfer-Encoding does not exist in HTTP/1.0.
    let request = format!("POST /ok HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
    refused(&server, "chunked on HTTP/1.0", &request, 400).await;
    // The one accepted spelling, case-insensitive.
    let request = format!("POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n{body}");
    in_sync(&server, "Chunked", &request, 405).await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_content_length_is_400_and_close() {
    let server = faults().await;
    let cases = [
        ("plus sign", "Content-Length: +1\r\n"),
        ("hex", "Content-Length: 0x10\r\n"),
        ("negative", "Content-Length: -1\r\n"),
        ("overflow", "Content-Length: 99999999999999999999999\r\n"),
        ("not a number", "Content-Length: ten\r\n"),
        ("empty", "Content-Length: \r\n"),
        ("space inside", "Content-Length: 1 0\r\n"),
        ("disagreeing lines", "Content-Length: 1\r\nContent-Length: 2\r\n"),
        ("disagreeing list", "Content-Length: 1, 2\r\n"),
    ];
    for (what, header) in cases {
        let request = format!("POST /ok HTTP/1.1\r\nHost: x\r\n{header}\r\nx");
        refused(&server, what, &request, 400).await;
    }
    // hyper reserves u64::MAX internally and calls this length too large.
    let request = "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\nx";
    refused(&server, "u64::MAX", request, 431).await;
    // Repeated but equal values are one length (RFC 9110 §8.6).
    let request = "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
    in_sync(&server, "equal duplicates", request, 405).await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_chunks_are_400_and_close() {
    let server = faults().await;
    let cases = [
        ("size not hex", "zz\r\nhello\r\n0\r\n\r\n"),
        ("size overflows u64", "10000000000000000\r\nx\r\n0\r\n\r\n"),
        ("negative size", "-5\r\nhello\r\n0\r\n\r\n"),
        ("size with 0x", "0x5\r\nhello\r\n0\r\n\r\n"),
        ("data longer than size", "3\r\nhello\r\n0\r\n\r\n"),
        ("no CRLF after data", "5\r\nhelloXX0\r\n\r\n"),
        ("bare LF inside an extension", "5;a=b\nc\r\nhello\r\n0\r\n\r\n"),
        (
            "extensions over 16 KiB",
            &format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(20_000)),
        ),
        ("body ends mid-chunk", "ff\r\nshort"),
    ];
    for (what, body) in cases {
        let request = format!("POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
        // The marker goes out only after a close: "body ends mid-chunk" must
        // not swallow it as chunk data and wait, so half-close our side.
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        use tokio::io::AsyncWriteExt;
        let _ = stream.write_all(request.as_bytes()).await;
        if what == "body ends mid-chunk" {
            let _ = stream.shutdown().await;
        } else {
            let _ = stream.write_all(MARKER.as_bytes()).await;
        }
        let outcome = raw::read_until_quiet(&mut stream, QUIET).await;
        assert_eq!(outcome.statuses(), [400], "{what}: {}", outcome.raw);
        assert!(outcome.closed, "{what}: {}", outcome.raw);
    }
    // Extensions and trailers within limits are fine.
    let request = "POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n";
    in_sync(&server, "extension and trailer", request, 405).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_inside_a_body_is_only_body() {
    let server = faults().await;
    let inner = "GET /trap HTTP/1.1\r\nHost: x\r\n\r\n";
    let request = format!(
        "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{inner}",
        inner.len()
    );
    // 405 for the POST, 200 for the marker, and never the 500 of /trap.
    in_sync(&server, "Content-Length body", &request, 405).await;
    let request = format!(
        "POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\n",
        inner.len()
    );
    in_sync(&server, "chunked body", &request, 405).await;
    // The same holds when the route does not read the body (404 before the
    // guest): hyper drains the declared length rather than parse it.
    let request = format!(
        "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{inner}",
        inner.len()
    );
    in_sync(&server, "unread body", &request, 404).await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_header_lines_are_400_and_close() {
    let server = faults().await;
    let cases = [
        (
            "bare CR in a value",
            "GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        ),
        (
            "bare CR ending a line",
            "GET /ok HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n",
        ),
        (
            "NUL in a value",
            "GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
        ),
        ("NUL in a name", "GET /ok HTTP/1.1\r\nHost: x\r\nX\0A: b\r\n\r\n"),
        ("NUL in the target", "GET /o\0k HTTP/1.1\r\nHost: x\r\n\r\n"),
        (
            "obs-fold",
            "GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
        ),
        (
            "obs-fold with a tab",
            "GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tfolded\r\n\r\n",
        ),
        (
            "space before the colon",
            "GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
        ),
        (
            "tab before the colon",
            "GET /ok HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n",
        ),
        ("no colon", "GET /ok HTTP/1.1\r\nHost: x\r\nX-A b\r\n\r\n"),
        ("empty name", "GET /ok HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n"),
        ("space in a name", "GET /ok HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n"),
        (
            "DEL in a name",
            "GET /ok HTTP/1.1\r\nHost: x\r\nX\x7fA: b\r\n\r\n",
        ),
        ("space in the target", "GET /o k HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("unknown version", "GET /ok HTTP/1.2\r\nHost: x\r\n\r\n"),
        (
            "HTTP/2 version in HTTP/1 syntax",
            "GET /ok HTTP/2.0\r\nHost: x\r\n\r\n",
        ),
        ("lower-case version", "GET /ok http/1.1\r\nHost: x\r\n\r\n"),
        ("method with a slash", "GE/T /ok HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("leading whitespace line", " GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    for (what, request) in cases {
        refused(&server, what, request, 400).await;
    }
    server.shutdown().await;
}

/// httparse accepts a bare LF as a line end (RFC 9112 §2.2 allows it), for
/// the whole head alike, so the request is read one way only.
#[tokio::test]
async fn bare_lf_line_endings_are_read_as_line_ends() {
    let server = faults().await;
    in_sync(
        &server,
        "bare LF everywhere",
        "GET /ok HTTP/1.1\nHost: x\n\n",
        200,
    )
    .await;
    in_sync(&server, "mixed", "GET /ok HTTP/1.1\r\nHost: x\nX-A: 1\r\n\n", 200).await;
    server.shutdown().await;
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_431() {
    let server = faults().await;
    // hyper's limit: 100 header lines.
    let many: String = (0..101).map(|i| format!("X-{i}: {i}\r\n")).collect();
    refused(
        &server,
        "101 headers",
        &format!("GET /ok HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
        431,
    )
    .await;
    let fine: String = (0..90).map(|i| format!("X-{i}: {i}\r\n")).collect();
    in_sync(
        &server,
        "90 headers",
        &format!("GET /ok HTTP/1.1\r\nHost: x\r\n{fine}\r\n"),
        200,
    )
    .await;
    // A head holds 64 KiB, however the reads that bring it fall.
    let under = "a".repeat(60 * 1024);
    in_sync(
        &server,
        "one 60 KiB header",
        &format!("GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: {under}\r\n\r\n"),
        200,
    )
    .await;
    let big = "a".repeat(70 * 1024);
    refused(
        &server,
        "one 70 KiB header",
        &format!("GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"),
        431,
    )
    .await;
    let spread: String = (0..40)
        .map(|i| format!("X-{i}: {}\r\n", "b".repeat(2000)))
        .collect();
    refused(
        &server,
        "80 KB in 40 headers",
        &format!("GET /ok HTTP/1.1\r\nHost: x\r\n{spread}\r\n"),
        431,
    )
    .await;
    // Sent without an end, the head is refused once the buffer is full.
    let endless = format!("GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: {}", "c".repeat(100 * 1024));
    let outcome = exchange(server.addr, endless.as_bytes(), QUIET).await;
    assert_eq!(outcome.statuses(), [431], "{}", outcome.raw);
    assert!(outcome.closed);
    server.shutdown().await;
}

#[tokio::test]
async fn long_uri_is_414() {
    let server = faults().await;
    let long = format!("/ok?{}", "q".repeat(MAX_URI_LEN));
    refused(
        &server,
        "8 KiB target",
        &format!("GET {long} HTTP/1.1\r\nHost: x\r\n\r\n"),
        414,
    )
    .await;
    // At the limit it is served.
    let fits = format!("/ok?{}", "q".repeat(MAX_URI_LEN - 4));
    in_sync(
        &server,
        "target at the limit",
        &format!("GET {fits} HTTP/1.1\r\nHost: x\r\n\r\n"),
        200,
    )
    .await;
    // Past 64 KiB hyper answers before the edge sees the request: 414 when
    // the whole head is in (its own limit for a target is 65,534 bytes), 431
    // when its read buffer fills first. Either way one answer, then close.
    let huge = format!("/ok?{}", "q".repeat(70 * 1024));
    let outcome = with_marker(&server, &format!("GET {huge} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
    assert!(
        matches!(outcome.statuses()[..], [414] | [431]),
        "70 KiB target: {}",
        outcome.raw
    );
    assert!(
        outcome.closed,
        "70 KiB target: connection left open: {}",
        outcome.raw
    );
    server.shutdown().await;
}

#[tokio::test]
async fn host_header_rules() {
    let server = faults().await;
    refused(&server, "HTTP/1.1 without Host", "GET /ok HTTP/1.1\r\n\r\n", 400).await;
    refused(
        &server,
        "two Host lines",
        "GET /ok HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
    )
    .await;
    refused(
        &server,
        "two Host lines on HTTP/1.0",
        "GET /ok HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
    )
    .await;
    // HTTP/1.0 needs no Host; it closes after the answer anyway.
    let outcome = exchange(server.addr, b"GET /ok HTTP/1.0\r\n\r\n", QUIET).await;
    assert_eq!(outcome.statuses(), [200], "{}", outcome.raw);
    assert!(outcome.closed);
    // Absolute-form carries the host in the target; Host must still be there.
    in_sync(
        &server,
        "absolute-form",
        "GET http://x/ok HTTP/1.1\r\nHost: x\r\n\r\n",
        200,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn expect_100_continue_over_the_limit_is_413_without_reading_the_body() {
    let config = ServerConfig {
        max_body_size: 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(guests::FAULTS_APP, config).await;
    // Only the head is sent: the answer must come without the body.
    let head = "POST /ok HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n";
    let outcome = exchange(server.addr, head.as_bytes(), QUIET).await;
    assert_eq!(
        outcome.statuses(),
        [413],
        "no 100 Continue first: {}",
        outcome.raw
    );
    assert!(outcome.closed, "{}", outcome.raw);
    // Within the limit the client is told to go on, then answered.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    let head = "POST /ok HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let continue_ = raw::read_reply(&mut stream).await.expect("100 Continue");
    assert_eq!(continue_.status, 100, "{continue_:?}");
    stream.write_all(b"hello").await.unwrap();
    let reply = raw::read_reply(&mut stream).await.expect("the answer");
    assert_eq!(reply.status, 405);
    server.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = faults().await;
    let request = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
                   POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    let outcome = with_marker(&server, request).await;
    assert_eq!(outcome.statuses(), [200, 404, 405, 200], "{}", outcome.raw);
    assert!(outcome.closed);
    server.shutdown().await;
}
