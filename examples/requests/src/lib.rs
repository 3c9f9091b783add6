//! A tour of the request and response API, one route per feature.
//!
//! Run it: `cargo run -p waterspout -- serve --build examples/requests` from the
//! repository root, then try the routes in `waterspout.toml` with curl.
//!
//! As a Tornado app passes `dict(mode=...)` to `initialize` from its URL specs,
//! every route here sends a `mode` setting that picks what the one handler
//! does. Its error pages are JSON (see `write_error`), and `prepare` and
//! `on_finish` run around every route.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use waterspout_sdk::log;
use waterspout_sdk::prelude::*;

/// The most chunks `/stream` sends, so a request cannot ask for an endless one.
const MAX_CHUNKS: u32 = 1000;

#[derive(Default)]
struct Requests {
    /// The route's `mode` setting.
    mode: String,
}

impl RequestHandler for Requests {
    fn initialize(&mut self, settings: &Settings) {
        self.mode = settings.get("mode").unwrap_or_default().to_owned();
    }

    /// Runs before every verb: marks the response so a client can see it ran.
    fn prepare(&mut self, ctx: &mut Context) -> Result<()> {
        ctx.set_header("X-Prepared", 1);
        Ok(())
    }

    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        match self.mode.as_str() {
            "greet" => greet(ctx),
            "item" => item(ctx),
            "user" => user(ctx),
            "old" => {
                ctx.redirect("/new");
                Ok(())
            }
            "new" => {
                ctx.write("This is the new page");
                Ok(())
            }
            "cookie-set" => set_flavor(ctx),
            "cookie-get" => get_flavor(ctx),
            "fail" => Err(HttpError::new(418)
                .with_reason("Teapot Refuses Coffee")
                .with_log_message("/fail always fails")),
            "stream" => stream(ctx),
            _ => Err(HttpError::new(405)),
        }
    }

    fn post(&mut self, ctx: &mut Context) -> Result<()> {
        match self.mode.as_str() {
            "json" => echo_json(ctx),
            "form" => describe_form(ctx),
            _ => Err(HttpError::new(405)),
        }
    }

    /// This app's error pages are JSON: `{"status": 418, "reason": "..."}`.
    fn write_error(&mut self, ctx: &mut Context, status: u16, reason: &str) {
        ctx.write_json(&ErrorBody { status, reason });
    }

    /// Runs after the response is sent: a line in the host's log.
    fn on_finish(&mut self, ctx: &mut Context) {
        log::info!(
            "{} {} finished with {}",
            ctx.request().method_name(),
            ctx.request().path(),
            ctx.get_status()
        );
    }
}

export_handler!(Requests);

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    reason: &'a str,
}

/// `GET /greet?name=Ann` → `Hello, Ann`; without `name`, a 400.
fn greet(ctx: &mut Context) -> Result<()> {
    let name = ctx.get_argument("name")?;
    ctx.write(format!("Hello, {name}"));
    Ok(())
}

/// `GET /items/42` → `item 42` (a positional regex group).
fn item(ctx: &mut Context) -> Result<()> {
    let id = ctx.path_args().into_iter().next().unwrap_or_default();
    ctx.write(format!("item {id}"));
    Ok(())
}

/// `GET /users/ann` → `user ann` (a named regex group).
fn user(ctx: &mut Context) -> Result<()> {
    let name = ctx.path_kwarg("name").unwrap_or_default();
    ctx.write(format!("user {name}"));
    Ok(())
}

/// `GET /cookie/set?value=mint` sets the cookie `flavor=mint`.
fn set_flavor(ctx: &mut Context) -> Result<()> {
    let value = ctx.get_argument("value")?;
    ctx.set_cookie("flavor", &value);
    ctx.write(format!("flavor set to {value}"));
    Ok(())
}

/// `GET /cookie/get` → `flavor: mint`, or `no flavor` without the cookie.
fn get_flavor(ctx: &mut Context) -> Result<()> {
    match ctx.get_cookie("flavor") {
        Some(flavor) => ctx.write(format!("flavor: {flavor}")),
        None => ctx.write("no flavor"),
    }
    Ok(())
}

/// `GET /stream?n=3` sends `chunk 0\n`, `chunk 1\n`, `chunk 2\n`, each flushed
/// as its own chunk of a chunked response.
fn stream(ctx: &mut Context) -> Result<()> {
    let n: u32 = ctx
        .get_argument_or("n", "3")
        .parse()
        .map_err(|_| HttpError::new(400).with_reason("n must be a whole number"))?;
    for i in 0..n.min(MAX_CHUNKS) {
        ctx.write(format!("chunk {i}\n"));
        ctx.flush();
    }
    Ok(())
}

/// `POST /json` with a JSON object → the same object plus `"echoed": true`.
/// A body that is not a JSON object is a 400.
fn echo_json(ctx: &mut Context) -> Result<()> {
    let mut object: Map<String, Value> = ctx.request().body_json()?;
    object.insert("echoed".to_owned(), Value::Bool(true));
    ctx.write_json(&object);
    Ok(())
}

#[derive(Serialize)]
struct FormSummary {
    /// Each body field's last value.
    fields: BTreeMap<String, String>,
    files: Vec<FileSummary>,
}

#[derive(Serialize)]
struct FileSummary {
    field: String,
    filename: String,
    content_type: String,
    size: usize,
}

/// `POST /form` (urlencoded or multipart) → its fields and uploaded files as
/// JSON: `{"fields": {"name": "Ann"}, "files": [{"field": "doc", "filename":
/// "a.txt", "content_type": "text/plain", "size": 5}]}`.
fn describe_form(ctx: &mut Context) -> Result<()> {
    let mut fields = BTreeMap::new();
    for name in ctx.request().argument_names() {
        if let Some(value) = ctx.get_body_arguments(&name).pop() {
            fields.insert(name, value);
        }
    }
    let files = ctx
        .request()
        .files()
        .into_iter()
        .map(|file| FileSummary {
            size: file.body.len(),
            field: file.field,
            filename: file.filename,
            content_type: file.content_type,
        })
        .collect();
    ctx.write_json(&FormSummary { fields, files });
    Ok(())
}
