"""Tornado's web helpers for handlers: signed cookies, XSRF tokens, templates,
URLs, ``current_user`` and ``@authenticated``. The host does the work (the
``cookie_secret`` never reaches the guest) through the ``web`` interface.
"""

import datetime
import functools
import json
import urllib.parse

from wit_world.imports import web as _web

from componentize_py_types import Err as _Err


def _describe(error):
    """A ``web-error`` variant as text."""
    name = type(error).__name__.split("_", 1)[-1]
    value = getattr(error, "value", None)
    messages = {
        "NoCookieSecret": "the app has no [app] cookie_secret",
        "NoTemplatePath": "the app has no [app] template_path",
    }
    return messages.get(name) or ("%s: %s" % (name, value) if value is not None else name)


def _call(fn, what, *args):
    try:
        return fn(*args)
    except _Err as error:
        raise ValueError("%s: %s" % (what, _describe(error.value))) from None


def _utf8(value):
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


class SignedCookies:
    """``get_signed_cookie`` and friends, shared by request and WebSocket handlers."""

    def create_signed_value(self, name, value, version=None):
        """Tornado's ``create_signed_value``: bytes, signed with the app's secret."""
        return _call(_web.create_signed_value, "create_signed_value(%r)" % name, name, _utf8(value)).encode()

    def get_signed_cookie(self, name, value=None, max_age_days=31, min_version=None):
        """The cookie's value (bytes) if it was signed by this app for ``name``
        and is at most ``max_age_days`` old; otherwise ``None``."""
        if value is None:
            return _call(_web.get_signed_cookie, "get_signed_cookie(%r)" % name,
                         name, float(max_age_days), min_version)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return _call(_web.decode_signed_value, "get_signed_cookie(%r)" % name,
                     name, value, float(max_age_days), min_version)

    get_secure_cookie = get_signed_cookie  # Tornado's older name

    @property
    def current_user(self):
        """The signed-in user: ``get_current_user()``'s result, cached for the request."""
        if not hasattr(self, "_current_user"):
            self._current_user = self.get_current_user()
        return self._current_user

    @current_user.setter
    def current_user(self, value):
        self._current_user = value

    def get_current_user(self):
        """Override to find the user, e.g. ``return self.get_signed_cookie("user")``."""
        return None


class WebHelpers(SignedCookies):
    """The response side: setting signed cookies, XSRF, templates, URLs."""

    def set_signed_cookie(self, name, value, expires_days=30, version=None, **kwargs):
        """Signs and timestamps a cookie so it cannot be forged (Tornado's format)."""
        self.set_cookie(name, self.create_signed_value(name, value, version=version),
                        expires_days=expires_days, **kwargs)

    set_secure_cookie = set_signed_cookie  # Tornado's older name

    @property
    def xsrf_token(self):
        """This page's masked XSRF token (bytes); sets the ``_xsrf`` cookie if needed."""
        return _web.xsrf_token().encode()

    def xsrf_form_html(self):
        """``<input type="hidden" name="_xsrf" value="…"/>`` for a form."""
        return _web.xsrf_form_html()

    def check_xsrf_cookie(self):
        """The host checks XSRF (``xsrf_cookies = true``) before ``prepare``."""

    def get_login_url(self):
        """The app's ``login_url``."""
        url = _web.login_url()
        if url is None:
            raise Exception("You must define the 'login_url' setting in your application "
                            "to use @tornado.web.authenticated")
        return url

    def get_template_namespace(self):
        """What every template sees besides the keywords (JSON-serializable)."""
        request = self.request
        return {
            "current_user": self.current_user,
            "request": {
                "method": request.method, "uri": request.uri, "path": request.path,
                "query": request.query, "host": request.host, "protocol": request.protocol,
                "remote_ip": request.remote_ip,
            },
        }

    def render_string(self, template_name, **kwargs):
        """Renders a template of the app's ``template_path`` (bytes)."""
        from .web import HTTPError

        namespace = self.get_template_namespace()
        namespace.update(kwargs)
        context = json.dumps(namespace, default=_json_default)
        try:
            return _web.render_string(template_name, context).encode("utf-8")
        except _Err as error:
            raise HTTPError(500, "render(%r): %s", template_name, _describe(error.value)) from None

    def render(self, template_name, **kwargs):
        """Renders the template and finishes the response."""
        html = self.render_string(template_name, **kwargs)
        return self.finish(html)

    def reverse_url(self, name, *args):
        """The path of the route named ``name`` in waterspout.toml, its groups filled."""
        url = _web.reverse_url(name, [a if isinstance(a, str) else str(a) for a in args])
        if url is None:
            raise KeyError("%s not found in named urls" % name)
        return url

    def static_url(self, path, include_host=None, **kwargs):
        url = _web.static_url(path)
        if include_host:
            url = self.request.protocol + "://" + self.request.host + url
        return url


def authenticated(method):
    """Tornado's ``@tornado.web.authenticated``: without ``current_user``, GET
    and HEAD redirect to ``login_url?next=…``; other methods get 403."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.current_user:
            from .web import HTTPError

            if self.request.method in ("GET", "HEAD"):
                url = self.get_login_url()
                if "?" not in url:
                    if urllib.parse.urlsplit(url).scheme:
                        next_url = self.request.full_url()
                    else:
                        next_url = self.request.uri
                    url += "?" + urllib.parse.urlencode(dict(next=next_url))
                self.redirect(url)
                return None
            raise HTTPError(403)
        return method(self, *args, **kwargs)

    return wrapper
