//! A plain `wasi:http/service` component of WASI 0.3 (p3) — no Waterspout
//! SDK — answering every request with "Hello, world". Waterspout recognises
//! it by its `wasi:http/handler@0.3` export and serves it at its routes
//! unchanged, beside wasi:http 0.2 components.
//!
//! Run it: `cargo run -p waterspout -- serve --build examples/wasi-hello-p3`,
//! then `curl http://127.0.0.1:8888/`.

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

struct Hello;

impl wasip3::exports::http::handler::Guest for Hello {
    async fn handle(_request: Request) -> Result<Response, ErrorCode> {
        let headers = Fields::from_list(&[(
            "content-type".to_owned(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .expect("valid header");
        let (mut body_tx, body_rx) = wit_stream::new();
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(headers, Some(body_rx), trailers_rx);
        drop(trailers_tx);
        // The body is written after the response is returned.
        wasip3::wit_bindgen::spawn_local(async move {
            let rest = body_tx.write_all(b"Hello, world".to_vec()).await;
            assert!(rest.is_empty(), "the host stopped reading the body");
        });
        Ok(response)
    }
}

wasip3::http::service::export!(Hello);
