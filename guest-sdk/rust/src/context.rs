//! The per-call view of a request handler: its input (the request, its
//! arguments) and its output (status, headers, body, cookies).

use std::fmt::Display;

use serde::Serialize;

use crate::bindings::{raw_response, raw_types};
use crate::error::{HttpError, Result};
use crate::log;
use crate::request::Request;
use crate::status::reason_phrase;

/// What a handler reads and writes during one call: Tornado's `RequestHandler`
/// methods that are not lifecycle hooks.
///
/// A new `Context` is made for every call the host makes (`prepare`, the verb,
/// `write_error`, `on_finish`); the response itself lives in the host, so what
/// one call writes the next one sees.
///
/// Errors follow Tornado: a mistake in the handler's own code (an invalid
/// status, a header value containing CR or LF, a redirect after flushing)
/// panics, which the host reports as a 500, as Tornado turns its `ValueError`
/// into one. Writing after the response is finished is ignored with a warning
/// in the log (Tornado raises there; a handler can check
/// [`is_finished`](Context::is_finished) first).
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct Greeter;
///
/// impl RequestHandler for Greeter {
///     fn get(&mut self, ctx: &mut Context) -> Result<()> {
///         let name = ctx.get_argument_or("name", "world");
///         ctx.set_header("Cache-Control", "no-store");
///         ctx.write(format!("Hello, {name}"));
///         Ok(())
///     }
/// }
/// export_handler!(Greeter);
/// ```
pub struct Context<'a> {
    request: Request<'a>,
    /// An error page queued by `send_error`, written once the current call returns.
    pending_error: Option<PendingError>,
    /// Set while `write_error` runs, so its writes go through.
    writing_error: bool,
}

/// An error response started by [`Context::send_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingError {
    pub(crate) status: u16,
    pub(crate) reason: String,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("pending_error", &self.pending_error)
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(request: &'a raw_types::Request) -> Self {
        Self {
            request: Request::new(request),
            pending_error: None,
            writing_error: false,
        }
    }

    /// Marks this context as the one `write_error` writes through.
    pub(crate) fn for_error_page(mut self) -> Self {
        self.writing_error = true;
        self
    }

    pub(crate) fn take_pending_error(&mut self) -> Option<PendingError> {
        self.pending_error.take()
    }

    /// Whether output is being dropped because `send_error` took over.
    fn error_queued(&self) -> bool {
        self.pending_error.is_some() && !self.writing_error
    }

    // ----- input -----

    /// The request being handled (Tornado's `self.request`).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let path = ctx.request().path();
    /// # }
    /// ```
    pub fn request(&self) -> &Request<'a> {
        &self.request
    }

    /// The last value of a query or body argument, stripped of surrounding
    /// whitespace, as Tornado's `get_argument(name)`.
    ///
    /// A missing argument is a 400 `Missing argument NAME` (Tornado's
    /// `MissingArgumentError`), so `?` turns it into the error page.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # fn f(ctx: &mut Context) -> Result<()> {
    /// let name = ctx.get_argument("name")?;
    /// ctx.write(format!("Hello, {name}"));
    /// # Ok(()) }
    /// ```
    pub fn get_argument(&self, name: &str) -> Result<String> {
        last_argument(self.request.arguments(name), name)
    }

    /// The last value of an argument, or `default` when it is missing.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let page = ctx.get_argument_or("page", "1");
    /// # }
    /// ```
    pub fn get_argument_or(&self, name: &str, default: &str) -> String {
        self.get_argument(name).unwrap_or_else(|_| default.to_owned())
    }

    /// Every value of an argument (query values first), each stripped.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let tags = ctx.get_arguments("tag"); // ?tag=a&tag=b → ["a", "b"]
    /// # }
    /// ```
    pub fn get_arguments(&self, name: &str) -> Vec<String> {
        clean_arguments(self.request.arguments(name))
    }

    /// The last value of a query-string argument (Tornado's `get_query_argument`).
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # fn f(ctx: &mut Context) -> Result<()> {
    /// let q = ctx.get_query_argument("q")?;
    /// # Ok(()) }
    /// ```
    pub fn get_query_argument(&self, name: &str) -> Result<String> {
        last_argument(self.request.query_arguments(name), name)
    }

    /// The last value of a query-string argument, or `default`.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let sort = ctx.get_query_argument_or("sort", "name");
    /// # }
    /// ```
    pub fn get_query_argument_or(&self, name: &str, default: &str) -> String {
        self.get_query_argument(name)
            .unwrap_or_else(|_| default.to_owned())
    }

    /// Every value of a query-string argument, each stripped.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let ids = ctx.get_query_arguments("id");
    /// # }
    /// ```
    pub fn get_query_arguments(&self, name: &str) -> Vec<String> {
        clean_arguments(self.request.query_arguments(name))
    }

    /// The last value of a body (form) argument (Tornado's `get_body_argument`).
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # fn f(ctx: &mut Context) -> Result<()> {
    /// let email = ctx.get_body_argument("email")?;
    /// # Ok(()) }
    /// ```
    pub fn get_body_argument(&self, name: &str) -> Result<String> {
        last_argument(self.request.body_arguments(name), name)
    }

    /// The last value of a body argument, or `default`.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let remember = ctx.get_body_argument_or("remember", "no");
    /// # }
    /// ```
    pub fn get_body_argument_or(&self, name: &str, default: &str) -> String {
        self.get_body_argument(name)
            .unwrap_or_else(|_| default.to_owned())
    }

    /// Every value of a body argument, each stripped.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let choices = ctx.get_body_arguments("choice");
    /// # }
    /// ```
    pub fn get_body_arguments(&self, name: &str) -> Vec<String> {
        clean_arguments(self.request.body_arguments(name))
    }

    /// The value of a cookie the client sent (Tornado's `get_cookie`).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let theme = ctx.get_cookie("theme").unwrap_or_else(|| "light".into());
    /// # }
    /// ```
    pub fn get_cookie(&self, name: &str) -> Option<String> {
        self.request.cookie(name)
    }

    /// The positional groups of the route's regex (Tornado's `*args` to the verb).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// // route "/items/([0-9]+)"
    /// let id: u64 = ctx.path_args()[0].parse().unwrap();
    /// # }
    /// ```
    pub fn path_args(&self) -> Vec<String> {
        self.request.path_args()
    }

    /// The named groups of the route's regex (Tornado's `**kwargs` to the verb).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// for (name, value) in ctx.path_kwargs() {
    ///     println!("{name} = {value}");
    /// }
    /// # }
    /// ```
    pub fn path_kwargs(&self) -> Vec<(String, String)> {
        self.request.path_kwargs()
    }

    /// One named group of the route's regex.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// // route "/users/(?P<name>[^/]+)"
    /// let user = ctx.path_kwarg("name").unwrap_or_default();
    /// # }
    /// ```
    pub fn path_kwarg(&self, name: &str) -> Option<String> {
        self.path_kwargs()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    // ----- output -----

    /// Sets the status with its standard reason phrase.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.set_status(201);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the host rejects the status (outside 100..=599).
    pub fn set_status(&mut self, status: u16) {
        if let Err(error) = raw_response::set_status(status, None) {
            panic!("set_status({status}): {error}");
        }
    }

    /// Sets the status with a custom reason phrase.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.set_status_with_reason(299, "Mostly Fine");
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the host rejects the status or the reason (e.g. one containing CR or LF).
    pub fn set_status_with_reason(&mut self, status: u16, reason: &str) {
        if let Err(error) = raw_response::set_status(status, Some(reason)) {
            panic!("set_status({status}, {reason:?}): {error}");
        }
    }

    /// The status set so far (200 unless changed).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let ok = ctx.get_status() < 400;
    /// # }
    /// ```
    pub fn get_status(&self) -> u16 {
        raw_response::get_status()
    }

    /// Sets a response header, replacing any earlier value.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.set_header("Content-Type", "text/plain; charset=UTF-8");
    /// ctx.set_header("X-Items", 3);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the name or value contains CR, LF or NUL (header injection).
    pub fn set_header(&mut self, name: &str, value: impl Display) {
        let value = value.to_string();
        if let Err(error) = raw_response::set_header(name, &value) {
            panic!("set_header({name:?}, {value:?}): {error}");
        }
    }

    /// Adds a value to a response header that may repeat.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.add_header("Link", "</a.css>; rel=preload");
    /// ctx.add_header("Link", "</b.js>; rel=preload");
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the name or value contains CR, LF or NUL.
    pub fn add_header(&mut self, name: &str, value: impl Display) {
        let value = value.to_string();
        if let Err(error) = raw_response::add_header(name, &value) {
            panic!("add_header({name:?}, {value:?}): {error}");
        }
    }

    /// Removes a response header (including the host's defaults, e.g. `Content-Type`).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.clear_header("Server");
    /// # }
    /// ```
    pub fn clear_header(&mut self, name: &str) {
        raw_response::clear_header(name);
    }

    /// Appends to the response body (a `&str`, `String`, `&[u8]` or `Vec<u8>`).
    ///
    /// Nothing is sent until [`flush`](Context::flush) or the end of the request.
    /// After [`finish`](Context::finish) the chunk is dropped with a warning in
    /// the log.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.write("Hello, ");
    /// ctx.write(b"world".as_slice());
    /// # }
    /// ```
    pub fn write(&mut self, chunk: impl AsRef<[u8]>) {
        if self.error_queued() {
            return;
        }
        if let Err(error) = raw_response::write(chunk.as_ref()) {
            log::warn(&format!("write() ignored: {error}"));
        }
    }

    /// Writes `value` as JSON with `Content-Type: application/json; charset=UTF-8`,
    /// as Tornado's `write(dict)`.
    ///
    /// Like Tornado's `json_encode`, `</` is escaped as `<\/` so the JSON is
    /// safe to embed in HTML.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.write_json(&serde_json::json!({"ok": true, "items": [1, 2]}));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When `value` cannot be serialized (e.g. a map with non-string keys).
    pub fn write_json(&mut self, value: &impl Serialize) {
        let json = to_json(value);
        self.set_header("Content-Type", "application/json; charset=UTF-8");
        self.write(json);
    }

    /// Sends the headers (the first time) and the body written so far, as one
    /// chunk of a streamed response; waits until the chunk is handed to the
    /// connection.
    ///
    /// A flush that fails (the response is finished, the client went away) is
    /// ignored with a warning; check [`is_finished`](Context::is_finished) to stop early.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// for i in 0..3 {
    ///     ctx.write(format!("chunk {i}\n"));
    ///     ctx.flush();
    /// }
    /// # }
    /// ```
    pub fn flush(&mut self) {
        if self.error_queued() {
            return;
        }
        if let Err(error) = raw_response::flush() {
            log::warn(&format!("flush() ignored: {error}"));
        }
    }

    /// Ends the response; later writes are dropped. Finishing in `prepare`
    /// skips the verb. The host finishes the response itself when the handler
    /// returns, so calling this is only needed to stop early.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.write("done");
    /// ctx.finish();
    /// # }
    /// ```
    pub fn finish(&mut self) {
        if self.error_queued() {
            return;
        }
        // Finishing twice is harmless here; Tornado raises, but nothing is lost.
        let _ = raw_response::finish();
    }

    /// Whether the response is finished (by `finish`, `redirect` or `send_error`).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// if !ctx.is_finished() {
    ///     ctx.write("more");
    /// }
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.error_queued() || raw_response::finished()
    }

    /// Resets the status, headers and body written so far (Tornado's `clear`).
    ///
    /// Once headers have been flushed there is nothing to reset: that is
    /// logged and ignored.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.write("draft");
    /// ctx.clear();
    /// ctx.write("final");
    /// # }
    /// ```
    pub fn clear(&mut self) {
        if let Err(error) = raw_response::clear() {
            log::warn(&format!("clear() ignored: {error}"));
        }
    }

    /// Redirects with a 302 and finishes the response.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.redirect("/login?next=%2Fadmin");
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When headers have already been flushed, as Tornado raises.
    pub fn redirect(&mut self, url: &str) {
        self.redirect_inner(url, None);
    }

    /// Redirects with a chosen 3xx status (e.g. 301 for permanent) and finishes.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.redirect_with_status("/new-home", 301);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When headers have already been flushed or `status` is not a 3xx.
    pub fn redirect_with_status(&mut self, url: &str, status: u16) {
        self.redirect_inner(url, Some(status));
    }

    fn redirect_inner(&mut self, url: &str, status: Option<u16>) {
        if self.error_queued() {
            return;
        }
        if let Err(error) = raw_response::redirect(url, status) {
            panic!("redirect({url:?}): {error}");
        }
    }

    /// Sets a cookie with Tornado's defaults (`Path=/`, a session cookie).
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.set_cookie("flavor", "chocolate");
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the name or value is not valid in a cookie.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.set_cookie_with(name, value, CookieOptions::default());
    }

    /// Sets a cookie with options (domain, path, max age, flags).
    ///
    /// ```no_run
    /// use waterspout_sdk::CookieOptions;
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.set_cookie_with(
    ///     "session",
    ///     "abc123",
    ///     CookieOptions::new().max_age(3600).http_only(true).secure(true).same_site("Lax"),
    /// );
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the name, value or an option is not valid in a cookie.
    pub fn set_cookie_with(&mut self, name: &str, value: &str, options: CookieOptions) {
        if let Err(error) = raw_response::set_cookie(name, value, &options.into_raw()) {
            panic!("set_cookie({name:?}): {error}");
        }
    }

    /// Deletes a cookie (at `Path=/`) by sending it expired.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.clear_cookie("session");
    /// # }
    /// ```
    pub fn clear_cookie(&mut self, name: &str) {
        raw_response::clear_cookie(name, Some("/"), None);
    }

    /// Replaces the response with an error page, as Tornado's `send_error(status)`.
    ///
    /// The response is cleared and the status set now; once the current method
    /// returns, the handler's `write_error` writes the page and the response
    /// is finished. Until then, writes are dropped. When headers were already
    /// flushed, the response can only be finished (and that is logged).
    ///
    /// Returning `Err(HttpError::new(status))` does the same; `send_error` is
    /// for handlers that want to carry on after choosing the error.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # fn f(ctx: &mut Context) -> Result<()> {
    /// if ctx.get_cookie("user").is_none() {
    ///     ctx.send_error(403);
    ///     return Ok(());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn send_error(&mut self, status: u16) {
        self.send_error_with_reason(status, reason_phrase(status));
    }

    /// [`send_error`](Context::send_error) with a custom reason phrase.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.send_error_with_reason(503, "Down For Maintenance");
    /// # }
    /// ```
    pub fn send_error_with_reason(&mut self, status: u16, reason: &str) {
        if self.pending_error.is_some() || self.writing_error {
            return;
        }
        if raw_response::clear().is_err() {
            log::error(&format!(
                "cannot send error {status} after headers were flushed; finishing the response"
            ));
            let _ = raw_response::finish();
            return;
        }
        self.set_status_with_reason(status, reason);
        self.pending_error = Some(PendingError {
            status,
            reason: reason.to_owned(),
        });
    }
}

/// Options of [`Context::set_cookie_with`], as Tornado's `set_cookie` keywords.
///
/// The default is Tornado's: `Path=/`, no domain, a session cookie, no flags.
///
/// ```
/// use waterspout_sdk::CookieOptions;
///
/// let options = CookieOptions::new()
///     .domain("example.com")
///     .path("/app")
///     .max_age(86_400)
///     .secure(true)
///     .http_only(true)
///     .same_site("Strict");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieOptions {
    domain: Option<String>,
    path: Option<String>,
    max_age: Option<i64>,
    secure: bool,
    http_only: bool,
    same_site: Option<String>,
}

impl Default for CookieOptions {
    fn default() -> Self {
        Self {
            domain: None,
            path: Some("/".to_owned()),
            max_age: None,
            secure: false,
            http_only: false,
            same_site: None,
        }
    }
}

impl CookieOptions {
    /// Tornado's defaults: `Path=/`, a session cookie.
    ///
    /// ```
    /// let options = waterspout_sdk::CookieOptions::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The `Domain` attribute.
    ///
    /// ```
    /// let options = waterspout_sdk::CookieOptions::new().domain("example.com");
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The `Path` attribute (default `/`).
    ///
    /// ```
    /// let options = waterspout_sdk::CookieOptions::new().path("/admin");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Lifetime in seconds: becomes `Max-Age` and `Expires`.
    ///
    /// ```
    /// let options = waterspout_sdk::CookieOptions::new().max_age(30 * 24 * 3600);
    /// ```
    pub fn max_age(mut self, seconds: i64) -> Self {
        self.max_age = Some(seconds);
        self
    }

    /// The `Secure` flag: only sent over https.
    ///
    /// ```
    /// let options = waterspout_sdk::CookieOptions::new().secure(true);
    /// ```
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The `HttpOnly` flag: hidden from scripts.
    ///
    /// ```
    /// let options = waterspout_sdk::CookieOptions::new().http_only(true);
    /// ```
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The `SameSite` attribute: `"Strict"`, `"Lax"` or `"None"`.
    ///
    /// ```
    /// let options = waterspout_sdk::CookieOptions::new().same_site("Lax");
    /// ```
    pub fn same_site(mut self, same_site: impl Into<String>) -> Self {
        self.same_site = Some(same_site.into());
        self
    }

    fn into_raw(self) -> raw_response::CookieOptions {
        raw_response::CookieOptions {
            domain: self.domain,
            path: self.path,
            max_age: self.max_age,
            secure: self.secure,
            http_only: self.http_only,
            same_site: self.same_site,
        }
    }
}

/// The last value of an argument, cleaned, or Tornado's `MissingArgumentError`.
fn last_argument(values: Vec<String>, name: &str) -> Result<String> {
    values
        .into_iter()
        .next_back()
        .map(|value| clean_argument(&value))
        .ok_or_else(|| HttpError::missing_argument(name))
}

fn clean_arguments(values: Vec<String>) -> Vec<String> {
    values.iter().map(|value| clean_argument(value)).collect()
}

/// Tornado's argument cleaning: control characters (other than tab, newline
/// and the like) become spaces, then surrounding whitespace is stripped.
fn clean_argument(value: &str) -> String {
    let replaced: String = value
        .chars()
        .map(|c| {
            if matches!(c, '\x00'..='\x08' | '\x0e'..='\x1f') {
                ' '
            } else {
                c
            }
        })
        .collect();
    replaced.trim().to_owned()
}

/// JSON as Tornado's `json_encode`: `</` escaped so it cannot close a `<script>`.
fn to_json(value: &impl Serialize) -> String {
    match serde_json::to_string(value) {
        Ok(json) => json.replace("</", "<\\/"),
        Err(error) => panic!("write_json: cannot serialize the value: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_stripped_and_cleaned() {
        assert_eq!(clean_argument("  Ann \n"), "Ann");
        assert_eq!(clean_argument("a\x01b"), "a b");
        assert_eq!(clean_argument("tab\tstays"), "tab\tstays");
    }

    #[test]
    fn last_value_wins() {
        let values = vec!["first".to_owned(), " second ".to_owned()];
        assert_eq!(last_argument(values, "x"), Ok("second".to_owned()));
    }

    #[test]
    fn missing_argument_is_400() {
        let error = last_argument(Vec::new(), "name").unwrap_err();
        assert_eq!(error.status, 400);
        assert_eq!(error.reason.as_deref(), Some("Missing argument name"));
    }

    #[test]
    fn json_escapes_closing_tags() {
        assert_eq!(
            to_json(&serde_json::json!({"html": "</script>"})),
            r#"{"html":"<\/script>"}"#
        );
    }

    #[test]
    fn cookie_defaults_match_tornado() {
        let raw = CookieOptions::default().into_raw();
        assert_eq!(raw.path.as_deref(), Some("/"));
        assert_eq!(raw.domain, None);
        assert!(!raw.secure && !raw.http_only);
    }
}
