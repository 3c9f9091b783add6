"""WebSocket groups: named sets of connections, kept by the host.

A ``WebSocketHandler`` joins groups with its connection; any handler
broadcasts to a group. The host writes the message to every member
connection itself: the members' handlers are not called (Tornado's chat
demo keeps a set of ``waiters`` and writes to each; here the host keeps it)::

    from waterspout import groups, websocket

    class ChatSocketHandler(websocket.WebSocketHandler):
        def open(self):
            groups.join("chat")

        def on_message(self, message):
            groups.broadcast("chat", message)

Groups must be granted to the handler in ``waterspout.toml``
(``groups = ["chat"]``, or a prefix: ``"room.*"``). A connection leaves its
groups when it closes.
"""

from componentize_py_types import Err as _Err
from wit_world.imports import groups as _raw

__all__ = ["GroupError", "GroupDenied", "join", "leave", "broadcast"]


class GroupError(Exception):
    """A group call failed (not a WebSocket connection, a bad name, a message too large)."""


class GroupDenied(GroupError):
    """The group is not granted to this handler (``groups``)."""


def _raise(err):
    value = err.value
    if isinstance(value, _raw.GroupError_NotAConnection):
        raise GroupError("only a WebSocket connection can join or leave a group") from None
    if isinstance(value, _raw.GroupError_Denied):
        raise GroupDenied(value.value) from None
    raise GroupError(value.value) from None


def join(group):
    """Adds this WebSocket connection to ``group`` (until it leaves or closes)."""
    try:
        _raw.join(group)
    except _Err as err:
        _raise(err)


def leave(group):
    """Takes this connection out of ``group``."""
    try:
        _raw.leave(group)
    except _Err as err:
        _raise(err)


def broadcast(group, message, binary=False):
    """Sends ``message`` to every member connection of ``group``; returns how many it reached.

    ``message`` is a str (text) or bytes (binary), or a dict sent as JSON
    text, as ``WebSocketHandler.write_message`` takes.
    """
    if isinstance(message, dict):
        import json

        message = json.dumps(message)
    if isinstance(message, (bytes, bytearray)) or binary:
        if isinstance(message, str):
            message = message.encode()
        raw = _raw.GroupMessage_Binary(bytes(message))
    else:
        raw = _raw.GroupMessage_Text(str(message))
    try:
        return _raw.broadcast(group, raw)
    except _Err as err:
        _raise(err)
