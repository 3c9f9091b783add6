"""Hello, world as a plain wasi:http 0.3 (WASI p3) ``service`` component.

No Waterspout SDK: componentize-py's own bindings for the standard
``wasi:http/service@0.3.0`` world, so the same component runs on any p3 host
(``wasmtime serve -Sp3``). Build it with
``guest-sdk/python/build-wasi-http3 app.py app.wasm`` (what the manifest's
``build`` line runs).

``handle`` is a coroutine: it returns the response head at once; the body is
a stream the component writes from a task of its own, after returning.
"""

import componentize_py_async_support
import wit_world
from componentize_py_async_support.streams import ByteStreamWriter
from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.wasi_http_types import Fields, Request, Response


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        body_tx, body_rx = wit_world.byte_stream()
        componentize_py_async_support.spawn(write_body(body_tx, b"Hello, world"))
        _, trailers = wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
            lambda: Ok(None)
        )
        headers = Fields.from_list([("content-type", b"text/plain; charset=utf-8")])
        response, _sent = Response.new(headers, body_rx, trailers)
        return response


async def write_body(body_tx: ByteStreamWriter, body: bytes) -> None:
    with body_tx:
        await body_tx.write_all(body)
