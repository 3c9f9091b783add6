"""Tornado's ``tornado.websocket`` for Waterspout: ``WebSocketHandler``.

    from waterspout import websocket

    class EchoWebSocket(websocket.WebSocketHandler):
        def open(self):
            print("WebSocket opened")

        def on_message(self, message):
            self.write_message(u"You said: " + message)

        def on_close(self):
            print("WebSocket closed")

One instance of the component serves one connection for its whole life, so
what a handler keeps in ``self`` lasts as long as the connection.
"""

import json

from componentize_py_types import Err as _Err
from wit_world.imports import websocket_connection as _conn

from . import web
from ._webhelpers import SignedCookies as _SignedCookies

__all__ = ["WebSocketHandler", "WebSocketClosedError"]


class WebSocketClosedError(Exception):
    """Raised by ``write_message``/``ping`` once the connection is closing or
    closed (or the client stopped reading and the buffer is full)."""


class WebSocketHandler(_SignedCookies):
    """Tornado's ``WebSocketHandler``: override ``open``, ``on_message``, ``on_close``.

    ``self.request`` is the handshake request (read in full before ``open``);
    ``self.close_code`` and ``self.close_reason`` hold the client's close
    frame once ``on_close`` runs. ``raise HTTPError(403)`` in ``open`` refuses
    the handshake with that status.
    """

    def __init__(self):
        self.request = None
        self.settings = {}
        self.path_args = []
        self.path_kwargs = {}
        self.close_code = None
        self.close_reason = None
        self._closed = False

    def initialize(self, **kwargs):
        """Receives the route's settings (``[route.settings]`` in waterspout.toml)."""

    def select_subprotocol(self, subprotocols):
        """Picks one of the client's subprotocols, or ``None`` (the default)."""
        return None

    def open(self, *args, **kwargs):
        """Called once the handshake is accepted, with the route's regex groups."""

    def on_message(self, message):
        """Called for each message: ``str`` for text, ``bytes`` for binary."""
        raise NotImplementedError

    def on_close(self):
        """Called once the connection is closed."""

    def on_ping(self, data):
        """Tornado calls this for pings; the host answers them itself."""

    def write_message(self, message, binary=False):
        """Sends a message: ``str`` → text, ``bytes`` (or ``binary=True``) →
        binary, ``dict`` → JSON text. Returns an already-done awaitable.

        Raises ``WebSocketClosedError`` once the connection is closed.
        """
        if isinstance(message, dict):
            message = json.dumps(message)
        if binary or isinstance(message, (bytes, bytearray, memoryview)):
            if isinstance(message, str):
                message = message.encode("utf-8")
            frame = _conn.Message_Binary(bytes(message))
        else:
            frame = _conn.Message_Text(str(message))
        try:
            _conn.write_message(frame)
        except _Err as error:
            raise WebSocketClosedError(error.value) from None
        return web._Done()

    def ping(self, data=b""):
        """Sends a ping (at most 125 bytes of data)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            _conn.ping(bytes(data))
        except _Err as error:
            raise WebSocketClosedError(error.value) from None

    def close(self, code=None, reason=None):
        """Starts the close handshake (code 1000 when none is given)."""
        _conn.close(code, reason)

    def get_compression_options(self):
        return None

    def check_origin(self, origin):
        """The host checks origins; kept for Tornado code that overrides it."""
        return True

    def set_nodelay(self, value):
        """A no-op: the host manages the socket."""
