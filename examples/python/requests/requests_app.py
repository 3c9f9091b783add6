"""A tour of the request and response API, one route per feature: the same
routes and answers as the Rust ``examples/requests``.

Run it from the repository root:
    cargo run -p waterspout -- serve examples/python/requests
then try the routes listed in waterspout.toml with curl.

As a Tornado app passes ``dict(mode=...)`` to ``initialize`` from its URL
specs, every route sends a ``mode`` setting that picks what the one handler
does. Its error pages are JSON (see ``write_error``), and ``prepare`` and
``on_finish`` run around every route.
"""

import json

from waterspout import log
from waterspout.web import HTTPError, RequestHandler

# The most chunks /stream sends, so a request cannot ask for an endless one.
MAX_CHUNKS = 1000


class RequestsHandler(RequestHandler):
    def initialize(self, mode=""):
        self.mode = mode

    def prepare(self):
        # Marks every response so a client can see prepare ran.
        self.set_header("X-Prepared", 1)

    def get(self, *args, **kwargs):
        if self.mode == "greet":
            # No `name`: MissingArgumentError, a 400 through write_error.
            self.write("Hello, %s" % self.get_argument("name"))
        elif self.mode == "item":
            (item_id,) = args
            self.write("item %s" % item_id)
        elif self.mode == "user":
            self.write("user %s" % kwargs["name"])
        elif self.mode == "old":
            self.redirect("/new")
        elif self.mode == "new":
            self.write("This is the new page")
        elif self.mode == "cookie-set":
            value = self.get_argument("value")
            self.set_cookie("flavor", value)
            self.write("flavor set to %s" % value)
        elif self.mode == "cookie-get":
            flavor = self.get_cookie("flavor")
            self.write("flavor: %s" % flavor if flavor is not None else "no flavor")
        elif self.mode == "fail":
            raise HTTPError(418, "/fail always fails", reason="Teapot Refuses Coffee")
        elif self.mode == "stream":
            self.stream()
        else:
            raise HTTPError(405)

    def stream(self):
        """GET /stream?n=3 → "chunk 0\\n", "chunk 1\\n", "chunk 2\\n", each flushed."""
        try:
            n = int(self.get_argument("n", "3"))
        except ValueError:
            raise HTTPError(400, reason="n must be a whole number") from None
        for i in range(min(n, MAX_CHUNKS)):
            self.write("chunk %d\n" % i)
            self.flush()

    def post(self):
        if self.mode == "json":
            # A JSON object comes back with "echoed": true; anything else is a 400.
            try:
                document = json.loads(self.request.body)
            except ValueError:
                raise HTTPError(400, reason="Body Is Not JSON") from None
            if not isinstance(document, dict):
                raise HTTPError(400, reason="Body Is Not A JSON Object")
            document["echoed"] = True
            self.write(document)
        elif self.mode == "form":
            # Each body field's last value, and the uploaded files.
            fields = {name: values[-1].decode() for name, values in self.request.body_arguments.items()}
            files = [
                {
                    "field": field,
                    "filename": f.filename,
                    "content_type": f.content_type,
                    "size": len(f.body),
                }
                for field, uploads in self.request.files.items()
                for f in uploads
            ]
            self.write({"fields": fields, "files": files})
        else:
            raise HTTPError(405)

    def write_error(self, status_code, **kwargs):
        # This app's error pages are JSON: {"status": 418, "reason": "..."}.
        self.write({"status": status_code, "reason": self._reason})

    def on_finish(self):
        log.info("%s %s finished with %d", self.request.method, self.request.path, self.get_status())
