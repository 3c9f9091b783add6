/* Tornado's EchoWebSocket: every message comes back unchanged. A component of
 * its own (the websocket world: `guest-sdk/c/build --world websocket`). */

#include "waterspout.h"

static void on_message(const char *data, size_t len, bool binary) {
    if (binary)
        ws_write_message_binary(data, len);
    else
        ws_write_message(data);
}

WS_WEBSOCKET_HANDLERS({.name = "EchoWebSocket", .on_message = on_message});
