//! The host services seen from a Rust guest: one operation per path, its
//! arguments from the query, its answer as text. A service error answers
//! `ERR KIND: message` (status 200) so tests can tell error values from
//! faults (500/503).
//!
//! - `/kv/get?key=K[&ns=N][&n=R]` → the value, or `NONE` (`n`: the call
//!   made R times, for the benchmark)
//! - `/kv/set?key=K&value=V[&ttl_ms=T][&ns=N][&n=R]` → `OK`
//! - `/kv/delete?key=K` → `true` / `false`
//! - `/kv/incr?key=K&delta=D` → the new value
//! - `/kv/cas?key=K[&expected=E]&value=V` → `won` / `lost`
//! - `/kv/list?prefix=P[&limit=L]` → keys joined by `,`
//! - `/sleep?ms=M` → `slept M`
//! - `/fetch?url=U[&method=M][&body=B][&header=NAME:VALUE…][&connect_timeout_ms=…]`
//!   `[&request_timeout_ms=…][&follow_redirects=0][&max_redirects=N][&max_size=N]`
//!   → JSON `{status, reason, headers, body, effective_url}` or `ERR KIND: …`
//! - `/fetch-all?url=U&url=U2…` → a JSON list of `{status, body}` or `{error}`

use std::time::Duration;

use waterspout_sdk::http_client::{self, FetchError, HttpRequest};
use waterspout_sdk::kv::{self, KvError};
use waterspout_sdk::prelude::*;
use waterspout_sdk::timers;

#[derive(Default)]
struct Services;

fn kv_error(e: KvError) -> String {
    match e {
        KvError::Denied(m) => format!("ERR denied: {m}"),
        KvError::Invalid(m) => format!("ERR invalid: {m}"),
        KvError::NotANumber(m) => format!("ERR not-a-number: {m}"),
        KvError::Backend(m) => format!("ERR backend: {m}"),
    }
}

fn fetch_error(e: &FetchError) -> String {
    let kind = match e {
        FetchError::Denied(_) => "denied",
        FetchError::BadUrl(_) => "bad-url",
        FetchError::Dns(_) => "dns",
        FetchError::Connect(_) => "connect",
        FetchError::Timeout(_) => "timeout",
        FetchError::TooLarge(_) => "too-large",
        FetchError::Other(_) => "other",
    };
    format!("ERR {kind}: {e}")
}

fn number<T: std::str::FromStr>(ctx: &Context, name: &str) -> Option<T> {
    ctx.get_argument(name).ok().and_then(|v| v.parse().ok())
}

fn request(ctx: &Context, url: String) -> HttpRequest {
    let mut req = HttpRequest::new(url).method(ctx.get_argument_or("method", "GET"));
    for header in ctx.get_arguments("header") {
        if let Some((name, value)) = header.split_once(':') {
            req = req.header(name, value);
        }
    }
    if let Ok(body) = ctx.get_argument("body") {
        req = req.body(body);
    }
    if let Some(ms) = number(ctx, "connect_timeout_ms") {
        req = req.connect_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = number(ctx, "request_timeout_ms") {
        req = req.request_timeout(Duration::from_millis(ms));
    }
    if ctx.get_argument_or("follow_redirects", "1") == "0" {
        req = req.follow_redirects(false);
    }
    if let Some(n) = number(ctx, "max_redirects") {
        req = req.max_redirects(n);
    }
    if let Some(n) = number(ctx, "max_size") {
        req = req.max_response_size(n);
    }
    req
}

impl RequestHandler for Services {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        let path = ctx.path_args().into_iter().next().unwrap_or_default();
        let ns = ctx.get_argument_or("ns", "");
        let space = kv::namespace(&ns);
        let key = ctx.get_argument_or("key", "");
        let repeat = number::<u32>(ctx, "n").unwrap_or(1).max(1);
        let answer: String = match path.as_str() {
            // `n`: the call repeated n times (the benchmark's kv calls per second).
            "/kv/get" => {
                let mut answer = String::new();
                for _ in 0..repeat {
                    answer = match space.get_string(&key) {
                        Ok(Some(v)) => v,
                        Ok(None) => "NONE".into(),
                        Err(e) => kv_error(e),
                    };
                }
                answer
            }
            "/kv/set" => {
                let value = ctx.get_argument_or("value", "");
                let ttl = number::<u64>(ctx, "ttl_ms");
                let mut answer = String::new();
                for _ in 0..repeat {
                    let result = match ttl {
                        Some(ms) => space.set_with_ttl(&key, value.as_str(), Duration::from_millis(ms)),
                        None => space.set(&key, value.as_str()),
                    };
                    answer = result.map(|()| "OK".to_owned()).unwrap_or_else(kv_error);
                }
                answer
            }
            "/kv/delete" => space.delete(&key).map(|b| b.to_string()).unwrap_or_else(kv_error),
            "/kv/incr" => space
                .increment(&key, number(ctx, "delta").unwrap_or(1))
                .map(|n| n.to_string())
                .unwrap_or_else(kv_error),
            "/kv/cas" => {
                let expected = ctx.get_argument("expected").ok();
                let value = ctx.get_argument_or("value", "");
                space
                    .compare_and_swap(&key, expected.as_deref().map(str::as_bytes), value)
                    .map(|won| if won { "won" } else { "lost" }.to_owned())
                    .unwrap_or_else(kv_error)
            }
            "/kv/list" => space
                .list_keys(&ctx.get_argument_or("prefix", ""), number(ctx, "limit"))
                .map(|keys| keys.join(","))
                .unwrap_or_else(kv_error),
            "/sleep" => {
                let ms: u64 = number(ctx, "ms").unwrap_or(0);
                timers::sleep(Duration::from_millis(ms));
                format!("slept {ms}")
            }
            "/fetch" => {
                let url = ctx.get_argument("url")?;
                match http_client::fetch(&request(ctx, url)) {
                    Ok(r) => serde_json::json!({
                        "status": r.status,
                        "reason": r.reason,
                        "headers": r.headers,
                        "body": String::from_utf8_lossy(&r.body),
                        "effective_url": r.effective_url,
                    })
                    .to_string(),
                    Err(e) => fetch_error(&e),
                }
            }
            "/fetch-all" => {
                let requests: Vec<HttpRequest> = ctx
                    .get_arguments("url")
                    .into_iter()
                    .map(|url| request(ctx, url))
                    .collect();
                let results: Vec<serde_json::Value> = http_client::fetch_all(&requests)
                    .into_iter()
                    .map(|r| match r {
                        Ok(r) => serde_json::json!({
                            "status": r.status,
                            "body": String::from_utf8_lossy(&r.body),
                        }),
                        Err(e) => serde_json::json!({ "error": fetch_error(&e) }),
                    })
                    .collect();
                serde_json::Value::from(results).to_string()
            }
            _ => return Err(HttpError::new(404)),
        };
        ctx.write(answer);
        Ok(())
    }
}

export_handler!(Services);
