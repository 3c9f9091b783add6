//! The host services seen from a Rust guest: one operation per path, its
//! arguments from the query, its answer as text. A service error answers
//! `ERR KIND: message` (status 200) so tests can tell error values from
//! faults (500/503).
//!
//! - `/kv/get?key=K[&ns=N]` → the value, or `NONE`
//! - `/kv/set?key=K&value=V[&ttl_ms=T][&ns=N]` → `OK`
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

fn number<T: std::str::FromStr>(ctx: &Context, name: &str) -> Option<T> {
    ctx.get_argument(name).ok().and_then(|v| v.parse().ok())
}

impl RequestHandler for Services {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        let path = ctx.path_args().into_iter().next().unwrap_or_default();
        let ns = ctx.get_argument_or("ns", "");
        let space = kv::namespace(&ns);
        let key = ctx.get_argument_or("key", "");
        let answer: String = match path.as_str() {
            "/kv/get" => match space.get_string(&key) {
                Ok(Some(v)) => v,
                Ok(None) => "NONE".into(),
                Err(e) => kv_error(e),
            },
            "/kv/set" => {
                let value = ctx.get_argument_or("value", "");
                let result = match number::<u64>(ctx, "ttl_ms") {
                    Some(ms) => space.set_with_ttl(&key, value, Duration::from_millis(ms)),
                    None => space.set(&key, value),
                };
                result.map(|()| "OK".to_owned()).unwrap_or_else(kv_error)
            }
            "/kv/delete" => space
                .delete(&key)
                .map(|b| b.to_string())
                .unwrap_or_else(kv_error),
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
            _ => return Err(HttpError::new(404)),
        };
        ctx.write(answer);
        Ok(())
    }
}

export_handler!(Services);
