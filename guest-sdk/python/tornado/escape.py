"""``tornado.escape``'s JSON and URL helpers."""

import json
import urllib.parse

from ._unsupported import unsupported


def json_encode(value):
    return json.dumps(value).replace("</", "<\\/")


def json_decode(value):
    return json.loads(value)


def url_escape(value, plus=True):
    quote = urllib.parse.quote_plus if plus else urllib.parse.quote
    return quote(value)


def url_unescape(value, encoding="utf-8", plus=True):
    unquote = urllib.parse.unquote_plus if plus else urllib.parse.unquote
    return unquote(value, encoding=encoding)


def __getattr__(name):
    raise unsupported("tornado.escape", name)
