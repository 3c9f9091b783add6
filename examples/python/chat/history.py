"""The chat's message cache (the demo's ``MessageBuffer.cache``), kept in the
kv store so every handler instance, and a restart with ``kv_persist``, sees
the same history.

One kv key, ``messages``, holds the newest ``CACHE_SIZE`` messages as a JSON
list, oldest first. ``add`` updates it with ``compare_and_swap`` in a retry
loop (two posts at once: one retries on the other's list, nothing is lost),
then publishes the message's id on the pub/sub topic ``chat``: pub/sub only
wakes the long polls, which read the messages from kv (the demo's
``cond.notify_all()``), and the message goes to every WebSocket in the group.
"""

import json

from waterspout import groups, kv, pubsub

KEY = "messages"
TOPIC = "chat"
GROUP = "chat"
CACHE_SIZE = 200
# The longest message body (characters): 200 of them, escaped twice (body
# and html), stay well within one kv value (4 MiB).
MAX_BODY = 1000


def cached():
    """The cached messages, oldest first."""
    raw = kv.get(KEY)
    return json.loads(raw) if raw else []


def add(message):
    """Stores `message` in the cache, wakes the long polls, sends it to the sockets."""
    while True:
        old = kv.get(KEY)
        cache = json.loads(old) if old else []
        cache.append(message)
        del cache[:-CACHE_SIZE]
        if kv.compare_and_swap(KEY, old, json.dumps(cache, ensure_ascii=False, separators=(",", ":"))):
            break
    pubsub.publish(TOPIC, message["id"])
    groups.broadcast(GROUP, message)


def wake_cursor():
    """The newest wake-up so far: take it *before* reading the cache, so a
    message stored after the read is published after it and wakes the wait."""
    return pubsub.latest(TOPIC)


def wait(after, timeout):
    """Waits for a wake-up after `after`; the newest cursor, or None at the timeout."""
    woken = pubsub.wait(TOPIC, after=after, timeout=timeout)
    return woken[-1].cursor if woken else None
