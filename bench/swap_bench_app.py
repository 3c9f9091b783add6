"""A Python handler for the "large component" case of bench/src/swap_bench.rs
(~18 MB once componentized): GET / answers "python". Built there with
`componentize-py -d wit -w handler componentize app -o app.wasm` when
componentize-py is installed (`pip install componentize-py`)."""

from wit_world import exports
from wit_world.imports import response, types
from componentize_py_types import Err


def _not_allowed():
    raise Err(types.HttpError(status=405, reason=None, log_message=None))


class RequestHandler(exports.RequestHandler):
    def initialize(self, settings):
        pass

    def prepare(self, req):
        pass

    def get(self, req):
        response.write(b"python")

    def head(self, req):
        _not_allowed()

    def post(self, req):
        _not_allowed()

    def put(self, req):
        _not_allowed()

    def delete(self, req):
        _not_allowed()

    def patch(self, req):
        _not_allowed()

    def options(self, req):
        _not_allowed()

    def write_error(self, req, status, reason):
        response.write(f"{status}: {reason}".encode())

    def on_finish(self, req):
        pass
