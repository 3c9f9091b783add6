"""Tornado's ``tornado.gen`` over Waterspout: ``sleep`` and ``multi``.

``await gen.sleep(1.5)`` suspends only this request (the host's timer).
``await gen.multi([client.fetch(a), client.fetch(b)])`` (a list or a dict)
runs the fetches at once in the host; other awaitables in it run one after
another.
"""

from waterspout import web as _web
from waterspout.httpclient import Fetch as _Fetch, fetch_all as _fetch_all
from waterspout.timers import Sleep as _Sleep

from ._unsupported import unsupported

__all__ = ["sleep", "multi", "multi_future", "maybe_future"]


def sleep(duration):
    """An awaitable that waits ``duration`` seconds (only this request waits)."""
    return _Sleep(duration)


class _Multi:
    def __init__(self, children):
        self.children = children

    def _results(self):
        children = self.children
        keys = list(children.keys()) if isinstance(children, dict) else None
        items = list(children.values()) if keys is not None else list(children)
        fetches = [i for i, child in enumerate(items) if isinstance(child, _Fetch)]
        results = [None] * len(items)
        for i, response in zip(fetches, _fetch_all([items[i] for i in fetches])):
            results[i] = response
        for i, child in enumerate(items):
            if not isinstance(child, _Fetch):
                results[i] = _web._run(child)
        return dict(zip(keys, results)) if keys is not None else results

    def __await__(self):
        return self._results()
        yield  # noqa: unreachable — makes this a generator


def multi(children, quiet_exceptions=()):
    """Waits for every awaitable in a list or dict; the results in its shape."""
    return _Multi(children)


multi_future = multi


def maybe_future(x):
    return x


def __getattr__(name):
    raise unsupported("tornado.gen", name)
