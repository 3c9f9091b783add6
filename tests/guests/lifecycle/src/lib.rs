//! Walks Tornado's `RequestHandler` lifecycle so tests can check that the host
//! calls `initialize → prepare → verb → on_finish` in order and honours what
//! each step does to the response. The route's `mode` setting picks the case
//! (route → what the guest does → the expected answer):
//!
//! - `/prepare`: `prepare` writes `prepared;`, then `get` writes `verb ran`
//!   → 200 `prepared;verb ran`. With `?stop=1`, `prepare` writes
//!   `stopped in prepare` and finishes → 200 `stopped in prepare` (the verb
//!   must not run).
//! - `/head`: `GET` writes `get body` → 200 `get body`. `HEAD` sets
//!   `X-Head: 1` and writes `head body` → 200 with `X-Head: 1` and no body
//!   (the host must drop it).
//! - `/only-get`: GET → 200 `only get`. No route implements POST or PUT, so
//!   those answer Tornado's default 405 page on every route.
//! - `/forbidden`: `send_error(403)`, then a write that must be dropped
//!   → 403, body `<html><title>403: Forbidden</title><body>403: Forbidden</body></html>`.
//! - `/send-error-reason`: `send_error_with_reason(503, "Try Later")`
//!   → `503 Try Later`, page with `503: Try Later`.
//! - `/error-return`: returns `HttpError` 409 with reason `Conflict Here`
//!   → `409 Conflict Here`, page with `409: Conflict Here` (written by the
//!   `write-error` export the host calls).
//! - `/headers`: sets `X-Single` to `one` then `two`, adds `X-Multi` `a` and
//!   `b`, sets then clears `X-Gone` → 200 `headers` with `X-Single: two`, two
//!   `X-Multi` values and no `X-Gone`.
//! - `/status`: `set_status_with_reason(299, "Custom Reason")`
//!   → `299 Custom Reason`, body `custom status`.
//! - `/after-finish`: writes `before`, finishes, writes `after` (ignored by
//!   the SDK, with a warning in the log) → 200 `before`.
//! - `/redirect`: `redirect_with_status("/prepare", 301)` → 301,
//!   `Location: /prepare`.
//!
//! Responses other than error pages carry `X-Initialized: 1` when `initialize` ran before
//! `prepare` on the same handler value, and `on_finish` logs
//! `lifecycle: on_finish MODE STATUS` to the host's log.

use waterspout_sdk::log;
use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Lifecycle {
    mode: String,
    initialized: bool,
}

impl RequestHandler for Lifecycle {
    fn initialize(&mut self, settings: &Settings) {
        self.mode = settings.get("mode").unwrap_or_default().to_owned();
        self.initialized = true;
    }

    fn prepare(&mut self, ctx: &mut Context) -> Result<()> {
        if self.initialized {
            ctx.set_header("X-Initialized", 1);
        }
        if self.mode == "prepare" {
            if ctx.get_argument_or("stop", "0") == "1" {
                ctx.write("stopped in prepare");
                ctx.finish();
            } else {
                ctx.write("prepared;");
            }
        }
        Ok(())
    }

    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        match self.mode.as_str() {
            "prepare" => ctx.write("verb ran"),
            "head" => ctx.write("get body"),
            "only-get" => ctx.write("only get"),
            "forbidden" => {
                ctx.send_error(403);
                ctx.write("this is dropped: send_error took over");
            }
            "send-error-reason" => ctx.send_error_with_reason(503, "Try Later"),
            "error-return" => {
                return Err(HttpError::new(409)
                    .with_reason("Conflict Here")
                    .with_log_message("lifecycle: returning 409 on purpose"));
            }
            "headers" => {
                ctx.set_header("X-Single", "one");
                ctx.set_header("X-Single", "two");
                ctx.add_header("X-Multi", "a");
                ctx.add_header("X-Multi", "b");
                ctx.set_header("X-Gone", "soon");
                ctx.clear_header("X-Gone");
                ctx.write("headers");
            }
            "status" => {
                ctx.set_status_with_reason(299, "Custom Reason");
                ctx.write("custom status");
            }
            "after-finish" => {
                ctx.write("before");
                ctx.finish();
                ctx.write("after");
            }
            "redirect" => ctx.redirect_with_status("/prepare", 301),
            other => return Err(HttpError::new(404).with_log_message(format!("unknown mode {other:?}"))),
        }
        Ok(())
    }

    fn head(&mut self, ctx: &mut Context) -> Result<()> {
        if self.mode != "head" {
            return self.get(ctx);
        }
        ctx.set_header("X-Head", 1);
        // The host must not send this body in answer to HEAD.
        ctx.write("head body");
        Ok(())
    }

    fn on_finish(&mut self, ctx: &mut Context) {
        log::info!("lifecycle: on_finish {} {}", self.mode, ctx.get_status());
    }
}

export_handler!(Lifecycle);
