"""Lines in the host's log, tagged by the host with the handler and request id.

    from waterspout import log

    log.info("cache miss for %s", key)

Python's ``logging`` module is routed here too (``logging.getLogger(...)``
records go to the host log at their level), so code written for Tornado's
``tornado.application`` logger needs no change.
"""

import logging

from wit_world.imports import log as _raw

__all__ = ["debug", "info", "warning", "error", "exception"]


def _emit(level, message, args):
    if args:
        message = message % args
    try:
        _raw.log(level, str(message))
    except Exception:  # noqa: BLE001 — logging must never fail a request
        pass


def debug(message, *args):
    """Logs at debug level: ``log.debug("x = %s", x)``."""
    _emit(_raw.Level.DEBUG, message, args)


def info(message, *args):
    """Logs at info level: ``log.info("served %s", path)``."""
    _emit(_raw.Level.INFO, message, args)


def warning(message, *args):
    """Logs at warn level: ``log.warning("slow client")``."""
    _emit(_raw.Level.WARN, message, args)


def error(message, *args):
    """Logs at error level: ``log.error("database down")``."""
    _emit(_raw.Level.ERROR, message, args)


def exception(message, *args):
    """Logs at error level with the current exception's traceback.

    Call it inside an ``except`` block::

        try:
            risky()
        except Exception:
            log.exception("risky failed")
    """
    import traceback

    if args:
        message = message % args
    _emit(_raw.Level.ERROR, "%s\n%s", (message, traceback.format_exc().rstrip()))


class HostLogHandler(logging.Handler):
    """A ``logging`` handler writing records into the host's log."""

    def emit(self, record):
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001
            text = str(record.msg)
        if record.levelno >= logging.ERROR:
            level = _raw.Level.ERROR
        elif record.levelno >= logging.WARNING:
            level = _raw.Level.WARN
        elif record.levelno >= logging.INFO:
            level = _raw.Level.INFO
        else:
            level = _raw.Level.DEBUG
        _emit(level, text, ())


def _install():
    root = logging.getLogger()
    if not any(isinstance(h, HostLogHandler) for h in root.handlers):
        handler = HostLogHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


_install()
