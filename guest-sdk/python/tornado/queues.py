"""``tornado.queues`` over Waterspout's named queues (see ``waterspout.queues``).

The difference from Tornado: a queue is app-wide and named, so
``Queue("urls")`` takes the name of a ``[queue.urls]`` section of
``waterspout.toml`` (its ``max_size`` is the bound) instead of ``maxsize``.
"""

from waterspout.queues import Queue, QueueEmpty, QueueFull, QueueNotGranted, QueueStopping

__all__ = ["Queue", "QueueEmpty", "QueueFull", "QueueNotGranted", "QueueStopping"]
