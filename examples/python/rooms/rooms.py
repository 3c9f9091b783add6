"""Chat-room style WebSocket handler: Tornado's WebSocketHandler API beyond echo.

Run it from the repository root:
    cargo run -p waterspout -- serve examples/python/rooms
then connect to ws://127.0.0.1:8888/rooms/lobby (see waterspout.toml).
"""

from waterspout import web, websocket

SUBPROTOCOL = "rooms.v1"


class RoomSocket(websocket.WebSocketHandler):
    def initialize(self, greeting):
        self.greeting = greeting
        self.subprotocol = None

    def select_subprotocol(self, subprotocols):
        if SUBPROTOCOL in subprotocols:
            self.subprotocol = SUBPROTOCOL
        return self.subprotocol

    def open(self, room):
        if room == "private":
            raise web.HTTPError(403, "refused room %s", room, reason="Members Only")
        self.room = room

    async def on_message(self, message):
        if message == "info":
            await self.write_message(
                {
                    "room": self.room,
                    "subprotocol": self.subprotocol,
                    "path": self.request.path,
                    "greeting": self.greeting,
                }
            )
        elif message == "bytes":
            self.write_message(self.room.encode(), binary=True)
        elif message == "crash":
            raise ValueError("on_message failed on purpose")
        else:
            self.write_message("%s: %s" % (self.room, message))
