"""``tornado.httputil``'s request and header types."""

from waterspout.web import HTTPFile, HTTPHeaders, HTTPServerRequest  # noqa: F401

from ._unsupported import unsupported


def __getattr__(name):
    raise unsupported("tornado.httputil", name)
