"""Tornado's WebSocket chat demo (demos/websocket/chatdemo.py), ported:
``ChatSocketHandler`` on ``/chatsocket``.

What changed from Tornado: the demo's class-level ``waiters`` set and
``send_updates`` loop become the host's WebSocket group ``chat``: ``open``
joins it and a message is broadcast to it; the host writes it to every
member connection without calling their handlers. The demo's class-level
``cache`` is the kv key that the long-polling handlers (chat.py) use too
(``history.py``), so both variants see each other's messages.
"""

import html
import json
import uuid

import history
from waterspout import groups, log, websocket


class ChatSocketHandler(websocket.WebSocketHandler):
    def open(self):
        groups.join(history.GROUP)

    def on_close(self):
        # The host takes a closed connection out of its groups.
        pass

    def on_message(self, message):
        log.info("got message %r", message)
        parsed = json.loads(message)
        body = parsed["body"]
        if len(body) > history.MAX_BODY:
            log.warning("message dropped: longer than %d characters", history.MAX_BODY)
            return
        chat = {"id": str(uuid.uuid4()), "body": body}
        chat["html"] = '<div class="message" id="m%s">%s</div>' % (
            html.escape(chat["id"]),
            html.escape(chat["body"]),
        )
        # The cache (for the page and the long pollers), then every socket.
        history.add(chat)
