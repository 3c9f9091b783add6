/* The news feed's WebSocket side, in C: ws://HOST/socket joins the host's
 * WebSocket group `news`; a text message sent on it is broadcast to every
 * member (this connection too), then the sender gets `reached N` (how many
 * members took it). The host writes a broadcast to each member connection
 * without calling their handlers. */

#include "waterspout.h"

#define GROUP "news"

static int open_(ws_request_t req) {
    (void)req;
    if (ws_group_join(GROUP) != WS_PUBSUB_OK) {
        ws_log(WS_LOG_ERROR, "news socket: join: %s", ws_pubsub_error());
        return 500;
    }
    return WS_OK;
}

static void on_message(const char *data, size_t len, bool binary) {
    (void)len;
    if (binary)
        return;
    uint32_t reached = 0;
    if (ws_group_broadcast(GROUP, data, &reached) != WS_PUBSUB_OK) {
        ws_write_message(ws_sprintf("error %s", ws_pubsub_error()));
        return;
    }
    ws_write_message(ws_sprintf("reached %u", (unsigned)reached));
}

WS_WEBSOCKET_HANDLERS({
    .name = "NewsSocket",
    .open = open_,
    .on_message = on_message,
});
