//! A plain `wasi:http/proxy` component — no Waterspout SDK — answering every
//! request with "Hello, world". Waterspout recognises it by its
//! `wasi:http/incoming-handler` export and serves it at its routes unchanged;
//! `wasmtime serve` runs the very same file (the benchmark compares the two).
//!
//! Run it: `cargo run -p waterspout -- serve --build examples/wasi-hello`,
//! then `curl http://127.0.0.1:8888/`.

use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers =
            Fields::from_list(&[("content-type".to_owned(), b"text/plain; charset=utf-8".to_vec())])
                .expect("valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("first call to body()");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("first call to write()");
        stream
            .blocking_write_and_flush(b"Hello, world")
            .expect("writing the body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finishing the body");
    }
}

wasi::http::proxy::export!(Hello);
