/* The host services from C: kv, the host's timer and the http client.
 * Run it: `cargo run -p waterspout -- serve --build examples/c/services`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "waterspout.h"

static int kv_failed(int status) {
    static const char *kinds[] = {"ok", "denied", "invalid", "not-a-number", "backend"};
    ws_write("ERR ");
    ws_write(kinds[status]);
    ws_write(": ");
    ws_write(ws_service_error());
    return WS_OK;
}

/* GET /kv?op=set&key=k&value=v (op: get, set, incr, cas, list). */
static int kv_get(ws_request_t req) {
    const char *op = ws_get_argument(req, "op", "get");
    const char *key = ws_get_argument(req, "key", "");
    const char *ns = ws_get_argument(req, "ns", NULL);
    const char *value = ws_get_argument(req, "value", "");
    int status;
    if (strcmp(op, "get") == 0) {
        const char *v;
        if ((status = ws_kv_get(ns, key, &v, NULL)))
            return kv_failed(status);
        ws_write(v ? v : "NONE");
    } else if (strcmp(op, "set") == 0) {
        if ((status = ws_kv_set(ns, key, value, strlen(value), 0)))
            return kv_failed(status);
        ws_write("OK");
    } else if (strcmp(op, "incr") == 0) {
        int64_t n;
        if ((status = ws_kv_increment(ns, key, atoll(ws_get_argument(req, "delta", "1")), &n)))
            return kv_failed(status);
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)n);
        ws_write(buf);
    } else if (strcmp(op, "cas") == 0) {
        const char *expected = ws_get_argument(req, "expected", NULL);
        bool won;
        if ((status = ws_kv_compare_and_swap(ns, key, expected, expected ? strlen(expected) : 0, value,
                                             strlen(value), &won)))
            return kv_failed(status);
        ws_write(won ? "won" : "lost");
    } else if (strcmp(op, "list") == 0) {
        const char **keys;
        size_t n;
        if ((status = ws_kv_list_keys(ns, ws_get_argument(req, "prefix", ""), 0, &keys, &n)))
            return kv_failed(status);
        for (size_t i = 0; i < n; i++) {
            if (i)
                ws_write(",");
            ws_write(keys[i]);
        }
    } else {
        return 400;
    }
    return WS_OK;
}

/* GET /sleep?ms=100 → "slept 100" */
static int sleep_get(ws_request_t req) {
    const char *ms = ws_get_argument(req, "ms", "10");
    ws_sleep_ms((uint64_t)atoll(ms));
    ws_write("slept ");
    ws_write(ms);
    return WS_OK;
}

/* GET /fetch?url=U → "STATUS BODY", or "ERR CODE: message" */
static int fetch_get(ws_request_t req) {
    const char *url = ws_get_argument(req, "url", NULL);
    if (!url)
        return ws_missing_argument("url");
    ws_fetch_request request = ws_fetch_request_init(url);
    ws_fetch_response response;
    int status = ws_fetch(&request, &response);
    char buf[64];
    if (status != WS_FETCH_OK) {
        snprintf(buf, sizeof buf, "ERR %d: ", status);
        ws_write(buf);
        ws_write(ws_service_error());
        return WS_OK;
    }
    snprintf(buf, sizeof buf, "%d ", response.status);
    ws_write(buf);
    ws_write_bytes(response.body, response.body_len);
    return WS_OK;
}

/* GET /fetch-all?url=A&url=B → the bodies joined by "|" */
static int fetch_all_get(ws_request_t req) {
    const char **urls;
    size_t n = ws_get_arguments(req, "url", &urls);
    ws_fetch_request requests[8];
    ws_fetch_response responses[8];
    int statuses[8];
    if (n > 8)
        n = 8;
    for (size_t i = 0; i < n; i++)
        requests[i] = ws_fetch_request_init(urls[i]);
    ws_fetch_all(requests, n, responses, statuses);
    for (size_t i = 0; i < n; i++) {
        if (i)
            ws_write("|");
        if (statuses[i] == WS_FETCH_OK)
            ws_write_bytes(responses[i].body, responses[i].body_len);
        else
            ws_write("ERR");
    }
    return WS_OK;
}

WS_HANDLERS({.name = "KvHandler", .get = kv_get}, {.name = "SleepHandler", .get = sleep_get},
            {.name = "FetchHandler", .get = fetch_get}, {.name = "FetchAllHandler", .get = fetch_all_get});
