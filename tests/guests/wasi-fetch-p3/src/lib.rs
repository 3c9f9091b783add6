//! A plain `wasi:http/service` (WASI 0.3) component for the tests:
//!
//! | request              | answer                                                   |
//! |----------------------|----------------------------------------------------------|
//! | `GET /fetch?url=URL` | `fetched STATUS` or `error: CODE` (outbound request)     |
//! | `GET /panic`         | panics before returning a response (a trap → 500)        |
//! | `GET /spin`          | loops on the CPU forever (→ 503 at the time limit)       |
//! | `GET /sleep`         | waits an hour on the host's clock (→ 503 at the limit)   |
//! | `GET /count`         | requests this instance has served, this one included     |
//! | `GET /slow?ms=N`     | waits N ms, then `ID PEAK`: this instance's random id and |
//! |                      | the most requests it has had in flight at once so far     |
//! | `GET /id`            | this instance's random id                                 |
//! | `GET /in-flight`     | `/slow` requests in flight on this instance now           |
//! | `GET …/scheme`       | the request's scheme: `http` or `https`                  |
//! | `GET /stream?ms=N`   | `abc`, written after the head in three parts N ms apart  |
//! | `GET /stall`         | `a` after the head, then the body never ends             |
//! | anything else        | `wasi-fetch-p3`                                          |

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use wasip3::http::types::{ErrorCode, Fields, Request, Response, Scheme};
use wasip3::{wit_future, wit_stream};

struct Fetch;

/// Requests this instance has served (more than one with `reuse = N`).
static SERVED: AtomicU32 = AtomicU32::new(0);
/// Requests in flight on this instance now, and the most there have been.
static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static PEAK: AtomicU32 = AtomicU32::new(0);
/// This instance's id (random, drawn on first use).
static ID: AtomicU64 = AtomicU64::new(0);

fn instance_id() -> u64 {
    match ID.load(Ordering::Relaxed) {
        0 => {
            let id = wasip3::random::random::get_random_u64().max(1);
            ID.store(id, Ordering::Relaxed);
            id
        }
        id => id,
    }
}

/// Waits `ms` on the host's clock with this request counted in flight.
async fn slow(ms: u64) -> String {
    let now = IN_FLIGHT.fetch_add(1, Ordering::Relaxed) + 1;
    PEAK.fetch_max(now, Ordering::Relaxed);
    wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
    IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    format!("{} {}", instance_id(), PEAK.load(Ordering::Relaxed))
}

impl wasip3::exports::http::handler::Guest for Fetch {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
        let path = request.get_path_with_query().unwrap_or_default();
        let text = if path == "/panic" {
            panic!("wasi-fetch-p3: panicking on purpose");
        } else if path.ends_with("/scheme") {
            match request.get_scheme() {
                Some(Scheme::Http) => "http".to_owned(),
                Some(Scheme::Https) => "https".to_owned(),
                other => format!("{other:?}"),
            }
        } else if path == "/spin" {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        } else if path == "/sleep" {
            wasip3::clocks::monotonic_clock::wait_for(3_600_000_000_000).await;
            "woke up".to_owned()
        } else if path == "/count" {
            served.to_string()
        } else if path == "/id" {
            instance_id().to_string()
        } else if path == "/in-flight" {
            IN_FLIGHT.load(Ordering::Relaxed).to_string()
        } else if let Some(ms) = path.strip_prefix("/stream?ms=") {
            // The head at once, the body in three parts `ms` apart.
            return Ok(streamed_response(ms.parse().unwrap_or(0), false));
        } else if path == "/stall" {
            // The head and a first part, then the body never ends.
            return Ok(streamed_response(0, true));
        } else if let Some(ms) = path.strip_prefix("/slow?ms=") {
            slow(ms.parse().unwrap_or(0)).await
        } else if let Some(url) = path.strip_prefix("/fetch?url=") {
            fetch(url).await
        } else {
            "wasi-fetch-p3".to_owned()
        };
        Ok(text_response(text))
    }
}

fn text_response(text: String) -> Response {
    let (mut body_tx, body_rx) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
    drop(trailers_tx);
    wasip3::wit_bindgen::spawn_local(async move {
        body_tx.write_all(text.into_bytes()).await;
    });
    response
}

/// A response whose body the guest writes after returning it: `a`, `b`,
/// `c` with `ms` on the host's clock between them; with `stall`, `a` and
/// then a wait of an hour.
fn streamed_response(ms: u64, stall: bool) -> Response {
    let (mut body_tx, body_rx) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
    drop(trailers_tx);
    wasip3::wit_bindgen::spawn_local(async move {
        body_tx.write_all(b"a".to_vec()).await;
        if stall {
            wasip3::clocks::monotonic_clock::wait_for(3_600_000_000_000).await;
        }
        for part in [b"b", b"c"] {
            wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
            body_tx.write_all(part.to_vec()).await;
        }
    });
    response
}

/// GETs `http://AUTHORITY/PATH` (the url without its scheme).
async fn fetch(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    drop(trailers_tx);
    let (request, _sent) = Request::new(Fields::new(), None, trailers_rx, None);
    request.set_scheme(Some(&Scheme::Http)).expect("scheme");
    request.set_authority(Some(authority)).expect("authority");
    request.set_path_with_query(Some(&path)).expect("path");
    match wasip3::http::client::send(request).await {
        Ok(response) => format!("fetched {}", response.get_status_code()),
        Err(code) => format!("error: {code:?}"),
    }
}

wasip3::http::service::export!(Fetch);
