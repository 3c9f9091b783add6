"""``tornado.iostream``'s ``StreamClosedError``: what ``waterspout.pubsub.wait``
raises when the client hangs up during a long poll (the handler's
``on_connection_close()`` runs after the verb returns)."""

from waterspout.pubsub import StreamClosedError

__all__ = ["StreamClosedError"]
