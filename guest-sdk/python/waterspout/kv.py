"""The app's key-value store: keys in namespaces, bytes as values, TTLs,
atomic ``increment`` and ``compare_and_swap``.

    from waterspout import kv

    kv.set("greeting", "hello")              # str values are stored as UTF-8
    kv.get("greeting")                       # b"hello" (None when absent)
    kv.increment("visits")                   # 1, 2, 3…
    kv.set("session:ann", "{}", ttl=3600)    # seconds, as Tornado's timeouts
    kv.compare_and_swap("leader", None, "me")  # True only if it was absent
    kv.list_keys("user:")                    # ["user:1", "user:2"]
    kv.namespace("sessions").get("ann")      # another granted namespace

A handler may use only the namespaces its manifest section grants
(``kv = ["chat", "sessions"]``); the module functions use the first. A
namespace not granted raises ``KvError`` with ``kind == "denied"``.
"""

from wit_world.imports import kv as _raw
from componentize_py_types import Err as _Err

__all__ = ["KvError", "Namespace", "namespace", "get", "get_str", "set", "delete",
           "increment", "compare_and_swap", "list_keys"]


class KvError(Exception):
    """A kv call failed: ``kind`` is ``"denied"``, ``"invalid"``,
    ``"not-a-number"`` or ``"backend"``; the message says why."""

    def __init__(self, kind, message):
        super().__init__("kv %s: %s" % (kind, message))
        self.kind = kind
        self.message = message


_KINDS = {
    _raw.KvError_Denied: "denied",
    _raw.KvError_Invalid: "invalid",
    _raw.KvError_NotANumber: "not-a-number",
    _raw.KvError_Backend: "backend",
}


def _call(fn, *args):
    try:
        return fn(*args)
    except _Err as e:
        raise KvError(_KINDS.get(type(e.value), "backend"), e.value.value) from None


def _bytes(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def _ms(seconds):
    return None if seconds is None else max(0, int(seconds * 1000))


class Namespace:
    """One granted namespace (``""``: the handler's first)."""

    def __init__(self, name=""):
        self.name = name

    def get(self, key, default=None):
        """The value of ``key`` as bytes, or ``default`` when absent or expired."""
        value = _call(_raw.get, self.name, key)
        return default if value is None else bytes(value)

    def get_str(self, key, default=None):
        """The value of ``key`` decoded as UTF-8, or ``default``."""
        value = self.get(key)
        return default if value is None else value.decode("utf-8", "replace")

    def set(self, key, value, ttl=None):
        """Stores ``value`` (bytes or str); with ``ttl`` (seconds) it expires."""
        _call(_raw.set, self.name, key, _bytes(value), _ms(ttl))

    def delete(self, key):
        """Removes ``key``; True when it was there."""
        return _call(_raw.delete, self.name, key)

    def increment(self, key, delta=1):
        """Adds ``delta`` to the integer under ``key`` (absent: 0); the new value."""
        return _call(_raw.increment, self.name, key, int(delta))

    def compare_and_swap(self, key, expected, value, ttl=None):
        """Sets ``key`` to ``value`` only if it holds ``expected`` (None: only
        if absent). True when it was set; atomic across requests."""
        expected = None if expected is None else _bytes(expected)
        return _call(_raw.compare_and_swap, self.name, key, expected, _bytes(value), _ms(ttl))

    def list_keys(self, prefix="", limit=None):
        """The keys starting with ``prefix``, sorted, at most ``limit``."""
        return list(_call(_raw.list_keys, self.name, prefix, limit))


def namespace(name):
    """A namespace the handler was granted, by name."""
    return Namespace(name)


_default = Namespace("")
get = _default.get
get_str = _default.get_str
set = _default.set
delete = _default.delete
increment = _default.increment
compare_and_swap = _default.compare_and_swap
list_keys = _default.list_keys
