"""Tornado's ``tornado.queues`` over the app's named queues.

Queues are declared in ``waterspout.toml`` (``[queue.urls] max_size = 1000``;
0 or absent: unbounded) and granted per handler (``queues = ["urls"]``); every
handler and background worker of the app that is granted a queue shares it::

    from waterspout.queues import Queue

    q = Queue("urls")

    class Crawl(web.RequestHandler):
        async def get(self):
            await q.put(self.get_argument("url"))   # waits while q is full
            await q.join(timeout=30)                 # every item done

Items are JSON values (str, numbers, lists, dicts…) and round-trip as such;
``bytes`` go as they are, and an item that is not JSON (put raw by another
language) comes back as ``bytes``. Timeouts are in seconds (a number or a
``datetime.timedelta``), relative to now; ``None`` waits as long as the
handler's time limit allows (a worker's ``get`` as long as it takes).
"""

import datetime
import json

from componentize_py_types import Err
from wit_world.imports import queue as _raw

__all__ = ["Queue", "QueueEmpty", "QueueFull", "QueueNotGranted", "QueueStopping"]


class QueueEmpty(Exception):
    """``get_nowait`` on an empty queue (Tornado's ``QueueEmpty``)."""


class QueueFull(Exception):
    """``put_nowait`` on a full queue (Tornado's ``QueueFull``)."""


class QueueNotGranted(PermissionError):
    """The queue is not declared in the manifest or not granted to this handler."""


class QueueStopping(Exception):
    """A background worker must stop (new version uploaded, or shutdown).
    ``async for item in q`` ends on it; ``Worker.run`` may let it escape."""


def _millis(timeout):
    if timeout is None:
        return None
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    # 0 means "do not wait" to the host: a positive timeout waits at least 1 ms.
    return max(1, min(int(timeout * 1000), 2**32 - 1)) if timeout > 0 else 0


def _raise(error, name):
    kind = type(error.value).__name__.rsplit("_", 1)[-1]
    value = getattr(error.value, "value", None)
    if kind == "Timeout":
        raise TimeoutError("queue %r: timed out" % name) from None
    if kind == "Full":
        raise QueueFull() from None
    if kind == "Empty":
        raise QueueEmpty() from None
    if kind == "TooManyTaskDone":
        raise ValueError("task_done() called too many times") from None
    if kind == "TooLarge":
        raise ValueError("queue %r: the item is larger than its max_item_size of %s bytes" % (name, value)) from None
    if kind == "Stopping":
        raise QueueStopping() from None
    if kind == "NotGranted":
        raise QueueNotGranted(
            "queue %r is not granted to this handler (declare [queue.%s] and add it to the "
            "handler's queues = [...] in waterspout.toml)" % (value, value)
        ) from None
    raise RuntimeError("queue %r: %r" % (name, error.value)) from None


def _encode(item):
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    return json.dumps(item, separators=(",", ":")).encode()


def _decode(data):
    try:
        return json.loads(data)
    except ValueError:
        return bytes(data)


class Queue:
    """A named queue of the app (Tornado's ``tornado.queues.Queue``; the bound
    is the manifest's ``max_size``)."""

    def __init__(self, name):
        self.name = name

    def _call(self, function, *args):
        try:
            return function(self.name, *args)
        except Err as error:
            _raise(error, self.name)

    @property
    def maxsize(self):
        """Number of items allowed in the queue (0: unbounded)."""
        return self._call(_raw.maxsize)

    def qsize(self):
        """Number of items in the queue."""
        return self._call(_raw.qsize)

    def empty(self):
        return self.qsize() == 0

    def full(self):
        maxsize = self.maxsize
        return maxsize > 0 and self.qsize() >= maxsize

    async def put(self, item, timeout=None):
        """Puts an item, waiting while the queue is full (``TimeoutError``
        after ``timeout`` seconds)."""
        self._call(_raw.put, _encode(item), _millis(timeout))

    def put_nowait(self, item):
        """Puts an item without waiting (``QueueFull`` when full)."""
        self._call(_raw.put, _encode(item), 0)

    async def get(self, timeout=None):
        """Removes and returns an item, waiting while the queue is empty."""
        return _decode(self._call(_raw.get, _millis(timeout)))

    def get_nowait(self):
        """Removes and returns an item without waiting (``QueueEmpty`` when empty)."""
        return _decode(self._call(_raw.get, 0))

    def task_done(self):
        """The item last taken is processed (counts down ``join``)."""
        self._call(_raw.task_done)

    async def join(self, timeout=None):
        """Waits until every item put has been processed (``task_done``)."""
        self._call(_raw.join, _millis(timeout))

    def __aiter__(self):
        return self

    async def __anext__(self):
        # Tornado's `async for item in q`: a worker's loop ends when it must stop.
        try:
            return await self.get()
        except QueueStopping:
            raise StopAsyncIteration from None

    def __repr__(self):
        return "<Queue %r>" % self.name
