"""Publish/subscribe with long polling, kept by the host.

The host keeps a bounded history per topic; ``wait`` returns the messages
after a cursor, suspending this handler (and nothing else) until one comes
or the timeout passes::

    from waterspout import pubsub, web

    class MessageUpdatesHandler(web.RequestHandler):
        def post(self):
            cursor = int(self.get_argument("cursor", "0"))
            messages = pubsub.wait("chat", after=cursor, timeout=60)
            self.write({"messages": [m.data for m in messages]})

        def on_connection_close(self):
            pass  # the client hung up during the wait

Topics must be granted to the handler in ``waterspout.toml``
(``pubsub_topics = ["chat"]``, or a prefix: ``"room.*"``). When the client
hangs up during ``wait``, it raises ``StreamClosedError``; let it propagate
(or return): the SDK then calls the handler's ``on_connection_close()`` and
nothing more is sent.

With ``park_waits = true`` on the handler, a ``wait`` that would block
*parks* the request: it raises ``Parked`` (a ``BaseException``, like
``GeneratorExit``: ``except Exception`` does not catch it), the SDK returns
from the handler, and the host runs the request again from the start when
the topic has news, where the same ``wait`` answers at once. Only reads
should come before the wait (docs/pubsub.md).
"""

import collections
import datetime

from componentize_py_types import Err as _Err
from wit_world.imports import pubsub as _raw

__all__ = [
    "Message",
    "PubsubError",
    "TopicDenied",
    "StreamClosedError",
    "publish",
    "wait",
    "latest",
]

Message = collections.namedtuple("Message", ["cursor", "data"])
Message.__doc__ = "One message of a topic: its cursor (increasing per topic, from 1) and its data."


class PubsubError(Exception):
    """A pub/sub call failed (a bad topic name, a message too large, the backend down)."""


class TopicDenied(PubsubError):
    """The topic is not granted to this handler (``pubsub_topics``)."""


class StreamClosedError(PubsubError):
    """The client hung up while this handler waited (as ``tornado.iostream``'s)."""


class Parked(BaseException):
    """The request parked at a ``wait`` (``park_waits``): let it propagate;
    the request runs again when the topic has news."""


_client_closed = [False]


def _take_client_closed():
    """Whether a wait saw the client hang up (cleared when read)."""
    closed = _client_closed[0]
    _client_closed[0] = False
    return closed


def _raise(err):
    value = err.value
    if isinstance(value, _raw.PubsubError_Closed):
        _client_closed[0] = True
        raise StreamClosedError("the client closed the connection") from None
    if isinstance(value, _raw.PubsubError_Denied):
        raise TopicDenied(value.value) from None
    raise PubsubError(value.value) from None


def _millis(timeout):
    if timeout is None:
        return 0xFFFFFFFF
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    return max(0, min(int(timeout * 1000), 0xFFFFFFFF))


def publish(topic, data):
    """Appends ``data`` (a str) to ``topic`` and wakes its waiters; returns its cursor."""
    try:
        return _raw.publish(topic, str(data))
    except _Err as err:
        _raise(err)


def wait(topic, after=0, timeout=None):
    """The kept messages of ``topic`` after cursor ``after`` (0: all kept).

    When there are none yet, waits up to ``timeout`` (seconds or a
    ``timedelta``; ``None``: as long as the handler's ``wait_timeout_ms``
    allows) and returns ``[]`` at the timeout. A cursor from before a server
    restart answers with every kept message.
    """
    try:
        kept = _raw.wait_or_park(topic, int(after), _millis(timeout))
    except _Err as err:
        _raise(err)
    if kept is None:
        raise Parked()
    return [Message(m.cursor, m.data) for m in kept]


def latest(topic):
    """The newest cursor of ``topic`` (0 before the first publish)."""
    try:
        return _raw.latest(topic)
    except _Err as err:
        _raise(err)
