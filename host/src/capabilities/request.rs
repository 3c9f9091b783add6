//! Capability `request` (WIT interface `types`, resource `request`): the
//! request a handler sees, parsed once by the host before the guest runs and
//! read lazily by the guest one field at a time. The requests live in the
//! instance's resource table; the guest only ever borrows them.

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderMap, Method};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::capabilities::bindings::{UploadedFile, WitMethod, types};

/// One HTTP request, with its arguments and uploads already parsed.
#[derive(Debug, Clone)]
pub struct RequestData {
    pub method: Method,
    pub uri: http::Uri,
    pub version: &'static str,
    pub remote_ip: IpAddr,
    pub protocol: &'static str,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub query_arguments: Vec<(String, String)>,
    pub body_arguments: Vec<(String, String)>,
    pub files: Vec<UploadedFile>,
    pub path_args: Vec<String>,
    pub path_kwargs: Vec<(String, String)>,
}

/// An empty `GET /` over HTTP/1.1 from 127.0.0.1 (for tests and fuzzing).
impl Default for RequestData {
    fn default() -> Self {
        RequestData {
            method: Method::GET,
            uri: http::Uri::default(),
            version: "HTTP/1.1",
            remote_ip: IpAddr::from([127, 0, 0, 1]),
            protocol: "http",
            headers: HeaderMap::new(),
            body: Bytes::new(),
            query_arguments: Vec::new(),
            body_arguments: Vec::new(),
            files: Vec::new(),
            path_args: Vec::new(),
            path_kwargs: Vec::new(),
        }
    }
}

/// Why a body could not be parsed (Tornado answers these with 400).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("malformed multipart/form-data body: {0}")]
    Multipart(String),
    #[error("multipart/form-data without a boundary")]
    MissingBoundary,
}

impl RequestData {
    /// Builds the request from hyper's parts; `path` is already percent-decoded
    /// by the router only for groups, the path itself stays as sent.
    pub fn new(
        parts: http::request::Parts,
        body: Bytes,
        remote_ip: IpAddr,
        path_args: Vec<String>,
        path_kwargs: Vec<(String, String)>,
    ) -> Self {
        let query_arguments = parse_urlencoded(parts.uri.query().unwrap_or("").as_bytes());
        let version = match parts.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        };
        // `https` over TLS, or as a trusted proxy said (`xheaders`): the
        // server decided it.
        let protocol = parts
            .extensions
            .get::<crate::client::Client>()
            .map_or("http", |client| client.protocol);
        // The parts are moved in, not copied: the strings the guest asks for
        // are made when it asks.
        RequestData {
            method: parts.method,
            uri: parts.uri,
            version,
            remote_ip,
            protocol,
            headers: parts.headers,
            body,
            query_arguments,
            body_arguments: Vec::new(),
            files: Vec::new(),
            path_args,
            path_kwargs,
        }
    }

    /// The full request target: path and query.
    pub fn target(&self) -> &str {
        self.uri.path_and_query().map_or("/", |pq| pq.as_str())
    }

    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query string without the `?`.
    pub fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// The `Host` header, else the target's authority, else "127.0.0.1".
    pub fn host(&self) -> String {
        self.headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| self.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "127.0.0.1".to_owned())
    }

    /// The request's head and body in bytes of their own. hyper parses a
    /// request in place: its URI, its header values and a small body are
    /// slices of the connection's read buffer (8 KiB), and whatever keeps
    /// them keeps that buffer while hyper reads on into a new one. A long
    /// poll keeps its data for as long as it waits: copies, a few hundred
    /// bytes, instead.
    pub fn detach(&mut self) {
        self.uri = crate::head::detached_uri(&self.uri);
        self.headers = crate::head::detached_headers(&self.headers);
        // A body that came in one chunk is a slice of hyper's buffer; one
        // collected from several is a buffer of its own already (an upload
        // is not copied again).
        if !self.body.is_unique() {
            self.body = Bytes::copy_from_slice(&self.body);
        }
    }

    /// Parses form-urlencoded and multipart bodies into `body_arguments` and
    /// `files`, as Tornado's `parse_body_arguments` does.
    pub async fn parse_body(&mut self) -> Result<(), BodyError> {
        if self.body.is_empty() {
            return Ok(());
        }
        let Some(content_type) = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(());
        };
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-www-form-urlencoded" => {
                self.body_arguments = parse_urlencoded(&self.body);
                Ok(())
            }
            "multipart/form-data" => {
                let boundary =
                    multer::parse_boundary(content_type).map_err(|_| BodyError::MissingBoundary)?;
                let body = self.body.clone();
                let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
                let mut multipart = multer::Multipart::new(stream, boundary);
                loop {
                    let field = multipart
                        .next_field()
                        .await
                        .map_err(|e| BodyError::Multipart(e.to_string()))?;
                    let Some(field) = field else { break };
                    let name = field.name().unwrap_or("").to_owned();
                    let filename = field.file_name().map(str::to_owned);
                    let content_type = field
                        .content_type()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "application/unknown".to_owned());
                    let data = field
                        .bytes()
                        .await
                        .map_err(|e| BodyError::Multipart(e.to_string()))?;
                    match filename {
                        Some(filename) => self.files.push(UploadedFile {
                            field: name,
                            filename,
                            content_type,
                            body: data.to_vec(),
                        }),
                        None => self
                            .body_arguments
                            .push((name, String::from_utf8_lossy(&data).into_owned())),
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub fn wit_method(&self) -> WitMethod {
        wit_method(&self.method)
    }

    /// Every header as (lower-case name, value); values that are not UTF-8
    /// are decoded lossily.
    pub fn header_list(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// Cookies from every `Cookie` header, parsed leniently like Tornado.
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(cookie::Cookie::split_parse_encoded)
            .filter_map(Result::ok)
            .map(|c| (c.name().to_owned(), crate::text::cookie_unquote(c.value())))
            .collect()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn query_values(&self, name: &str) -> Vec<String> {
        values(&self.query_arguments, name)
    }

    pub fn body_values(&self, name: &str) -> Vec<String> {
        values(&self.body_arguments, name)
    }

    pub fn argument_values(&self, name: &str) -> Vec<String> {
        let mut all = self.query_values(name);
        all.extend(self.body_values(name));
        all
    }

    pub fn argument_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (k, _) in self.query_arguments.iter().chain(&self.body_arguments) {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        names
    }
}

fn values(args: &[(String, String)], name: &str) -> Vec<String> {
    args.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// Parses `a=1&b=2`; like Tornado, blank values are kept.
pub fn parse_urlencoded(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input).into_owned().collect()
}

/// The request capability's view of an instance: its resource table.
pub struct RequestView<'a>(pub &'a mut ResourceTable);

impl RequestView<'_> {
    fn request(&self, r: &Resource<RequestData>) -> wasmtime::Result<&RequestData> {
        Ok(self.0.get(r)?)
    }
}

struct HasRequest;

impl HasData for HasRequest {
    type Data<'a> = RequestView<'a>;
}

/// Links interface `types` (the request resource).
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> RequestView<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasRequest>(linker, get)
}

impl types::Host for RequestView<'_> {}

impl types::HostRequest for RequestView<'_> {
    async fn method(&mut self, r: Resource<RequestData>) -> wasmtime::Result<WitMethod> {
        Ok(self.request(&r)?.wit_method())
    }
    async fn method_name(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.method.as_str().to_owned())
    }
    async fn uri(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.target().to_owned())
    }
    async fn path(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.path().to_owned())
    }
    async fn query(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.query().to_owned())
    }
    async fn version(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.version.to_owned())
    }
    async fn host(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.host())
    }
    async fn remote_ip(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.remote_ip.to_string())
    }
    async fn protocol(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.protocol.to_owned())
    }
    async fn headers(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.request(&r)?.header_list())
    }
    async fn header(&mut self, r: Resource<RequestData>, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&r)?.header(&name))
    }
    async fn cookies(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.request(&r)?.cookies())
    }
    async fn cookie(&mut self, r: Resource<RequestData>, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&r)?.cookie(&name))
    }
    async fn body(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.request(&r)?.body.to_vec())
    }
    async fn arguments(&mut self, r: Resource<RequestData>, name: String) -> wasmtime::Result<Vec<String>> {
        Ok(self.request(&r)?.argument_values(&name))
    }
    async fn query_arguments(
        &mut self,
        r: Resource<RequestData>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(self.request(&r)?.query_values(&name))
    }
    async fn body_arguments(
        &mut self,
        r: Resource<RequestData>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(self.request(&r)?.body_values(&name))
    }
    async fn argument_names(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Vec<String>> {
        Ok(self.request(&r)?.argument_names())
    }
    async fn files(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Vec<UploadedFile>> {
        Ok(self.request(&r)?.files.clone())
    }
    async fn path_args(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Vec<String>> {
        Ok(self.request(&r)?.path_args.clone())
    }
    async fn path_kwargs(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.request(&r)?.path_kwargs.clone())
    }
    async fn drop(&mut self, r: Resource<RequestData>) -> wasmtime::Result<()> {
        // Requests are owned by the host; the guest only ever borrows them.
        if r.owned() {
            self.0.delete(r)?;
        }
        Ok(())
    }
}

/// An HTTP method as the WIT's enum (`other` for the ones it does not name).
pub fn wit_method(method: &Method) -> WitMethod {
    match *method {
        Method::GET => WitMethod::Get,
        Method::HEAD => WitMethod::Head,
        Method::POST => WitMethod::Post,
        Method::PUT => WitMethod::Put,
        Method::DELETE => WitMethod::Delete,
        Method::PATCH => WitMethod::Patch,
        Method::OPTIONS => WitMethod::Options,
        _ => WitMethod::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)], body: &'static [u8]) -> RequestData {
        let mut builder = http::Request::builder().uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        RequestData::new(
            parts,
            Bytes::from_static(body),
            [127, 0, 0, 1].into(),
            vec![],
            vec![],
        )
    }

    #[test]
    fn a_detached_request_keeps_none_of_the_buffer_it_was_parsed_from() {
        // As hyper hands a request over: its URI, a header value and its
        // body are slices of one buffer.
        let wire = Bytes::copy_from_slice(b"/wait?topic=news|a=1; b=2|cursor=3");
        let (mut parts, ()) = http::Request::builder().body(()).unwrap().into_parts();
        parts.uri = http::Uri::from_maybe_shared(wire.slice(0..16)).unwrap();
        let cookie = http::HeaderValue::from_maybe_shared(wire.slice(17..25)).unwrap();
        parts.headers.insert(http::header::COOKIE, cookie);
        let mut req = RequestData::new(parts, wire.slice(26..), [127, 0, 0, 1].into(), vec![], vec![]);
        assert!(!wire.is_unique(), "the request's head and body share the buffer");

        req.detach();
        assert!(
            wire.is_unique(),
            "the detached request holds no slice of the buffer"
        );
        assert_eq!(req.uri, "/wait?topic=news");
        assert_eq!(req.query_values("topic"), ["news"]);
        assert_eq!(req.headers[http::header::COOKIE], "a=1; b=2");
        assert_eq!(&req.body[..], b"cursor=3");

        // A body in a buffer of its own stays where it is.
        let own = Bytes::from(b"x".repeat(100_000));
        let at = own.as_ptr();
        let (parts, ()) = http::Request::builder().body(()).unwrap().into_parts();
        let mut req = RequestData::new(parts, own, [127, 0, 0, 1].into(), vec![], vec![]);
        req.detach();
        assert_eq!(req.body.as_ptr(), at, "an unshared body is not copied");
    }

    #[tokio::test]
    async fn query_and_form_arguments_merge_query_first() {
        let mut req = request(
            "/p?a=1&a=2&b=",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"a=3&c=%20x",
        );
        req.parse_body().await.unwrap();
        assert_eq!(req.argument_values("a"), ["1", "2", "3"]);
        assert_eq!(req.query_values("b"), [""]);
        assert_eq!(req.body_values("c"), [" x"]);
        assert_eq!(req.argument_names(), ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn multipart_fields_and_files() {
        let body: &'static [u8] = b"--XX\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhi\r\n--XX\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n--XX--\r\n";
        let mut req = request("/", &[("content-type", "multipart/form-data; boundary=XX")], body);
        req.parse_body().await.unwrap();
        assert_eq!(req.body_values("title"), ["hi"]);
        assert_eq!(req.files.len(), 1);
        assert_eq!(req.files[0].filename, "a.txt");
        assert_eq!(req.files[0].body, b"file body");
    }

    #[tokio::test]
    async fn malformed_multipart_is_an_error() {
        let mut req = request(
            "/",
            &[("content-type", "multipart/form-data; boundary=XX")],
            b"--XX\r\nno headers end",
        );
        assert!(req.parse_body().await.is_err());
    }

    #[test]
    fn cookies_parse_from_header() {
        let req = request("/", &[("cookie", "a=1; b=two%20words")], b"");
        assert_eq!(req.cookie("b").as_deref(), Some("two words"));
        assert_eq!(req.cookie("missing"), None);
    }
}
