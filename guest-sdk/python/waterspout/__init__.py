"""Waterspout's Python SDK: Tornado's handler API for WebAssembly components.

Write handlers as you would for Tornado, importing from ``waterspout``::

    from waterspout import web

    class MainHandler(web.RequestHandler):
        def get(self):
            self.write("Hello, world")

and build the module into a component with ``guest-sdk/python/build app.py
app.wasm``. ``waterspout.web`` mirrors ``tornado.web`` (``RequestHandler``,
``HTTPError``, ``MissingArgumentError``), ``waterspout.websocket`` mirrors
``tornado.websocket`` (``WebSocketHandler``), ``waterspout.log`` writes
into the host's log, ``waterspout.pubsub`` publishes and long-polls topics
and ``waterspout.groups`` broadcasts to groups of WebSocket connections,
and the other host services are ``waterspout.kv``,
``waterspout.timers`` and ``waterspout.httpclient`` (``tornado.httpclient``).
"""

__version__ = "0.1.0"


def __getattr__(name):
    # `import waterspout as tornado` then `tornado.web.RequestHandler`, as
    # after Tornado's `import tornado`: the submodules load on first use.
    if name in ("web", "websocket", "log", "pubsub", "groups", "queues", "worker", "kv", "timers", "httpclient"):
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError("module 'waterspout' has no attribute %r" % name)
