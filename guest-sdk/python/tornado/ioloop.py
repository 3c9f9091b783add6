"""``tornado.ioloop`` as a no-op: the Waterspout host runs the event loop."""

from ._unsupported import unsupported


class IOLoop:
    _current = None

    @classmethod
    def current(cls, instance=True):
        if cls._current is None:
            cls._current = cls()
        return cls._current

    instance = current

    def start(self):
        return None

    def stop(self):
        return None


def __getattr__(name):
    raise unsupported("tornado.ioloop", name)
