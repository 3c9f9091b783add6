//! Capability `web` (WIT interface `web`): signed cookies, XSRF tokens,
//! templates and URLs, over the app's [`Web`] settings. Its context holds
//! the request's cookies (so WebSocket handlers read signed cookies too) and
//! this response's XSRF token; the XSRF cookie is set through the response
//! under construction, when there is one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderValue;
use minijinja::Value;
use wasmtime::component::{HasData, Linker};

use crate::capabilities::bindings::web::{self, WebError};
use crate::capabilities::response::ResponseCtx;
use crate::router::Router;
use crate::services::web::{Web, now, now_f64, xsrf};
use crate::statics::Statics;

/// The web capability's per-instance context.
#[derive(Default)]
pub struct WebCtx {
    web: Arc<Web>,
    /// The routes active when the request arrived (`reverse_url`).
    router: Arc<Router>,
    /// The app's `static_path` (`static_url` with its `?v=` hash).
    statics: Option<Arc<Statics>>,
    /// The request's `Cookie` headers, parsed when asked.
    cookie_headers: Vec<HeaderValue>,
    /// The raw token under this response's XSRF token, and whether the
    /// cookie must still be set (the request had none usable).
    raw_xsrf: Option<(xsrf::RawToken, bool)>,
    /// Tornado caches `xsrf_token` per handler: one mask per response.
    xsrf_token: Option<String>,
}

impl WebCtx {
    pub fn new(
        web: Arc<Web>,
        router: Arc<Router>,
        statics: Option<Arc<Statics>>,
        cookie_headers: Vec<HeaderValue>,
    ) -> Self {
        WebCtx {
            web,
            router,
            statics,
            cookie_headers,
            raw_xsrf: None,
            xsrf_token: None,
        }
    }

    /// The request's cookie `name` (the first one), as Tornado's `get_cookie`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookie_headers
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(cookie::Cookie::split_parse_encoded)
            .filter_map(Result::ok)
            .find(|c| c.name() == name)
            .map(|c| crate::text::cookie_unquote(c.value()))
    }

    /// Tornado's `_get_raw_xsrf_token`: the cookie's token, or a new one.
    fn raw_xsrf(&mut self) -> &(xsrf::RawToken, bool) {
        if self.raw_xsrf.is_none() {
            let cookie = self.cookie(&self.web.xsrf.cookie_name);
            let decoded = cookie
                .filter(|c| !c.is_empty())
                .and_then(|c| xsrf::decode_token(&c, now()))
                .filter(|t| !t.token.is_empty());
            self.raw_xsrf = Some(match decoded {
                Some(token) => (token, false),
                None => (xsrf::new_raw_token(now()), true),
            });
        }
        self.raw_xsrf.as_ref().expect("just set")
    }

    /// This response's token, without setting the cookie.
    fn xsrf_candidate(&mut self) -> String {
        if let Some(token) = &self.xsrf_token {
            return token.clone();
        }
        let version = self.web.xsrf.version;
        let (raw, _) = self.raw_xsrf();
        xsrf::encode_token(raw, version, xsrf::random_mask())
    }

    /// Tornado's `xsrf_token`: the token, cached; the cookie set when the
    /// request had none.
    fn xsrf_token(&mut self, response: &mut ResponseCtx) -> String {
        let token = self.xsrf_candidate();
        self.commit_xsrf(token.clone(), response);
        token
    }

    fn commit_xsrf(&mut self, token: String, response: &mut ResponseCtx) {
        if self.xsrf_token.is_some() {
            return;
        }
        self.xsrf_token = Some(token.clone());
        let needs_cookie = self.raw_xsrf.as_ref().is_some_and(|(_, needed)| *needed);
        if !needs_cookie {
            return;
        }
        let Some(response) = response.get() else {
            return;
        };
        let kwargs = &self.web.xsrf.cookie;
        let mut cookie = cookie::Cookie::new(self.web.xsrf.cookie_name.clone(), token);
        cookie.set_path(kwargs.path.clone().unwrap_or_else(|| "/".to_owned()));
        if let Some(domain) = &kwargs.domain {
            cookie.set_domain(domain.clone());
        }
        if let Some(days) = kwargs.expires_days {
            cookie.set_max_age(cookie::time::Duration::seconds((days * 86400.0) as i64));
        }
        // A `__Host-` or `__Secure-` cookie is only kept by browsers when Secure.
        let name = &self.web.xsrf.cookie_name;
        let secure = kwargs.secure || name.starts_with("__Host-") || name.starts_with("__Secure-");
        cookie.set_secure(secure.then_some(true));
        cookie.set_http_only(kwargs.httponly.then_some(true));
        match kwargs.samesite.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("strict") => cookie.set_same_site(cookie::SameSite::Strict),
            Some("lax") => cookie.set_same_site(cookie::SameSite::Lax),
            Some("none") => cookie.set_same_site(cookie::SameSite::None),
            _ => {}
        }
        if let Err(e) = response.set_cookie(cookie) {
            tracing::warn!("cannot set the XSRF cookie: {e}");
        }
    }

    fn form_html(token: &str) -> String {
        format!(
            r#"<input type="hidden" name="_xsrf" value="{}"/>"#,
            crate::text::html_escape(token)
        )
    }

    /// Tornado's `static_url`: under the app's `static_url_prefix`, with the
    /// file's content hash as `?v=` (`/static/PATH` when there is no `static_path`).
    fn static_url(statics: Option<&Statics>, path: &str) -> String {
        match statics {
            Some(statics) => statics.static_url(path),
            None => format!("/static/{}", path.trim_start_matches('/')),
        }
    }

    /// Renders `name`: the guest's JSON context plus the page helpers.
    fn render(&mut self, response: &mut ResponseCtx, name: &str, context: &str) -> Result<String, WebError> {
        let web = self.web.clone();
        let Some(templates) = web.templates() else {
            return Err(WebError::NoTemplatePath);
        };
        let context: serde_json::Value = serde_json::from_str(context)
            .map_err(|e| WebError::Invalid(format!("context is not JSON: {e}")))?;
        if !context.is_object() {
            return Err(WebError::Invalid("the context must be a JSON object".to_owned()));
        }
        // The token is made now but only committed (cached, cookie set) if
        // the template used it, as Tornado's lazy `xsrf_form_html`.
        let token = self.xsrf_candidate();
        let used = Arc::new(AtomicBool::new(false));
        let form_html = {
            let (token, used) = (token.clone(), used.clone());
            Value::from_function(move || {
                used.store(true, Ordering::Relaxed);
                Value::from_safe_string(Self::form_html(&token))
            })
        };
        let router = self.router.clone();
        let reverse_url = Value::from_function(move |name: String, args: minijinja::value::Rest<String>| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            // A URL: escaped as HTML (`&`, quotes) but not minijinja's `/` → `&#x2f;`.
            let url = router
                .reverse(&name, &args)
                .map(|u| Value::from_safe_string(crate::text::html_escape(&u)));
            url.ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("reverse_url: no route named {name:?} (or wrong arguments)"),
                )
            })
        });
        let statics = self.statics.clone();
        let static_url = Value::from_function(move |path: String| {
            Value::from_safe_string(crate::text::html_escape(&Self::static_url(
                statics.as_deref(),
                &path,
            )))
        });
        let context = minijinja::context! {
            xsrf_form_html => form_html,
            reverse_url => reverse_url,
            static_url => static_url,
            ..Value::from_serialize(&context)
        };
        let rendered = templates.render(name, context).map_err(|e| {
            tracing::error!(target: "waterspout::template", "template error: {e}");
            WebError::Template(e.to_string())
        });
        if used.load(Ordering::Relaxed) {
            self.commit_xsrf(token, response);
        }
        rendered
    }
}

/// What the web capability reaches in a store: its context and the response.
pub struct WebView<'a> {
    pub web: &'a mut WebCtx,
    pub response: &'a mut ResponseCtx,
}

struct HasWeb;

impl HasData for HasWeb {
    type Data<'a> = WebView<'a>;
}

/// Links interface `web`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> WebView<'_>,
) -> wasmtime::Result<()> {
    web::add_to_linker::<T, HasWeb>(linker, get)
}

impl web::Host for WebView<'_> {
    async fn create_signed_value(
        &mut self,
        name: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<String, WebError>> {
        let Some(secret) = self.web.web.secret() else {
            return Ok(Err(WebError::NoCookieSecret));
        };
        Ok(Ok(crate::services::web::signed::create_signed_value(
            secret,
            &name,
            &value,
            now(),
        )))
    }

    async fn decode_signed_value(
        &mut self,
        name: String,
        value: String,
        max_age_days: f64,
        min_version: Option<u32>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, WebError>> {
        let Some(secret) = self.web.web.secret() else {
            return Ok(Err(WebError::NoCookieSecret));
        };
        Ok(Ok(crate::services::web::signed::decode_signed_value(
            secret,
            &name,
            &value,
            max_age_days,
            min_version.unwrap_or(1),
            now_f64(),
        )))
    }

    async fn get_signed_cookie(
        &mut self,
        name: String,
        max_age_days: f64,
        min_version: Option<u32>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, WebError>> {
        let Some(secret) = self.web.web.secret() else {
            return Ok(Err(WebError::NoCookieSecret));
        };
        let Some(value) = self.web.cookie(&name) else {
            return Ok(Ok(None));
        };
        Ok(Ok(crate::services::web::signed::decode_signed_value(
            secret,
            &name,
            &value,
            max_age_days,
            min_version.unwrap_or(1),
            now_f64(),
        )))
    }

    async fn xsrf_token(&mut self) -> wasmtime::Result<String> {
        Ok(self.web.xsrf_token(self.response))
    }

    async fn xsrf_form_html(&mut self) -> wasmtime::Result<String> {
        let token = self.web.xsrf_token(self.response);
        Ok(WebCtx::form_html(&token))
    }

    async fn render_string(
        &mut self,
        name: String,
        context_json: String,
    ) -> wasmtime::Result<Result<String, WebError>> {
        Ok(self.web.render(self.response, &name, &context_json))
    }

    async fn reverse_url(&mut self, name: String, args: Vec<String>) -> wasmtime::Result<Option<String>> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(self.web.router.reverse(&name, &args))
    }

    async fn static_url(&mut self, path: String) -> wasmtime::Result<String> {
        Ok(WebCtx::static_url(self.web.statics.as_deref(), &path))
    }

    async fn login_url(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.web.web.login_url().map(str::to_owned))
    }
}
