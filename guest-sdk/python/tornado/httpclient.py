"""Tornado's ``tornado.httpclient`` over Waterspout's http-client service
(``waterspout.httpclient``): ``AsyncHTTPClient().fetch(request_or_url,
raise_error=True, **kwargs)`` → ``HTTPResponse``; ``HTTPRequest``,
``HTTPClientError`` (also ``HTTPError``), the blocking ``HTTPClient``.
"""

from waterspout.httpclient import (  # noqa: F401 — re-exported under Tornado's names
    AsyncHTTPClient,
    FetchError,
    HTTPClient,
    HTTPClientError,
    HTTPError,
    HTTPRequest,
    HTTPResponse,
    HTTPTimeoutError,
)

from ._unsupported import unsupported


def __getattr__(name):
    raise unsupported("tornado.httpclient", name)
