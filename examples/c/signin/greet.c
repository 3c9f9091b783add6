/* A WebSocket handler beside the signin pages: it greets the signed-in user
 * of the upgrade request (the signed cookie `user`, read by the host). */

#include "waterspout.h"

static int open_(ws_request_t req) {
    (void)req;
    const char *user = ws_get_signed_cookie("user");
    ws_write_message(ws_sprintf("hello %s", user ? user : "stranger"));
    return WS_OK;
}

static void on_message(const char *data, size_t len, bool binary) {
    (void)data;
    (void)len;
    (void)binary;
}

WS_WEBSOCKET_HANDLERS({
    .name = "Greet",
    .open = open_,
    .on_message = on_message,
});
