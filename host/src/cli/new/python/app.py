"""{{ name }}: Tornado's ``MainHandler``, as a Waterspout handler in Python.

``waterspout serve --build .`` builds it (the ``build`` line of
waterspout.toml, ~30 s) and serves it: ``curl http://127.0.0.1:8888/``.
Only the import differs from Tornado; the routes are in waterspout.toml.
"""

import waterspout as tornado


class MainHandler(tornado.web.RequestHandler):
    def get(self):
        name = self.get_argument("name", "world")
        self.write(f"Hello, {name}")
