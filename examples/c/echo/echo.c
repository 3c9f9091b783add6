/* The WebSocket echo (examples/echo, ported to C). One instance serves one
 * connection, so `received` counts this connection's messages. */

#include <string.h>

#include "waterspout.h"

static unsigned long received;

static void initialize(void) { received = 0; }

static int open_(ws_request_t req) {
    ws_log(WS_LOG_INFO, "echo: connection from %s", ws_request_remote_ip(req));
    return WS_OK;
}

static bool is_text(const char *data, size_t len, bool binary, const char *word) {
    return !binary && len == strlen(word) && memcmp(data, word, len) == 0;
}

static void on_message(const char *data, size_t len, bool binary) {
    received++;
    if (is_text(data, len, binary, "count")) {
        ws_write_message(ws_sprintf("%lu", received));
    } else if (is_text(data, len, binary, "close")) {
        ws_close(1000, "bye");
    } else if (binary) {
        ws_write_message_binary(data, len);
    } else {
        ws_write_message(data);
    }
}

static void on_close(int code, const char *reason) {
    ws_log(WS_LOG_INFO, "echo: closed after %lu messages (code %d, reason %s)", received, code,
           reason ? reason : "none");
}

WS_WEBSOCKET_HANDLERS({
    .name = "Echo",
    .initialize = initialize,
    .open = open_,
    .on_message = on_message,
    .on_close = on_close,
});
