"""Background workers (Tornado's ``for _ in range(concurrency): worker()``).

Subclass ``Worker`` and loop over a queue in ``run``; the manifest runs
``concurrency`` instances of the component::

    from waterspout.queues import Queue
    from waterspout.worker import Worker

    q = Queue("jobs")

    class JobWorker(Worker):
        async def run(self):
            async for job in q:          # ends when the worker must stop
                try:
                    handle(job)
                finally:
                    q.task_done()

``waterspout.toml``::

    [handler.jobs]
    wasm = "jobs.wasm"
    queues = ["jobs"]

    [worker.jobs]
    handler = "jobs"
    concurrency = 4

``self.settings`` holds ``[worker.NAME.settings]`` plus ``waterspout:worker``
(the section's name) and ``waterspout:worker-index``. When ``run`` returns
after its queue said stop (a new version was uploaded, or shutdown), the
host starts the new version or stops; an exception is logged with its
traceback and the worker restarted with backoff.
"""

__all__ = ["Worker"]


class Worker:
    """A background worker: override ``run`` (``async def`` allowed)."""

    settings = None

    def initialize(self, **settings):
        """Called first with the worker's settings (as keyword arguments)."""

    def run(self):
        raise NotImplementedError("a Worker subclass must define run()")

    @property
    def index(self):
        """Which of the ``concurrency`` instances this is (0-based)."""
        return int((self.settings or {}).get("waterspout:worker-index", 0))
