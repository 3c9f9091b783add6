"""Tornado's ``tornado.web`` for Waterspout: ``RequestHandler`` and ``HTTPError``.

A handler ports from Tornado by changing its imports::

    from waterspout import web

    class MainHandler(web.RequestHandler):
        def get(self):
            self.write("Hello, world")

The host makes an instance of the component per request (or reuses one with
``reuse = N``) and calls ``initialize(**settings)`` → ``prepare()`` → the verb
→ ``on_finish()``, as Tornado does. Differences from Tornado are listed in
``guest-sdk/python/README.md``.
"""

import datetime
import email.utils
import json
import numbers
from collections.abc import MutableMapping

from wit_world.imports import types as _types

try:  # Only the `handler` world imports `response`; the `websocket` world does not.
    from wit_world.imports import response as _response
except ImportError:  # pragma: no cover - depends on the world being built
    _response = None

from componentize_py_types import Err as _Err

from ._webhelpers import WebHelpers as _WebHelpers
from ._webhelpers import authenticated
# Imported now, not on the first `async def` call: componentize-py bundles
# only the modules imported while the component is built.
from . import timers as _timers

__all__ = [
    "RequestHandler",
    "HTTPError",
    "MissingArgumentError",
    "HTTPServerRequest",
    "HTTPHeaders",
    "HTTPFile",
    "Finish",
    "authenticated",
]

_ARG_DEFAULT = object()
_MISSING = object()

_REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
    202: "Accepted", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
    409: "Conflict", 410: "Gone", 411: "Length Required",
    412: "Precondition Failed", 413: "Payload Too Large", 415: "Unsupported Media Type",
    418: "I'm a teapot", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


def _reason_phrase(status):
    return _REASONS.get(status, "Unknown")


class HTTPError(Exception):
    """An HTTP error response, as Tornado's ``HTTPError``.

    ``raise HTTPError(404)`` from ``prepare`` or a verb resets the response,
    sets the status and calls ``write_error``::

        raise HTTPError(418, "log only: %s", "teapot", reason="Teapot Refuses Coffee")

    ``log_message`` (formatted with ``args``) goes only to the host log;
    ``reason`` replaces the standard phrase in the status line and the page.
    """

    def __init__(self, status_code=500, log_message=None, *args, **kwargs):
        super().__init__()
        self.status_code = status_code
        self.log_message = log_message
        self.args = args
        self.reason = kwargs.get("reason", None)
        if log_message and not args:
            self.log_message = log_message.replace("%", "%%")

    def __str__(self):
        message = "HTTP %d: %s" % (self.status_code, self.reason or _reason_phrase(self.status_code))
        if self.log_message:
            return message + " (" + (self.log_message % self.args) + ")"
        return message

    def _to_raw(self):
        log_message = None
        if self.log_message:
            try:
                log_message = self.log_message % self.args
            except (TypeError, ValueError):
                log_message = self.log_message
        return _types.HttpError(status=self.status_code, reason=self.reason, log_message=log_message)


class MissingArgumentError(HTTPError):
    """Raised by ``get_argument`` for a missing argument: a 400 whose reason is
    ``Missing argument NAME`` (Tornado puts that text in the log message only)."""

    def __init__(self, arg_name):
        super().__init__(400, "Missing argument %s" % arg_name, reason="Missing argument %s" % arg_name)
        self.arg_name = arg_name


class Finish(Exception):
    """Raise to end the request without an error, as Tornado's ``Finish``::

        raise Finish("done")  # writes "done" and finishes
    """


class _Done:
    """An already-completed awaitable: what ``flush``/``finish`` return, since
    host calls complete at once (``await self.flush()`` works as in Tornado)."""

    __slots__ = ("_value",)

    def __init__(self, value=None):
        self._value = value

    def __await__(self):
        return self._value
        yield  # noqa: unreachable — makes this a generator

    def result(self):
        return self._value

    def done(self):
        return True


class HTTPHeaders(MutableMapping):
    """Case-insensitive headers, as Tornado's ``httputil.HTTPHeaders``.

    ``headers["content-type"]`` and ``headers["Content-Type"]`` are the same;
    a repeated header reads as its values joined by ``,``; ``get_list(name)``
    gives each value.
    """

    def __init__(self, pairs=()):
        self._values = {}
        self._names = {}
        for name, value in pairs:
            self.add(name, value)

    def add(self, name, value):
        key = name.lower()
        self._names.setdefault(key, name)
        self._values.setdefault(key, []).append(value)

    def get_list(self, name):
        return list(self._values.get(name.lower(), []))

    def get_all(self):
        for key, values in self._values.items():
            for value in values:
                yield self._names[key], value

    def __getitem__(self, name):
        return ",".join(self._values[name.lower()])

    def __setitem__(self, name, value):
        key = name.lower()
        self._names[key] = name
        self._values[key] = [value]

    def __delitem__(self, name):
        key = name.lower()
        del self._values[key]
        del self._names[key]

    def __iter__(self):
        return iter(self._names[key] for key in self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return "HTTPHeaders(%r)" % list(self.get_all())


class HTTPFile(dict):
    """An uploaded file: ``file.filename``, ``file.body`` (bytes),
    ``file.content_type``; also a dict, as in Tornado."""

    __getattr__ = dict.__getitem__


class _Cookie:
    """A request cookie, read as Tornado's ``Morsel``: ``.key`` and ``.value``."""

    __slots__ = ("key", "value")

    def __init__(self, key, value):
        self.key = key
        self.value = value

    @property
    def coded_value(self):
        return self.value

    def __repr__(self):
        return "<Cookie %s=%r>" % (self.key, self.value)


def _bytes_dict(names, read):
    out = {}
    for name in names:
        values = read(name)
        if values:
            out[name] = [v.encode("utf-8") for v in values]
    return out


class HTTPServerRequest:
    """The request, as Tornado's ``httputil.HTTPServerRequest``.

    Attributes: ``method``, ``uri``, ``path``, ``query``, ``version``, ``host``,
    ``remote_ip``, ``protocol``, ``headers`` (``HTTPHeaders``), ``body`` (bytes),
    ``arguments``, ``query_arguments``, ``body_arguments`` (name → list of
    bytes), ``files`` (field → list of ``HTTPFile``), ``cookies`` (name →
    cookie with ``.value``). Each is read from the host on first use.
    """

    def __init__(self, raw):
        self._raw = raw
        self._cache = {}

    def _bind(self, raw):
        self._raw = raw

    def _get(self, key, read):
        # No try/except KeyError: the first read of each value would raise.
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            if self._raw is None:
                raise RuntimeError("the request is no longer available (read it in open())")
            value = self._cache[key] = read(self._raw)
        return value

    def _load_all(self):
        """Reads every attribute now (the websocket handshake's request is
        only lent to ``open``)."""
        for name in ("method", "uri", "path", "query", "version", "host", "remote_ip",
                     "protocol", "headers", "body", "arguments", "query_arguments",
                     "body_arguments", "files", "cookies", "path_args", "path_kwargs"):
            getattr(self, name)
        self._raw = None

    method = property(lambda self: self._get("method", lambda r: r.method_name()))
    uri = property(lambda self: self._get("uri", lambda r: r.uri()))
    path = property(lambda self: self._get("path", lambda r: r.path()))
    query = property(lambda self: self._get("query", lambda r: r.query()))
    version = property(lambda self: self._get("version", lambda r: r.version()))
    host = property(lambda self: self._get("host", lambda r: r.host()))
    remote_ip = property(lambda self: self._get("remote_ip", lambda r: r.remote_ip()))
    protocol = property(lambda self: self._get("protocol", lambda r: r.protocol()))
    body = property(lambda self: self._get("body", lambda r: r.body()))
    headers = property(lambda self: self._get("headers", lambda r: HTTPHeaders(r.headers())))
    path_args = property(lambda self: self._get("path_args", lambda r: r.path_args()))
    path_kwargs = property(lambda self: self._get("path_kwargs", lambda r: dict(r.path_kwargs())))

    @property
    def _argument_names(self):
        return self._get("argument_names", lambda r: r.argument_names())

    @property
    def arguments(self):
        return self._get("arguments", lambda r: _bytes_dict(self._argument_names, r.arguments))

    @property
    def query_arguments(self):
        return self._get("query_arguments", lambda r: _bytes_dict(self._argument_names, r.query_arguments))

    @property
    def body_arguments(self):
        return self._get("body_arguments", lambda r: _bytes_dict(self._argument_names, r.body_arguments))

    @property
    def files(self):
        def read(r):
            files = {}
            for f in r.files():
                files.setdefault(f.field, []).append(
                    HTTPFile(filename=f.filename, body=f.body, content_type=f.content_type)
                )
            return files

        return self._get("files", read)

    @property
    def cookies(self):
        return self._get("cookies", lambda r: {k: _Cookie(k, v) for k, v in r.cookies()})

    def full_url(self):
        return self.protocol + "://" + self.host + self.uri

    def __repr__(self):
        return "HTTPServerRequest(method=%r, uri=%r)" % (self.method, self.uri)


def _check(result_of_call, what):
    """Turns a host call's ``Err`` into the exception Tornado would raise."""
    try:
        return result_of_call()
    except _Err as error:
        raise ValueError("%s: %s" % (what, error.value)) from None


def _header_value(value):
    if isinstance(value, bytes):
        return value.decode("latin1")
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, datetime.datetime):
        return email.utils.format_datetime(value.astimezone(datetime.timezone.utc), usegmt=True)
    raise TypeError("unsupported header value %r" % (value,))


def _json_encode(value):
    # As tornado.escape.json_encode: `</` escaped so the JSON is safe inside HTML.
    return json.dumps(value).replace("</", "<\\/")


class RequestHandler(_WebHelpers):
    """Tornado's ``RequestHandler``: subclass it and define the verbs you serve.

        class ItemHandler(web.RequestHandler):
            def initialize(self, database):
                self.database = database

            async def get(self, item_id):
                self.write({"id": item_id})

    Every verb defaults to 405. A verb receives the route's regex groups
    (``*path_args``, or ``**path_kwargs`` for named groups). ``raise
    HTTPError(...)`` sends an error page through ``write_error``; any other
    exception is a 500 whose traceback goes to the host log, never to the
    client.
    """

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def __init__(self):
        self.request = None
        self.settings = {}
        self.path_args = []
        self.path_kwargs = {}
        self._reason = "OK"
        self._finished = False
        self._headers_written = False

    # -- lifecycle (override these) ------------------------------------------

    def initialize(self, **kwargs):
        """Receives the route's settings (``[route.settings]`` in waterspout.toml)."""

    def prepare(self):
        """Runs before the verb; finishing the response here skips the verb."""

    def on_finish(self):
        """Runs after the response was sent (for cleanup and logging)."""

    def on_connection_close(self):
        """Runs when the client hung up while this handler waited on the host
        (``pubsub.wait`` raised ``StreamClosedError``), after the verb
        returned; nothing more reaches the client."""

    def _unimplemented_method(self, *args, **kwargs):
        raise HTTPError(405)

    head = _unimplemented_method
    get = _unimplemented_method
    post = _unimplemented_method
    delete = _unimplemented_method
    patch = _unimplemented_method
    put = _unimplemented_method
    options = _unimplemented_method

    def write_error(self, status_code, **kwargs):
        """Writes the error page; override for custom pages (e.g. JSON).

        The response is already cleared and its status set; ``self._reason``
        holds the reason phrase and ``kwargs["exc_info"]`` the exception, when
        there was one.
        """
        self.finish(
            "<html><title>%(code)d: %(message)s</title><body>%(code)d: %(message)s</body></html>"
            % {"code": status_code, "message": self._reason}
        )

    # -- input -----------------------------------------------------------------

    def get_argument(self, name, default=_ARG_DEFAULT, strip=True):
        """The last value of a query or body argument.

        Without ``default``, a missing argument raises ``MissingArgumentError`` (400).
        """
        return self._get_argument(name, default, self.request.arguments, strip)

    def get_arguments(self, name, strip=True):
        """Every value of a query or body argument (maybe empty)."""
        return self._get_arguments(name, self.request.arguments, strip)

    def get_query_argument(self, name, default=_ARG_DEFAULT, strip=True):
        return self._get_argument(name, default, self.request.query_arguments, strip)

    def get_query_arguments(self, name, strip=True):
        return self._get_arguments(name, self.request.query_arguments, strip)

    def get_body_argument(self, name, default=_ARG_DEFAULT, strip=True):
        return self._get_argument(name, default, self.request.body_arguments, strip)

    def get_body_arguments(self, name, strip=True):
        return self._get_arguments(name, self.request.body_arguments, strip)

    def _get_argument(self, name, default, source, strip):
        values = self._get_arguments(name, source, strip)
        if not values:
            if default is _ARG_DEFAULT:
                raise MissingArgumentError(name)
            return default
        return values[-1]

    @staticmethod
    def _get_arguments(name, source, strip):
        values = []
        for raw in source.get(name, []):
            value = raw.decode("utf-8", "replace")
            values.append(value.strip() if strip else value)
        return values

    def decode_argument(self, value, name=None):
        return value.decode("utf-8") if isinstance(value, bytes) else value

    def get_cookie(self, name, default=None):
        """The value of a request cookie, or ``default``."""
        cookie = self.request.cookies.get(name)
        return cookie.value if cookie is not None else default

    @property
    def cookies(self):
        return self.request.cookies

    # -- output ------------------------------------------------------------------

    def set_status(self, status_code, reason=None):
        """Sets the status; an unknown code needs a ``reason`` (ValueError otherwise)."""
        _check(lambda: _response.set_status(status_code, reason), "set_status(%r)" % status_code)
        self._reason = reason if reason is not None else _reason_phrase(status_code)

    def get_status(self):
        return _response.get_status()

    def set_header(self, name, value):
        """Replaces a header; ``value`` may be str, bytes, int or datetime."""
        _check(lambda: _response.set_header(name, _header_value(value)), "set_header(%r)" % name)

    def add_header(self, name, value):
        """Adds a value to a header that may repeat."""
        _check(lambda: _response.add_header(name, _header_value(value)), "add_header(%r)" % name)

    def clear_header(self, name):
        _response.clear_header(name)

    def clear(self):
        """Resets the status, headers and body written so far."""
        _check(_response.clear, "clear()")
        self._reason = "OK"

    def write(self, chunk):
        """Appends to the body: str, bytes, or a dict (JSON, ``application/json``)."""
        if self._finished or _response.finished():
            raise RuntimeError("Cannot write() after finish()")
        if isinstance(chunk, dict):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            chunk = _json_encode(chunk)
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        elif not isinstance(chunk, (bytes, bytearray, memoryview)):
            message = "write() only accepts bytes, unicode, and dict objects"
            if isinstance(chunk, list):
                message += ". Lists not accepted for security reasons"
            raise TypeError(message)
        try:
            _response.write(chunk if type(chunk) is bytes else bytes(chunk))
        except _Err as error:
            raise ValueError("write(): %s" % (error.value,)) from None

    def flush(self, include_footers=False):
        """Sends the headers (first time) and the body so far as one chunk.
        Returns an awaitable that is already done: ``await self.flush()`` works."""
        _check(_response.flush, "flush()")
        self._headers_written = True
        return _Done()

    def finish(self, chunk=None):
        """Ends the response (after writing ``chunk``); later writes raise."""
        if self._finished or _response.finished():
            raise RuntimeError("finish() called twice")
        if chunk is not None:
            self.write(chunk)
        _check(_response.finish, "finish()")
        self._finished = True
        return _Done()

    def redirect(self, url, permanent=False, status=None):
        """Redirects (302; 301 when ``permanent``; or ``status``) and finishes."""
        if status is None:
            status = 301 if permanent else 302
        else:
            assert 300 <= status <= 399, "redirect status must be 3xx"
        _check(lambda: _response.redirect(url, status), "redirect(%r)" % url)
        self._finished = True

    def set_cookie(self, name, value, domain=None, expires=None, path="/",
                   expires_days=None, *, max_age=None, httponly=False, secure=False,
                   samesite=None, **kwargs):
        """Sets a cookie, with Tornado's keywords and defaults (``Path=/``)."""
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if max_age is None and expires_days is not None:
            max_age = int(expires_days * 86400)
        if max_age is None and isinstance(expires, datetime.datetime):
            now = datetime.datetime.now(expires.tzinfo or None)
            max_age = max(0, int((expires - now).total_seconds()))
        elif max_age is None and isinstance(expires, numbers.Real):
            max_age = max(0, int(expires - datetime.datetime.now().timestamp()))
        options = _response.CookieOptions(
            domain=domain,
            path=path,
            max_age=max_age,
            secure=bool(secure or kwargs.get("Secure")),
            http_only=bool(httponly or kwargs.get("HttpOnly") or kwargs.get("httponly")),
            same_site=samesite or kwargs.get("SameSite"),
        )
        _check(lambda: _response.set_cookie(name, value, options), "set_cookie(%r)" % name)

    def clear_cookie(self, name, path="/", domain=None, **kwargs):
        """Deletes a cookie by sending it expired."""
        _response.clear_cookie(name, path, domain)

    def send_error(self, status_code=500, **kwargs):
        """Replaces the response with the error page from ``write_error`` now.

        ``reason=`` replaces the standard phrase. Once headers were flushed the
        response can only be finished.
        """
        try:
            _response.clear()
        except _Err:
            from . import log

            log.error("cannot send error %d after headers were flushed", status_code)
            if not _response.finished():
                self.finish()
            return
        reason = kwargs.get("reason")
        if "exc_info" in kwargs and isinstance(kwargs["exc_info"][1], HTTPError):
            reason = reason or kwargs["exc_info"][1].reason
        self.set_status(status_code, reason=reason)
        _run(self.write_error(status_code, **kwargs))
        if not _response.finished():
            self.finish()

    # -- misc ----------------------------------------------------------------------

    def _bind(self, raw):
        self.request._bind(raw)


_asyncio_sleep_installed = False


def _run(result):
    """Drives an ``async def`` method's coroutine to completion.

    Host calls are synchronous in Waterspout's WIT, so whatever a handler
    awaits (``self.flush()``, another coroutine, ``asyncio.sleep(0)``) is
    done at once; ``asyncio.sleep(s)``, ``tornado.gen.sleep(s)`` and an
    ``AsyncHTTPClient().fetch`` wait in the host (the guest is suspended,
    the server is not). Awaiting something that would wait for an event
    loop (a pending future) is a RuntimeError.
    """
    if result is None or not hasattr(result, "__await__"):
        return result
    global _asyncio_sleep_installed
    if not _asyncio_sleep_installed:
        # `await asyncio.sleep(s)` waits on the host's timer (no event loop here).
        _asyncio_sleep_installed = _timers.install_asyncio_sleep()
    iterator = result.__await__()
    try:
        while True:
            yielded = iterator.send(None)
            if yielded is not None:
                iterator.close()
                raise RuntimeError(
                    "awaited %r, which waits for an event loop; Waterspout runs "
                    "each handler call to completion (host calls complete at once)" % (yielded,)
                )
    except StopIteration as stop:
        return stop.value
