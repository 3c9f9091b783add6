"""Outbound HTTP, as Tornado's ``tornado.httpclient``.

    from waterspout.httpclient import AsyncHTTPClient

    class MainHandler(web.RequestHandler):
        async def get(self):
            response = await AsyncHTTPClient().fetch("https://api.example.com/items")
            self.write(response.body)

A handler may reach only the hosts its manifest section lists in
``allowed_outbound_hosts`` (none by default). While the host fetches, the
guest is suspended and the server serves others. ``fetch`` raises
``HTTPClientError`` for a response outside 200-299 (unless
``raise_error=False``), and ``FetchError`` (an ``HTTPClientError`` with code
599, as Tornado's curl client) when there is no response: ``kind`` is
``"denied"``, ``"bad-url"``, ``"dns"``, ``"connect"``, ``"timeout"``,
``"too-large"`` or ``"other"``.

Several fetches at once: ``await gen.multi([client.fetch(a), client.fetch(b)])``
(``tornado.gen.multi``) or ``fetch_all([...])`` run them concurrently in the host.
"""

import base64

from wit_world.imports import http_client as _raw
from componentize_py_types import Err as _Err, Ok as _Ok

from .web import HTTPHeaders

__all__ = ["AsyncHTTPClient", "HTTPClient", "HTTPRequest", "HTTPResponse", "HTTPClientError",
           "HTTPError", "FetchError", "HTTPTimeoutError", "fetch", "fetch_all"]


class HTTPRequest:
    """Tornado's ``HTTPRequest``; times are seconds, unset options take
    Tornado's defaults (20 s timeouts, redirects followed up to 5)."""

    def __init__(self, url, method="GET", headers=None, body=None, auth_username=None,
                 auth_password=None, connect_timeout=None, request_timeout=None,
                 follow_redirects=None, max_redirects=None, user_agent=None,
                 max_body_size=None, **_ignored):
        self.url = url
        self.method = method.upper()
        if isinstance(headers, HTTPHeaders):
            self.headers = headers
        else:
            self.headers = HTTPHeaders((headers or {}).items())
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body
        if auth_username is not None:
            token = "%s:%s" % (auth_username, auth_password or "")
            self.headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        if user_agent is not None:
            self.headers["User-Agent"] = user_agent
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.max_body_size = max_body_size

    def _raw(self):
        ms = lambda s: None if s is None else max(0, int(s * 1000))  # noqa: E731
        return _raw.Request(
            method=self.method,
            url=self.url,
            headers=list(self.headers.get_all()),
            body=None if self.body is None else bytes(self.body),
            connect_timeout_ms=ms(self.connect_timeout),
            request_timeout_ms=ms(self.request_timeout),
            follow_redirects=self.follow_redirects,
            max_redirects=self.max_redirects,
            max_response_size=self.max_body_size,
        )


class HTTPClientError(Exception):
    """Tornado's ``HTTPClientError`` (also ``HTTPError``): ``code``, ``message``, ``response``."""

    def __init__(self, code, message=None, response=None):
        self.code = code
        self.message = message or _reason(code)
        self.response = response
        super().__init__(code, self.message, response)

    def __str__(self):
        return "HTTP %d: %s" % (self.code, self.message)


HTTPError = HTTPClientError


class FetchError(HTTPClientError):
    """No response at all (code 599): ``kind`` says why (``"denied"``,
    ``"bad-url"``, ``"dns"``, ``"connect"``, ``"timeout"``, ``"too-large"``, ``"other"``)."""

    def __init__(self, kind, message):
        super().__init__(599, "%s: %s" % (kind, message))
        self.kind = kind


HTTPTimeoutError = FetchError


class HTTPResponse:
    """Tornado's ``HTTPResponse``."""

    def __init__(self, request, raw):
        self.request = request
        self.code = raw.status
        self.reason = raw.reason
        self.headers = HTTPHeaders(raw.headers)
        self.body = bytes(raw.body)
        self.effective_url = raw.effective_url
        self.request_time = raw.request_time_ms / 1000.0
        self.error = None
        if self.code < 200 or self.code >= 300:
            self.error = HTTPClientError(self.code, self.reason, self)

    @property
    def buffer(self):
        import io

        return io.BytesIO(self.body)

    def rethrow(self):
        """Raises ``error`` if there is one."""
        if self.error:
            raise self.error

    def __repr__(self):
        return "HTTPResponse(code=%d, effective_url=%r)" % (self.code, self.effective_url)


_KINDS = {
    _raw.FetchError_Denied: "denied",
    _raw.FetchError_BadUrl: "bad-url",
    _raw.FetchError_Dns: "dns",
    _raw.FetchError_Connect: "connect",
    _raw.FetchError_Timeout: "timeout",
    _raw.FetchError_TooLarge: "too-large",
    _raw.FetchError_Other: "other",
}


def _fetch_error(value):
    kind = _KINDS.get(type(value), "other")
    if kind == "too-large":
        return FetchError(kind, "the response body is larger than %d bytes" % value.value)
    return FetchError(kind, value.value)


def _reason(code):
    try:
        from . import web

        return web._reason_phrase(code)
    except Exception:  # noqa: BLE001
        return "Unknown"


def _request(request, kwargs):
    if isinstance(request, HTTPRequest):
        return request
    return HTTPRequest(str(request), **kwargs)


def _finish(request, raw_result, raise_error):
    if isinstance(raw_result, _Err):
        raise _fetch_error(raw_result.value)
    if isinstance(raw_result, _Ok):  # an item of fetch-all's list
        raw_result = raw_result.value
    response = HTTPResponse(request, raw_result)
    if response.error and raise_error:
        raise response.error
    return response


class Fetch:
    """What ``fetch`` returns: awaiting it runs the fetch (the guest waits,
    the server does not); ``gen.multi`` runs several at once."""

    def __init__(self, request, raise_error):
        self.request = request
        self.raise_error = raise_error

    def result(self):
        try:
            raw = _raw.fetch(self.request._raw())
        except _Err as e:
            raise _fetch_error(e.value) from None
        return _finish(self.request, raw, self.raise_error)

    def __await__(self):
        return self.result()
        yield  # noqa: unreachable — makes this a generator


def fetch(request, raise_error=True, **kwargs):
    """``fetch(url_or_request, raise_error=True, **kwargs)``: an awaitable
    of the ``HTTPResponse``."""
    return Fetch(_request(request, kwargs), raise_error)


def fetch_all(fetches):
    """Runs ``Fetch`` objects (or URLs) at once; their responses in order.
    An item that failed raises its error when the list is built, as
    ``gen.multi`` does."""
    fetches = [f if isinstance(f, Fetch) else fetch(f) for f in fetches]
    results = _raw.fetch_all([f.request._raw() for f in fetches])
    return [_finish(f.request, r, f.raise_error) for f, r in zip(fetches, results)]


class AsyncHTTPClient:
    """Tornado's ``AsyncHTTPClient``: ``await AsyncHTTPClient().fetch(url)``.

    ``defaults`` (keyword arguments of ``HTTPRequest``) apply to every fetch.
    """

    def __init__(self, defaults=None, **kwargs):
        self.defaults = dict(defaults or {})

    @classmethod
    def configure(cls, impl, **kwargs):
        pass

    def fetch(self, request, raise_error=True, **kwargs):
        if not isinstance(request, HTTPRequest):
            merged = dict(self.defaults)
            merged.update(kwargs)
            request = HTTPRequest(str(request), **merged)
        return Fetch(request, raise_error)

    def close(self):
        pass


class HTTPClient:
    """Tornado's blocking ``HTTPClient``: ``HTTPClient().fetch(url)`` returns the response."""

    def __init__(self, **kwargs):
        self._client = AsyncHTTPClient(**kwargs)

    def fetch(self, request, **kwargs):
        return self._client.fetch(request, **kwargs).result()

    def close(self):
        pass
