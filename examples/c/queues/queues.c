/* Queue calls over HTTP (Tornado's queues in a handler): the protocol the
 * queue tests speak to every language. GET /put?q=NAME&item=X, /get?q=NAME,
 * /task_done?q=NAME, /join?q=NAME, /qsize?q=NAME, each with an optional
 * `timeout` in ms (0: the nowait form). Answers `ok`, `item:X`, `size:N` or
 * `error:KIND`. */
#include <stdlib.h>
#include <string.h>

#include "waterspout.h"

static int queue_get(ws_request_t req) {
    const char *name = ws_get_argument(req, "q", NULL);
    if (!name)
        return ws_missing_argument("q");
    const char *raw = ws_get_argument(req, "timeout", NULL);
    long timeout = raw ? atol(raw) : WS_WAIT;
    const char *path = ws_request_path(req);
    int status;
    if (strcmp(path, "/put") == 0) {
        const char *item = ws_get_argument(req, "item", NULL);
        if (!item)
            return ws_missing_argument("item");
        status = ws_queue_put_text(name, item, timeout);
    } else if (strcmp(path, "/get") == 0) {
        const char *item;
        status = ws_queue_get(name, timeout, &item, NULL);
        if (status == WS_QUEUE_OK) {
            ws_writef("item:%s", item);
            return WS_OK;
        }
    } else if (strcmp(path, "/task_done") == 0) {
        status = ws_queue_task_done(name);
    } else if (strcmp(path, "/join") == 0) {
        status = ws_queue_join(name, timeout);
    } else if (strcmp(path, "/qsize") == 0) {
        long size = ws_queue_qsize(name);
        if (size >= 0) {
            ws_writef("size:%ld", size);
            return WS_OK;
        }
        status = WS_QUEUE_NOT_GRANTED;
    } else {
        return ws_http_error(404, NULL, NULL);
    }
    if (status == WS_QUEUE_OK)
        ws_write("ok");
    else
        ws_writef("error:%s", ws_queue_error_name(status));
    return WS_OK;
}

WS_HANDLERS({.name = "QueueHandler", .get = queue_get});
