"""Several Tornado-style handler classes in one component.

Run it from the repository root:
    cargo run -p waterspout -- serve examples/python/handlers
Each route in waterspout.toml picks its class with ``class = "Name"``.
"""

import asyncio

from waterspout import web


class MainHandler(web.RequestHandler):
    def get(self):
        self.write("main handler")


class ItemHandler(web.RequestHandler):
    def initialize(self, prefix):
        self.prefix = prefix

    def get(self, item_id):
        self.write(self.prefix + item_id)


class PostHandler(web.RequestHandler):
    def get(self, user, post):
        self.write({"user": user, "post": post})


async def count_steps(n):
    steps = 0
    for _ in range(n):
        await asyncio.sleep(0)
        steps += 1
    return steps


class AsyncHandler(web.RequestHandler):
    async def get(self):
        steps = await count_steps(3)
        self.write("awaited %d steps" % steps)
        await self.flush()


class TeapotHandler(web.RequestHandler):
    def get(self):
        raise web.HTTPError(418, "teapot log detail %d", 42, reason="I Am A Teapot")


class CrashHandler(web.RequestHandler):
    def get(self):
        secret = {"password": "hunter2"}
        return secret["missing key"]


class MaintenanceHandler(web.RequestHandler):
    def get(self):
        self.send_error(503, reason="Down For Maintenance")
