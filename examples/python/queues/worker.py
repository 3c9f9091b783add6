"""A background worker (Tornado's `async def worker(): async for item in q`):
each job from queue `jobs` comes back on queue `results` as `JOB@python#N`.
"""

from waterspout.queues import Queue
from waterspout.worker import Worker

jobs = Queue("jobs")
results = Queue("results")


class Echo(Worker):
    async def run(self):
        async for job in jobs:
            try:
                await results.put("%s@python#%d" % (job, self.index))
            finally:
                jobs.task_done()
