"""``tornado.web`` on Waterspout: the handler API of ``waterspout.web`` plus an
``Application`` that only records its routes (the host serves them)."""

from waterspout.web import (  # noqa: F401 — re-exported under Tornado's names
    Finish,
    HTTPError,
    MissingArgumentError,
    RequestHandler,
    authenticated,
)

from ._unsupported import unsupported


class URLSpec:
    """A route: ``url(r"/items/([0-9]+)", ItemHandler, dict(db=db), name="item")``."""

    def __init__(self, pattern, handler, kwargs=None, name=None):
        self.regex = pattern
        self.handler_class = handler
        self.kwargs = kwargs or {}
        self.name = name


url = URLSpec


class Application:
    """Records its routes; ``listen`` is a no-op (the Waterspout host listens)."""

    def __init__(self, handlers=None, default_host=None, transforms=None, **settings):
        self.handlers = [h if isinstance(h, URLSpec) else URLSpec(*h) for h in (handlers or [])]
        self.settings = settings

    def listen(self, port=None, address="", **kwargs):
        return None

    def add_handlers(self, host_pattern, host_handlers):
        self.handlers.extend(h if isinstance(h, URLSpec) else URLSpec(*h) for h in host_handlers)


def __getattr__(name):
    raise unsupported("tornado.web", name)
