//! The request being handled: Tornado's `HTTPServerRequest`.

use serde::de::DeserializeOwned;

use crate::bindings::raw_types;
use crate::error::{HttpError, Result};

/// The HTTP method of a request.
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
/// use waterspout_sdk::Method;
///
/// fn describe(ctx: &mut Context) {
///     if ctx.request().method() == Method::Other {
///         let name = ctx.request().method_name();
///         ctx.write(format!("extension method {name}"));
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `OPTIONS`
    Options,
    /// Any extension method; see [`Request::method_name`].
    Other,
}

impl From<raw_types::Method> for Method {
    fn from(raw: raw_types::Method) -> Self {
        match raw {
            raw_types::Method::Get => Self::Get,
            raw_types::Method::Head => Self::Head,
            raw_types::Method::Post => Self::Post,
            raw_types::Method::Put => Self::Put,
            raw_types::Method::Delete => Self::Delete,
            raw_types::Method::Patch => Self::Patch,
            raw_types::Method::Options => Self::Options,
            raw_types::Method::Other => Self::Other,
        }
    }
}

/// A file uploaded in a `multipart/form-data` body (Tornado's `request.files[field]`).
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// fn sizes(ctx: &mut Context) {
///     for file in ctx.request().files() {
///         ctx.write(format!("{} ({}): {} bytes\n", file.filename, file.field, file.body.len()));
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field the file was sent under.
    pub field: String,
    /// The file name the client gave.
    pub filename: String,
    /// The part's `Content-Type`.
    pub content_type: String,
    /// The file's bytes.
    pub body: Vec<u8>,
}

impl From<raw_types::UploadedFile> for UploadedFile {
    fn from(raw: raw_types::UploadedFile) -> Self {
        Self {
            field: raw.field,
            filename: raw.filename,
            content_type: raw.content_type,
            body: raw.body,
        }
    }
}

/// The request being handled, as Tornado's `self.request`.
///
/// Every call asks the host, which already parsed the request line, headers,
/// cookies and body (form-urlencoded and multipart). Prefer the `get_argument`
/// family on [`Context`](crate::Context) for arguments: those strip and clean
/// values as Tornado does; the methods here give them raw.
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// fn show(ctx: &mut Context) {
///     let req = ctx.request();
///     let line = format!("{} {} {} from {}", req.method_name(), req.uri(), req.version(), req.remote_ip());
///     ctx.write(line);
/// }
/// ```
#[derive(Clone, Copy)]
pub struct Request<'a> {
    raw: &'a raw_types::Request,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").finish_non_exhaustive()
    }
}

impl<'a> Request<'a> {
    pub(crate) fn new(raw: &'a raw_types::Request) -> Self {
        Self { raw }
    }

    /// The method, e.g. [`Method::Get`].
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// if req.method() == waterspout_sdk::Method::Post { /* ... */ }
    /// # }
    /// ```
    pub fn method(&self) -> Method {
        self.raw.method().into()
    }

    /// The method as sent, e.g. `"GET"` or `"PROPFIND"`.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// assert_eq!(req.method_name(), "GET");
    /// # }
    /// ```
    pub fn method_name(&self) -> String {
        self.raw.method_name()
    }

    /// The full request target: path and query, e.g. `"/greet?name=Ann"`.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let uri = req.uri();
    /// # }
    /// ```
    pub fn uri(&self) -> String {
        self.raw.uri()
    }

    /// The path, e.g. `"/greet"`.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// if req.path().starts_with("/admin/") { /* ... */ }
    /// # }
    /// ```
    pub fn path(&self) -> String {
        self.raw.path()
    }

    /// The query string without the `?`, e.g. `"name=Ann"`.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let has_query = !req.query().is_empty();
    /// # }
    /// ```
    pub fn query(&self) -> String {
        self.raw.query()
    }

    /// The HTTP version: `"HTTP/1.1"` or `"HTTP/2.0"`.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let version = req.version();
    /// # }
    /// ```
    pub fn version(&self) -> String {
        self.raw.version()
    }

    /// The `Host` the client asked for.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let host = req.host();
    /// # }
    /// ```
    pub fn host(&self) -> String {
        self.raw.host()
    }

    /// The client's IP address.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let ip = req.remote_ip();
    /// # }
    /// ```
    pub fn remote_ip(&self) -> String {
        self.raw.remote_ip()
    }

    /// `"http"` or `"https"`.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let secure = req.protocol() == "https";
    /// # }
    /// ```
    pub fn protocol(&self) -> String {
        self.raw.protocol()
    }

    /// Tornado's `full_url()`: protocol, host and uri.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let here = req.full_url(); // "https://example.com/path?q=1"
    /// # }
    /// ```
    pub fn full_url(&self) -> String {
        format!("{}://{}{}", self.protocol(), self.host(), self.uri())
    }

    /// Every header as sent, in order; names in lower case.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// for (name, value) in req.headers() {
    ///     println!("{name}: {value}");
    /// }
    /// # }
    /// ```
    pub fn headers(&self) -> Vec<(String, String)> {
        self.raw.headers()
    }

    /// The first value of a header; the name is case-insensitive.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let agent = req.header("User-Agent").unwrap_or_default();
    /// # }
    /// ```
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw.header(name)
    }

    /// Every cookie the client sent, as `(name, value)`.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let names: Vec<String> = req.cookies().into_iter().map(|(name, _)| name).collect();
    /// # }
    /// ```
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.raw.cookies()
    }

    /// The value of one cookie.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let session = req.cookie("session");
    /// # }
    /// ```
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.raw.cookie(name)
    }

    /// The raw request body.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let size = req.body().len();
    /// # }
    /// ```
    pub fn body(&self) -> Vec<u8> {
        self.raw.body()
    }

    /// The body decoded as JSON into `T`.
    ///
    /// A body that is not valid JSON for `T` is the client's fault: the error
    /// is a 400 whose log message says what was wrong.
    ///
    /// ```no_run
    /// use waterspout_sdk::prelude::*;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Order { item: String, count: u32 }
    ///
    /// fn order(ctx: &mut Context) -> Result<()> {
    ///     let order: Order = ctx.request().body_json()?;
    ///     ctx.write(format!("{} x {}", order.count, order.item));
    ///     Ok(())
    /// }
    /// ```
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body())
            .map_err(|error| HttpError::new(400).with_log_message(format!("invalid JSON body: {error}")))
    }

    /// Every value of a query or body argument, query values first, unstripped.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let tags = req.arguments("tag");
    /// # }
    /// ```
    pub fn arguments(&self, name: &str) -> Vec<String> {
        self.raw.arguments(name)
    }

    /// Every value of a query-string argument, unstripped.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let pages = req.query_arguments("page");
    /// # }
    /// ```
    pub fn query_arguments(&self, name: &str) -> Vec<String> {
        self.raw.query_arguments(name)
    }

    /// Every value of a body (form) argument, unstripped.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let names = req.body_arguments("name");
    /// # }
    /// ```
    pub fn body_arguments(&self, name: &str) -> Vec<String> {
        self.raw.body_arguments(name)
    }

    /// The names of all query and body arguments, each once.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// for name in req.argument_names() {
    ///     println!("{name} = {:?}", req.arguments(&name));
    /// }
    /// # }
    /// ```
    pub fn argument_names(&self) -> Vec<String> {
        self.raw.argument_names()
    }

    /// The files of a `multipart/form-data` body.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// let total: usize = req.files().iter().map(|file| file.body.len()).sum();
    /// # }
    /// ```
    pub fn files(&self) -> Vec<UploadedFile> {
        self.raw.files().into_iter().map(Into::into).collect()
    }

    /// The positional groups of the route's regex, url-decoded.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// // route "/items/([0-9]+)", request "/items/42"
    /// assert_eq!(req.path_args(), ["42"]);
    /// # }
    /// ```
    pub fn path_args(&self) -> Vec<String> {
        self.raw.path_args()
    }

    /// The named groups of the route's regex, url-decoded.
    ///
    /// ```no_run
    /// # fn f(req: &waterspout_sdk::Request) {
    /// // route "/users/(?P<name>[^/]+)", request "/users/ann"
    /// assert_eq!(req.path_kwargs(), [("name".to_string(), "ann".to_string())]);
    /// # }
    /// ```
    pub fn path_kwargs(&self) -> Vec<(String, String)> {
        self.raw.path_kwargs()
    }
}
