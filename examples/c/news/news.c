/* A news feed over the host's pub/sub, in C: publish, and long-poll for
 * what is new (the chat example's protocol, reduced).
 *
 *   POST /publish (form `data`)      → the message's cursor
 *   GET  /wait?after=N&timeout_ms=M  → {"messages": [[cursor, "data"], ...]}
 *                                      waiting up to M ms for one after N
 *   GET  /topic-not-granted          → 403 with the error text
 *
 * A client that hangs up during the wait makes ws_wait return
 * WS_PUBSUB_CLOSED; the method returns and `on_connection_close` runs (it
 * publishes "closed" so a test can see it).
 *
 * Build: ../../../guest-sdk/c/build news.c ../../target/c/news.wasm
 * Serve: cargo run -p waterspout -- serve examples/c/news
 */

#include <stdlib.h>

#include "waterspout.h"

#define TOPIC "news"

static int failed(int code) {
    int status = code == WS_PUBSUB_DENIED ? 403 : code == WS_PUBSUB_INVALID ? 400 : 500;
    return ws_http_error(status, ws_pubsub_error(), ws_pubsub_error());
}

static int publish_post(ws_request_t req) {
    const char *data = ws_get_argument(req, "data", NULL);
    if (data == NULL)
        return ws_missing_argument("data");
    uint64_t cursor = 0;
    int code = ws_publish(TOPIC, data, &cursor);
    if (code != WS_PUBSUB_OK)
        return failed(code);
    ws_writef("%llu", (unsigned long long)cursor);
    return WS_OK;
}

static int wait_get(ws_request_t req) {
    uint64_t after = strtoull(ws_get_argument(req, "after", "0"), NULL, 10);
    uint32_t timeout_ms = (uint32_t)strtoul(ws_get_argument(req, "timeout_ms", "10000"), NULL, 10);
    ws_message *messages;
    size_t count;
    int code = ws_wait(TOPIC, after, timeout_ms, &messages, &count);
    if (code == WS_PUBSUB_CLOSED)
        return WS_OK; /* the client is gone: on_connection_close runs next */
    if (code != WS_PUBSUB_OK)
        return failed(code);
    const char *json = "{\"messages\": [";
    for (size_t i = 0; i < count; i++)
        json = ws_sprintf("%s%s[%llu, %s]", json, i ? ", " : "",
                          (unsigned long long)messages[i].cursor, ws_json_string(messages[i].data));
    ws_write_json(ws_sprintf("%s]}", json));
    return WS_OK;
}

static void wait_closed(ws_request_t req) {
    (void)req;
    ws_publish(TOPIC, "closed", NULL);
}

static int denied_get(ws_request_t req) {
    (void)req;
    int code = ws_publish("secret", "x", NULL);
    return code == WS_PUBSUB_OK ? WS_OK : failed(code);
}

WS_HANDLERS(
    {.name = "PublishHandler", .post = publish_post},
    {.name = "WaitHandler", .get = wait_get, .on_connection_close = wait_closed},
    {.name = "DeniedHandler", .get = denied_get},
);
