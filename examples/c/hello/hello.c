/* Tornado's "Hello, world", as a Waterspout handler in C.
 *
 * The Tornado original:
 *
 *     class MainHandler(tornado.web.RequestHandler):
 *         def get(self):
 *             self.write("Hello, world")
 *
 *     class GreetHandler(tornado.web.RequestHandler):
 *         def get(self):
 *             self.write("Hello, " + self.get_argument("name"))
 *
 * Build: ../../../guest-sdk/c/build hello.c ../../target/c/hello.wasm
 * Serve: cargo run -p waterspout -- serve examples/c/hello
 */

#include "waterspout.h"

static int main_get(ws_request_t req) {
    (void)req;
    ws_write("Hello, world");
    return WS_OK;
}

static int greet_get(ws_request_t req) {
    const char *name = ws_get_argument(req, "name", NULL);
    if (name == NULL)
        return ws_missing_argument("name"); /* 400 "Missing argument name" */
    ws_writef("Hello, %s", name);
    return WS_OK;
}

/* One component, two handler classes; each route's `class` picks one.
 * Verbs left out answer 405, as in Tornado. */
WS_HANDLERS(
    {.name = "MainHandler", .get = main_get},
    {.name = "GreetHandler", .get = greet_get},
);
