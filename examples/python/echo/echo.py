"""A WebSocket echo server, as Tornado's ``EchoWebSocket`` example.

Run it from the repository root:
    cargo run -p waterspout -- serve examples/python/echo
then connect to ws://127.0.0.1:8888/echo.

- a text or binary message comes back unchanged, of the same kind;
- the text ``count`` is answered with how many messages this connection has
  received, counting this one (one instance serves one connection, so the
  count lives in the handler);
- the text ``close`` makes the server close with code 1000 and reason ``bye``.
"""

from waterspout import log, websocket


class EchoWebSocket(websocket.WebSocketHandler):
    def open(self):
        self.received = 0
        log.info("echo: connection from %s", self.request.remote_ip)

    def on_message(self, message):
        self.received += 1
        if message == "count":
            self.write_message(str(self.received))
        elif message == "close":
            self.close(1000, "bye")
        else:
            self.write_message(message)

    def on_close(self):
        log.info(
            "echo: closed after %d messages (code %s, reason %r)",
            self.received,
            self.close_code,
            self.close_reason,
        )
