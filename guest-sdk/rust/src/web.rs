//! Tornado's web helpers on [`Context`]: signed cookies, XSRF tokens,
//! templates, URLs and the login guard. The host does the work (the
//! `cookie_secret` never reaches the guest); these wrap the `web` interface.

use serde::Serialize;

use crate::bindings::handler::waterspout::handler::web as raw_web;
use crate::context::{Context, CookieOptions};
use crate::error::{HttpError, Result};
use crate::websocket::WsContext;

/// Tornado's default `max_age_days` for signed cookies.
pub const MAX_AGE_DAYS: f64 = 31.0;

fn describe(error: raw_web::WebError) -> String {
    match error {
        raw_web::WebError::NoCookieSecret => "no [app] cookie_secret is set".to_owned(),
        raw_web::WebError::NoTemplatePath => "no [app] template_path is set".to_owned(),
        raw_web::WebError::Template(m) => format!("template error: {m}"),
        raw_web::WebError::Invalid(m) => m,
    }
}

fn signed_cookie(name: &str, max_age_days: f64) -> Option<String> {
    match raw_web::get_signed_cookie(name, max_age_days, None) {
        Ok(value) => value.and_then(|v| String::from_utf8(v).ok()),
        Err(e) => panic!("get_signed_cookie({name:?}): {}", describe(e)),
    }
}

impl Context<'_> {
    /// Tornado's `set_signed_cookie(name, value)`: signed and timestamped,
    /// kept 30 days.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// ctx.set_signed_cookie("user", "ada");
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the app has no `cookie_secret` (Tornado raises too).
    pub fn set_signed_cookie(&mut self, name: &str, value: &str) {
        self.set_signed_cookie_with(name, value, CookieOptions::new().max_age(30 * 86_400));
    }

    /// `set_signed_cookie` with cookie options (e.g. `max_age`, `secure`).
    pub fn set_signed_cookie_with(&mut self, name: &str, value: &str, options: CookieOptions) {
        let signed = self.create_signed_value(name, value);
        self.set_cookie_with(name, &signed, options);
    }

    /// Tornado's `create_signed_value(name, value)`.
    pub fn create_signed_value(&self, name: &str, value: &str) -> String {
        raw_web::create_signed_value(name, value.as_bytes())
            .unwrap_or_else(|e| panic!("create_signed_value({name:?}): {}", describe(e)))
    }

    /// Tornado's `get_signed_cookie(name)`: the value when the cookie is
    /// present, signed by this app for this name, and at most 31 days old.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) {
    /// let user = ctx.get_signed_cookie("user");
    /// # }
    /// ```
    pub fn get_signed_cookie(&self, name: &str) -> Option<String> {
        signed_cookie(name, MAX_AGE_DAYS)
    }

    /// `get_signed_cookie` with Tornado's `max_age_days`.
    pub fn get_signed_cookie_max_age(&self, name: &str, max_age_days: f64) -> Option<String> {
        signed_cookie(name, max_age_days)
    }

    /// Tornado's `decode_signed_value(name, value)`.
    pub fn decode_signed_value(&self, name: &str, value: &str) -> Option<String> {
        raw_web::decode_signed_value(name, value, MAX_AGE_DAYS, None)
            .unwrap_or_else(|e| panic!("decode_signed_value({name:?}): {}", describe(e)))
            .and_then(|v| String::from_utf8(v).ok())
    }

    /// Tornado's `xsrf_token`: this page's masked token (sets the `_xsrf`
    /// cookie when the visitor has none).
    pub fn xsrf_token(&mut self) -> String {
        raw_web::xsrf_token()
    }

    /// Tornado's `xsrf_form_html()`: the hidden `_xsrf` input for a form.
    pub fn xsrf_form_html(&mut self) -> String {
        raw_web::xsrf_form_html()
    }

    /// Tornado's `render_string(name, **kwargs)`: template `name` of the
    /// app's `template_path` with `context` (a struct or map that
    /// serializes to a JSON object). A template error is a 500.
    pub fn render_string(&mut self, name: &str, context: &impl Serialize) -> Result<String> {
        let json = serde_json::to_string(context)
            .map_err(|e| HttpError::new(500).with_log_message(format!("render({name:?}): {e}")))?;
        raw_web::render_string(name, &json)
            .map_err(|e| HttpError::new(500).with_log_message(format!("render({name:?}): {}", describe(e))))
    }

    /// Tornado's `render(name, **kwargs)`: renders, writes and finishes.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) -> waterspout_sdk::Result<()> {
    /// ctx.render("home.html", &serde_json::json!({ "title": "Home" }))?;
    /// # Ok(()) }
    /// ```
    pub fn render(&mut self, name: &str, context: &impl Serialize) -> Result<()> {
        let html = self.render_string(name, context)?;
        self.write(html);
        self.finish();
        Ok(())
    }

    /// Tornado's `reverse_url(name, *args)`: the path of the route named `name`.
    pub fn reverse_url(&self, name: &str, args: &[&str]) -> Option<String> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        raw_web::reverse_url(name, &args)
    }

    /// Tornado's `static_url(path)`.
    pub fn static_url(&self, path: &str) -> String {
        raw_web::static_url(path)
    }

    /// Tornado's `get_login_url()`: the app's `login_url`.
    pub fn get_login_url(&self) -> Option<String> {
        raw_web::login_url()
    }

    /// Tornado's `@authenticated`: runs `then` with the signed-in user;
    /// without one, a GET or HEAD is redirected to `login_url?next=URI`
    /// and anything else gets 403.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut waterspout_sdk::Context) -> waterspout_sdk::Result<()> {
    /// ctx.authenticated(ctx.get_signed_cookie("user"), |ctx, user| {
    ///     ctx.write(format!("hello {user}"));
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn authenticated<T>(
        &mut self,
        current_user: Option<T>,
        then: impl FnOnce(&mut Self, T) -> Result<()>,
    ) -> Result<()> {
        if let Some(user) = current_user {
            return then(self, user);
        }
        let method = self.request().method_name();
        if method == "GET" || method == "HEAD" {
            let Some(url) = self.get_login_url() else {
                return Err(HttpError::new(500).with_log_message("authenticated: no [app] login_url is set"));
            };
            let target = if url.contains('?') {
                url
            } else {
                // An absolute login_url gets an absolute next (Tornado).
                let next = if has_scheme(&url) {
                    self.request().full_url()
                } else {
                    self.request().uri()
                };
                let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
                format!("{url}?next={next}")
            };
            self.redirect(&target);
            return Ok(());
        }
        Err(HttpError::new(403))
    }
}

impl WsContext<'_> {
    /// Tornado's `get_signed_cookie(name)` during the handshake's request
    /// (e.g. the signed-in user in `open`).
    pub fn get_signed_cookie(&self, name: &str) -> Option<String> {
        signed_cookie(name, MAX_AGE_DAYS)
    }
}

/// Whether `url` starts with a scheme (`urlsplit(url).scheme` is not empty).
fn has_scheme(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
}
