"""The host services from Python: kv, timers and Tornado's AsyncHTTPClient.

Serve it from the repository root: `cargo run -p waterspout -- serve examples/python/services`.
"""

import asyncio
import json

from tornado import gen, httpclient, web
from waterspout import kv


class KvHandler(web.RequestHandler):
    """GET /kv?op=set&key=k&value=v (op: get, set, incr, cas, delete, list)."""

    def get(self):
        op = self.get_argument("op")
        key = self.get_argument("key", "")
        ns = kv.namespace(self.get_argument("ns", ""))
        try:
            # `n`: get or set repeated n times (the benchmark's kv calls per second).
            repeat = max(1, int(self.get_argument("n", "1")))
            if op == "get":
                for _ in range(repeat):
                    value = ns.get_str(key, "NONE")
                self.write(value)
            elif op == "set":
                ttl = self.get_argument("ttl", None)
                value = self.get_argument("value")
                for _ in range(repeat):
                    ns.set(key, value, ttl=float(ttl) if ttl else None)
                self.write("OK")
            elif op == "incr":
                self.write(str(ns.increment(key, int(self.get_argument("delta", "1")))))
            elif op == "cas":
                won = ns.compare_and_swap(key, self.get_argument("expected", None), self.get_argument("value"))
                self.write("won" if won else "lost")
            elif op == "delete":
                self.write(str(ns.delete(key)))
            elif op == "list":
                self.write(",".join(ns.list_keys(self.get_argument("prefix", ""))))
            else:
                raise web.HTTPError(400)
        except kv.KvError as e:
            self.write("ERR %s: %s" % (e.kind, e.message))


class SleepHandler(web.RequestHandler):
    """GET /sleep?s=0.2 → slept with asyncio.sleep then tornado.gen.sleep."""

    async def get(self):
        seconds = float(self.get_argument("s", "0.1"))
        await asyncio.sleep(seconds / 2)
        await gen.sleep(seconds / 2)
        self.write("slept %s" % seconds)


class FetchHandler(web.RequestHandler):
    """GET /fetch?url=U → JSON {code, body, effective_url}; errors as
    {error, code, kind}. ?raise_error=0 keeps a 4xx/5xx as a response."""

    async def get(self):
        client = httpclient.AsyncHTTPClient()
        raise_error = self.get_argument("raise_error", "1") == "1"
        try:
            response = await client.fetch(self.get_argument("url"), raise_error=raise_error,
                                          request_timeout=float(self.get_argument("timeout", "10")))
            self.write({"code": response.code, "body": response.body.decode(),
                        "effective_url": response.effective_url})
        except httpclient.HTTPClientError as e:
            self.write({"error": str(e), "code": e.code, "kind": getattr(e, "kind", None)})


class FetchAllHandler(web.RequestHandler):
    """GET /fetch-all?url=A&url=B → the bodies, fetched at once with gen.multi."""

    async def get(self):
        client = httpclient.AsyncHTTPClient()
        responses = await gen.multi([client.fetch(u) for u in self.get_arguments("url")])
        self.write(json.dumps([r.body.decode() for r in responses]))
