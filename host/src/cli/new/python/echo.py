"""Tornado's ``EchoWebSocket``: every message comes back unchanged. A component
of its own (the websocket world), built by its own ``build`` line."""

from waterspout import websocket


class EchoWebSocket(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message)
