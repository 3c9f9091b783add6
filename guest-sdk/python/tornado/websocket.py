"""``tornado.websocket`` on Waterspout."""

from waterspout.websocket import WebSocketClosedError, WebSocketHandler  # noqa: F401

from ._unsupported import unsupported


def __getattr__(name):
    raise unsupported("tornado.websocket", name)
