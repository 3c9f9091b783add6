"""Queue calls over HTTP (tornado.queues in a handler): the protocol the
queue tests speak to every language. GET /put?q=NAME&item=X, /get?q=NAME,
/task_done?q=NAME, /join?q=NAME, /qsize?q=NAME, each with an optional
`timeout` in ms (0: the _nowait form). Answers `ok`, `item:X`, `size:N` or
`error:KIND`.
"""

from tornado import queues, web


def _kind(error):
    if isinstance(error, queues.QueueNotGranted):
        return "not-granted"
    if isinstance(error, queues.QueueFull):
        return "full"
    if isinstance(error, queues.QueueEmpty):
        return "empty"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ValueError) and "too many" in str(error):
        return "too-many-task-done"
    raise error


class QueueHandler(web.RequestHandler):
    async def get(self, op):
        q = queues.Queue(self.get_argument("q"))
        timeout = self.get_argument("timeout", None)
        seconds = None if timeout is None else int(timeout) / 1000
        try:
            if op == "put":
                item = self.get_argument("item")
                if seconds == 0:
                    q.put_nowait(item)
                else:
                    await q.put(item, timeout=seconds)
                answer = "ok"
            elif op == "get":
                item = q.get_nowait() if seconds == 0 else await q.get(timeout=seconds)
                answer = "item:%s" % item
            elif op == "task_done":
                q.task_done()
                answer = "ok"
            elif op == "join":
                await q.join(timeout=seconds)
                answer = "ok"
            elif op == "qsize":
                answer = "size:%d" % q.qsize()
            else:
                raise web.HTTPError(404)
        except (queues.QueueNotGranted, queues.QueueFull, queues.QueueEmpty, TimeoutError, ValueError) as error:
            answer = "error:%s" % _kind(error)
        self.write(answer)
