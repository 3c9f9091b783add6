"""Timers: ``sleep`` waits without holding the server.

    from waterspout import timers

    timers.sleep(0.5)            # seconds; only this request waits

Inside ``async def`` handlers, ``await asyncio.sleep(s)`` and ``await
tornado.gen.sleep(s)`` do the same (the SDK routes ``asyncio.sleep`` here).
The wait counts against the handler's ``timeout_ms``.
"""

from wit_world.imports import timers as _raw

__all__ = ["sleep", "Sleep"]


def sleep(seconds):
    """Waits ``seconds`` (a float); the guest is suspended, the server is not."""
    _raw.sleep(max(0, int(seconds * 1000)))


class Sleep:
    """An awaitable sleep (``tornado.gen.sleep``): waits when awaited."""

    def __init__(self, seconds, result=None):
        self.seconds = seconds
        self.value = result

    def __await__(self):
        sleep(self.seconds)
        return self.value
        yield  # noqa: unreachable — makes this a generator


def _asyncio_sleep(delay, result=None):
    return Sleep(delay, result)


def install_asyncio_sleep():
    """Makes ``asyncio.sleep`` wait through the host (there is no event loop
    in a guest; ``asyncio.sleep(0)`` stays a plain yield point). Only when
    the app imported ``asyncio`` (importing it here would cost every
    request); returns whether it is installed."""
    import sys

    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    if getattr(asyncio.sleep, "__module__", "") != __name__:
        original = asyncio.sleep

        def patched(delay, result=None):
            if delay <= 0:
                return original(0, result)
            return Sleep(delay, result)

        patched.__module__ = __name__
        asyncio.sleep = patched
    return True
