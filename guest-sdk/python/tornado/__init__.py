"""Tornado's package names over Waterspout's SDK, so a Tornado app's module
builds unchanged: ``import tornado`` then ``tornado.web.RequestHandler``.

Only the handler API exists here (``tornado.web``, ``tornado.websocket``,
``tornado.ioloop`` as a no-op, ``tornado.escape``'s JSON helpers,
``tornado.httpclient`` and ``tornado.gen``'s ``sleep`` / ``multi`` over the
host's services); the routes
of ``Application([...])`` become the manifest (``guest-sdk/python/build APP.py
OUT.wasm --manifest waterspout.toml``). Any other Tornado module fails to
import, at build time, with a message saying so.
"""

version = "6.5-waterspout"
version_info = (6, 5, 0, 0)

_SUBMODULES = ("web", "websocket", "ioloop", "escape", "httputil", "log", "iostream", "queues", "gen", "httpclient")


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError(
        "tornado.%s is not supported by Waterspout's Tornado compatibility package "
        "(supported: %s)" % (name, ", ".join("tornado." + m for m in _SUBMODULES))
    )
