"""Tornado's web spider (demos/webspider/webspider.py) as a service:
``GET /crawl?url=BASE&concurrency=10`` crawls every page under BASE and
answers ``{"fetched": [...], "dead": [...], "concurrency": N}``.

The demo's ``main()`` becomes this handler: it puts BASE on the queue
``spider`` and waits on ``q.join()``; the demo's ``worker()`` coroutines are
the ``[worker.spider]`` background workers (worker.py), which take URLs,
fetch them with ``AsyncHTTPClient`` and put the links under BASE back.

What changed from Tornado, because the state lives in the host:

- the demo's ``fetching`` / ``fetched`` / ``dead`` sets are kv keys
  ``crawl:ID:url:URL`` (value ``fetching``, ``fetched`` or ``dead``), claimed
  with ``compare_and_swap`` so two workers never fetch one URL;
- every crawl gets an id (``kv.increment("crawls")``) that namespaces its
  keys, so two crawls may run at once; ``q.join()`` is queue-wide, so a crawl
  answers when the queue is idle (with two at once, when both are done);
- ``fetched`` lists every URL the crawl visited, including those that
  failed (Tornado's ``fetching == fetched | dead``); ``dead`` the failures.
"""

from datetime import timedelta
from urllib.parse import urlsplit

from tornado import queues, web
from waterspout import kv

q = queues.Queue("spider")

# A crawl's answer waits at most this long (below the handler's timeout_ms).
JOIN_TIMEOUT = timedelta(seconds=100)


def crawl_prefix(crawl):
    return "crawl:%d:" % crawl


class CrawlHandler(web.RequestHandler):
    def initialize(self, workers="10"):
        # [route.settings] workers: the manifest's [worker.spider] concurrency.
        self.workers = int(workers)

    async def get(self):
        base_url = self.get_argument("url")
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            raise web.HTTPError(400, reason="url must be an absolute http(s) URL")
        try:
            concurrency = int(self.get_argument("concurrency", str(self.workers)))
        except ValueError:
            raise web.HTTPError(400, reason="concurrency must be an integer") from None
        if concurrency < 1:
            raise web.HTTPError(400, reason="concurrency must be at least 1")
        # The workers are fixed by the manifest: more than it runs is capped.
        concurrency = min(concurrency, self.workers)

        crawl = kv.increment("crawls")
        await q.put({"crawl": crawl, "base": base_url, "url": base_url, "concurrency": concurrency})
        try:
            await q.join(timeout=JOIN_TIMEOUT)
        except TimeoutError:
            raise web.HTTPError(504, reason="the crawl did not finish in time") from None

        prefix = crawl_prefix(crawl) + "url:"
        fetched, dead = [], []
        for key in kv.list_keys(prefix):
            url = key[len(prefix):]
            fetched.append(url)
            if kv.get_str(key) == "dead":
                dead.append(url)
        for key in kv.list_keys(crawl_prefix(crawl)):
            kv.delete(key)
        self.write({"fetched": fetched, "dead": dead, "concurrency": concurrency})
