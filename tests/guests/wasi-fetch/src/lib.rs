//! A plain `wasi:http/proxy` component for the tests:
//!
//! | request              | answer                                                   |
//! |----------------------|----------------------------------------------------------|
//! | `GET /fetch?url=URL` | `fetched STATUS` or `error: CODE` (outbound request)     |
//! | `GET /panic`         | panics before setting a response (a trap → 500)          |
//! | `GET …/scheme`       | the request's scheme: `http` or `https`                  |
//! | anything else        | `wasi-fetch`                                             |

use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
};

struct Fetch;

impl wasi::exports::http::incoming_handler::Guest for Fetch {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let text = if path == "/panic" {
            panic!("wasi-fetch: panicking on purpose");
        } else if path.ends_with("/scheme") {
            match request.scheme() {
                Some(Scheme::Http) => "http".to_owned(),
                Some(Scheme::Https) => "https".to_owned(),
                other => format!("{other:?}"),
            }
        } else if let Some(url) = path.strip_prefix("/fetch?url=") {
            fetch(url)
        } else {
            "wasi-fetch".to_owned()
        };
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("body");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("stream");
        stream.blocking_write_and_flush(text.as_bytes()).expect("write");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finish");
    }
}

/// GETs `http://AUTHORITY/PATH` (the url without its scheme).
fn fetch(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&Scheme::Http)).expect("scheme");
    request.set_authority(Some(authority)).expect("authority");
    request.set_path_with_query(Some(&path)).expect("path");
    match outgoing_handler::handle(request, None) {
        Err(code) => format!("error: {code:?}"),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(response))) => format!("fetched {}", response.status()),
                Some(Ok(Err(code))) => format!("error: {code:?}"),
                other => format!("error: {other:?}"),
            }
        }
    }
}

wasi::http::proxy::export!(Fetch);
