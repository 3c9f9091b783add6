/* {{ name }}: Tornado's MainHandler, as a Waterspout handler in C.
 *
 * `make` (or `waterspout build .`) builds it; `waterspout serve --build .`
 * builds and serves it: `curl http://127.0.0.1:8888/`. `make test` runs
 * test.sh against the real server.
 *
 * The Tornado original:
 *
 *     class MainHandler(tornado.web.RequestHandler):
 *         def get(self):
 *             self.write("Hello, " + self.get_argument("name", "world"))
 */

#include "waterspout.h"

static int main_get(ws_request_t req) {
    ws_writef("Hello, %s", ws_get_argument(req, "name", "world"));
    return WS_OK;
}

/* Verbs left out answer 405, as in Tornado. */
WS_HANDLERS({.name = "MainHandler", .get = main_get});
