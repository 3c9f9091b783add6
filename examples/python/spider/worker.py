"""The spider's workers: the demo's ``worker()`` and ``fetch_url()``.

Each of the ``[worker.spider]`` instances loops over the queue ``spider``;
an item is ``{"crawl", "base", "url", "concurrency"}``. As in the demo, a
URL already being fetched is skipped, a page's links (fragment removed, made
absolute) are put back when they are under the base URL, and a failure
(any exception, an HTTP error status included) marks the URL dead.
"""

from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin

from tornado import gen, httpclient, queues
from waterspout import kv, log
from waterspout.worker import Worker

q = queues.Queue("spider")

# A crawl's keys expire by themselves if its handler never cleans them up.
KEY_TTL = 3600
# The longest URL kept (a kv key is at most 1 KiB).
MAX_URL = 900


async def get_links_from_url(url):
    """Download the page at `url` and parse it for links.

    Returned links have had the fragment after `#` removed, and have been made
    absolute so, e.g. the URL 'gen.html#tornado.gen.coroutine' becomes
    'http://www.tornadoweb.org/en/stable/gen.html'.
    """
    response = await httpclient.AsyncHTTPClient().fetch(url)
    log.info("fetched %s", url)

    html = response.body.decode(errors="ignore")
    return [urljoin(url, remove_fragment(new_url)) for new_url in get_links(html)]


def remove_fragment(url):
    pure_url, frag = urldefrag(url)
    return pure_url


def get_links(html):
    class URLSeeker(HTMLParser):
        def __init__(self):
            HTMLParser.__init__(self)
            self.urls = []

        def handle_starttag(self, tag, attrs):
            href = dict(attrs).get("href")
            if href and tag == "a":
                self.urls.append(href)

    url_seeker = URLSeeker()
    url_seeker.feed(html)
    return url_seeker.urls


async def acquire_slot(crawl, concurrency):
    """At most `concurrency` fetches of one crawl at once (a kv counter)."""
    active = "crawl:%d:active" % crawl
    while kv.increment(active) > concurrency:
        kv.increment(active, -1)
        await gen.sleep(0.01)


def release_slot(crawl):
    kv.increment("crawl:%d:active" % crawl, -1)


async def fetch_url(item):
    crawl, base_url, current_url = item["crawl"], item["base"], item["url"]
    key = "crawl:%d:url:%s" % (crawl, current_url)
    # The demo's `if current_url in fetching: return; fetching.add(current_url)`,
    # atomic across the workers.
    if not kv.compare_and_swap(key, None, "fetching", ttl=KEY_TTL):
        return

    log.info("fetching %s", current_url)
    await acquire_slot(crawl, item["concurrency"])
    try:
        urls = await get_links_from_url(current_url)
    except Exception as e:
        log.info("Exception: %s %s", e, current_url)
        kv.set(key, "dead", ttl=KEY_TTL)
        return
    finally:
        release_slot(crawl)
    kv.set(key, "fetched", ttl=KEY_TTL)

    for new_url in urls:
        # Only follow links beneath the base URL
        if new_url.startswith(base_url) and len(new_url) <= MAX_URL:
            await q.put(dict(item, url=new_url))


class Spider(Worker):
    async def run(self):
        async for item in q:
            try:
                await fetch_url(item)
            except Exception as e:
                log.error("Exception: %s %r", e, item)
            finally:
                q.task_done()
