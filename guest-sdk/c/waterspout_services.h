/* waterspout_services.h — the host services in C: kv, timers, http client.
 * Included by waterspout.h (never on its own); its implementation is
 * compiled with the SDK's (WATERSPOUT_IMPLEMENTATION).
 *
 *     const char *v; size_t n;
 *     if (ws_kv_get(NULL, "greeting", &v, &n) == WS_KV_OK && v) ws_write(v);
 *     int64_t visits; ws_kv_increment(NULL, "visits", 1, &visits);
 *     ws_sleep_ms(100);
 *     ws_fetch_request req = ws_fetch_request_init("http://127.0.0.1:8080/");
 *     ws_fetch_response resp;
 *     if (ws_fetch(&req, &resp) == WS_FETCH_OK) ws_write_bytes(resp.body, resp.body_len);
 *     else ws_log(WS_LOG_WARN, "fetch: %s", ws_service_error());
 *
 * kv namespaces: NULL or "" is the handler's first granted one (manifest
 * `kv = [...]`). Strings and bytes returned are request-lived, as every
 * string the SDK returns (NUL-terminated too). A failed call returns a
 * nonzero status and leaves its message in ws_service_error().
 */
#ifndef WATERSPOUT_SERVICES_H
#define WATERSPOUT_SERVICES_H

#ifdef WATERSPOUT_WEBSOCKET
#define handler_option_list_u8_t websocket_option_list_u8_t
#define handler_option_u64_t websocket_option_u64_t
#define handler_option_u32_t websocket_option_u32_t
#define handler_option_bool_t websocket_option_bool_t
#define handler_tuple2_string_string_t websocket_tuple2_string_string_t
#elif defined(WATERSPOUT_WORKER)
#define handler_option_list_u8_t worker_option_list_u8_t
#define handler_option_u64_t worker_option_u64_t
#define handler_option_u32_t worker_option_u32_t
#define handler_option_bool_t worker_option_bool_t
#define handler_tuple2_string_string_t worker_tuple2_string_string_t
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** The message of the last failed kv or fetch call ("" if none). */
const char *ws_service_error(void);

/* ----- kv ------------------------------------------------------------- */

typedef enum ws_kv_status {
    WS_KV_OK = 0,
    WS_KV_DENIED = 1,       /* the namespace is not granted to this handler */
    WS_KV_INVALID = 2,      /* empty key, key > 1 KiB, value > 4 MiB */
    WS_KV_NOT_A_NUMBER = 3, /* increment on a non-integer, or overflow */
    WS_KV_BACKEND = 4,      /* the store failed */
} ws_kv_status;

/** The value of `key` in `*value` (NULL when absent or expired), its length in `*len` (may be NULL). */
int ws_kv_get(const char *ns, const char *key, const char **value, size_t *len);
/** Stores `len` bytes under `key`; `ttl_ms` > 0 makes it expire. */
int ws_kv_set(const char *ns, const char *key, const void *value, size_t len, uint64_t ttl_ms);
/** Removes `key`; `*existed` (may be NULL) tells whether it was there. */
int ws_kv_delete(const char *ns, const char *key, bool *existed);
/** Adds `delta` to the integer under `key` (absent: 0); the new value in `*result`. */
int ws_kv_increment(const char *ns, const char *key, int64_t delta, int64_t *result);
/** Sets `key` to `value` only if it holds `expected` (NULL: only if absent);
 *  `*swapped` says whether it did. */
int ws_kv_compare_and_swap(const char *ns, const char *key, const void *expected, size_t expected_len,
                           const void *value, size_t len, bool *swapped);
/** The keys starting with `prefix`, sorted (at most `limit`; 0: all); the count in `*count`. */
int ws_kv_list_keys(const char *ns, const char *prefix, uint32_t limit, const char ***keys, size_t *count);

/* ----- timers --------------------------------------------------------- */

/** Waits `ms` milliseconds; only this request waits (counts against timeout_ms). */
void ws_sleep_ms(uint64_t ms);

/* ----- http client ---------------------------------------------------- */

typedef enum ws_fetch_status {
    WS_FETCH_OK = 0,
    WS_FETCH_DENIED = 1,    /* not in the handler's allowed_outbound_hosts */
    WS_FETCH_BAD_URL = 2,
    WS_FETCH_DNS = 3,
    WS_FETCH_CONNECT = 4,
    WS_FETCH_TIMEOUT = 5,
    WS_FETCH_TOO_LARGE = 6,
    WS_FETCH_OTHER = 7,
} ws_fetch_status;

/** Tornado's HTTPRequest. Zero / NULL fields take Tornado's defaults. */
typedef struct ws_fetch_request {
    const char *method;        /* NULL: "GET" */
    const char *url;
    const ws_pair *headers;
    size_t header_count;
    const void *body;          /* NULL: no body */
    size_t body_len;
    uint64_t connect_timeout_ms; /* 0: 20 s */
    uint64_t request_timeout_ms; /* 0: 20 s */
    bool no_follow_redirects;    /* true: answer a 3xx as it is */
    uint32_t max_redirects;      /* 0: 5 */
    uint64_t max_response_size;  /* 0: 10 MiB */
} ws_fetch_request;

/** A GET of `url` with every default. */
ws_fetch_request ws_fetch_request_init(const char *url);

/** A response, whatever its status (request-lived). */
typedef struct ws_fetch_response {
    int status;
    const char *reason;
    const ws_pair *headers;    /* names in lower case */
    size_t header_count;
    const char *body;          /* NUL-terminated as well */
    size_t body_len;
    const char *effective_url;
} ws_fetch_response;

/** Fetches; WS_FETCH_OK and `*response`, or an error status (message in ws_service_error()). */
int ws_fetch(const ws_fetch_request *request, ws_fetch_response *response);
/** `n` fetches at once in the host; `statuses[i]` and `responses[i]` for each. */
void ws_fetch_all(const ws_fetch_request *requests, size_t n, ws_fetch_response *responses, int *statuses);

#ifdef __cplusplus
}
#endif

#ifdef WATERSPOUT_IMPLEMENTATION

/* The last error's message, copied (it outlives the request's allocations). */
static char ws__service_error[512];

static void ws__set_service_error(const uint8_t *text, size_t len) {
    if (len >= sizeof ws__service_error)
        len = sizeof ws__service_error - 1;
    memcpy(ws__service_error, text, len);
    ws__service_error[len] = '\0';
}

const char *ws_service_error(void) {
    return ws__service_error;
}

static handler_string_t ws__ns(const char *ns) {
    return ws__wit(ns ? ns : "");
}

static int ws__kv_failed(waterspout_handler_kv_kv_error_t *err) {
    /* Every case carries a string, at the same place in the union. */
    ws__set_service_error(err->val.denied.ptr, err->val.denied.len);
    handler_string_free(&err->val.denied);
    return (int)err->tag + 1;
}

int ws_kv_get(const char *ns, const char *key, const char **value, size_t *len) {
    handler_string_t n = ws__ns(ns), k = ws__wit(key);
    handler_option_list_u8_t ret;
    waterspout_handler_kv_kv_error_t err;
    *value = NULL;
    if (len)
        *len = 0;
    if (!waterspout_handler_kv_get(&n, &k, &ret, &err))
        return ws__kv_failed(&err);
    if (ret.is_some) {
        *value = ws__str_n((const char *)ret.val.ptr, ret.val.len);
        if (len)
            *len = ret.val.len;
        handler_list_u8_free(&ret.val);
    }
    return WS_KV_OK;
}

int ws_kv_set(const char *ns, const char *key, const void *value, size_t len, uint64_t ttl_ms) {
    handler_string_t n = ws__ns(ns), k = ws__wit(key);
    handler_list_u8_t v = {(uint8_t *)value, len};
    waterspout_handler_kv_kv_error_t err;
    if (!waterspout_handler_kv_set(&n, &k, &v, ttl_ms > 0 ? &ttl_ms : NULL, &err))
        return ws__kv_failed(&err);
    return WS_KV_OK;
}

int ws_kv_delete(const char *ns, const char *key, bool *existed) {
    handler_string_t n = ws__ns(ns), k = ws__wit(key);
    bool ret = false;
    waterspout_handler_kv_kv_error_t err;
    if (!waterspout_handler_kv_delete(&n, &k, &ret, &err))
        return ws__kv_failed(&err);
    if (existed)
        *existed = ret;
    return WS_KV_OK;
}

int ws_kv_increment(const char *ns, const char *key, int64_t delta, int64_t *result) {
    handler_string_t n = ws__ns(ns), k = ws__wit(key);
    int64_t ret = 0;
    waterspout_handler_kv_kv_error_t err;
    if (!waterspout_handler_kv_increment(&n, &k, delta, &ret, &err))
        return ws__kv_failed(&err);
    if (result)
        *result = ret;
    return WS_KV_OK;
}

int ws_kv_compare_and_swap(const char *ns, const char *key, const void *expected, size_t expected_len,
                           const void *value, size_t len, bool *swapped) {
    handler_string_t n = ws__ns(ns), k = ws__wit(key);
    handler_list_u8_t e = {(uint8_t *)expected, expected_len};
    handler_list_u8_t v = {(uint8_t *)value, len};
    bool ret = false;
    waterspout_handler_kv_kv_error_t err;
    if (!waterspout_handler_kv_compare_and_swap(&n, &k, expected ? &e : NULL, &v, NULL, &ret, &err))
        return ws__kv_failed(&err);
    if (swapped)
        *swapped = ret;
    return WS_KV_OK;
}

int ws_kv_list_keys(const char *ns, const char *prefix, uint32_t limit, const char ***keys, size_t *count) {
    handler_string_t n = ws__ns(ns), p = ws__wit(prefix);
    handler_list_string_t ret;
    waterspout_handler_kv_kv_error_t err;
    *keys = NULL;
    *count = 0;
    if (!waterspout_handler_kv_list_keys(&n, &p, limit ? &limit : NULL, &ret, &err))
        return ws__kv_failed(&err);
    const char **out = (const char **)ws__alloc(sizeof(char *) * (ret.len + 1));
    for (size_t i = 0; i < ret.len; i++)
        out[i] = ws__str_n((const char *)ret.ptr[i].ptr, ret.ptr[i].len);
    out[ret.len] = NULL;
    *keys = out;
    *count = ret.len;
    handler_list_string_free(&ret);
    return WS_KV_OK;
}

void ws_sleep_ms(uint64_t ms) {
    waterspout_handler_timers_sleep(ms);
}

ws_fetch_request ws_fetch_request_init(const char *url) {
    ws_fetch_request r;
    memset(&r, 0, sizeof r);
    r.url = url;
    return r;
}

/* The WIT request for `r`; points into `r`'s memory (read during the call only). */
static waterspout_handler_http_client_request_t ws__fetch_request(const ws_fetch_request *r) {
    waterspout_handler_http_client_request_t out;
    memset(&out, 0, sizeof out);
    out.method = ws__wit(r->method ? r->method : "GET");
    out.url = ws__wit(r->url);
    handler_tuple2_string_string_t *pairs = NULL;
    if (r->header_count) {
        pairs = (handler_tuple2_string_string_t *)ws__alloc(sizeof *pairs * r->header_count);
        for (size_t i = 0; i < r->header_count; i++) {
            pairs[i].f0 = ws__wit(r->headers[i].name);
            pairs[i].f1 = ws__wit(r->headers[i].value);
        }
    }
    out.headers.ptr = pairs;
    out.headers.len = r->header_count;
    if (r->body) {
        out.body.is_some = true;
        out.body.val.ptr = (uint8_t *)r->body;
        out.body.val.len = r->body_len;
    }
    if (r->connect_timeout_ms) {
        out.connect_timeout_ms.is_some = true;
        out.connect_timeout_ms.val = r->connect_timeout_ms;
    }
    if (r->request_timeout_ms) {
        out.request_timeout_ms.is_some = true;
        out.request_timeout_ms.val = r->request_timeout_ms;
    }
    if (r->no_follow_redirects) {
        out.follow_redirects.is_some = true;
        out.follow_redirects.val = false;
    }
    if (r->max_redirects) {
        out.max_redirects.is_some = true;
        out.max_redirects.val = r->max_redirects;
    }
    if (r->max_response_size) {
        out.max_response_size.is_some = true;
        out.max_response_size.val = r->max_response_size;
    }
    return out;
}

static void ws__fetch_response(waterspout_handler_http_client_response_t *r, ws_fetch_response *out) {
    out->status = r->status;
    out->reason = ws__take(&r->reason);
    ws_pair *pairs = (ws_pair *)ws__alloc(sizeof(ws_pair) * (r->headers.len + 1));
    for (size_t i = 0; i < r->headers.len; i++) {
        pairs[i].name = ws__str_n((const char *)r->headers.ptr[i].f0.ptr, r->headers.ptr[i].f0.len);
        pairs[i].value = ws__str_n((const char *)r->headers.ptr[i].f1.ptr, r->headers.ptr[i].f1.len);
    }
    out->headers = pairs;
    out->header_count = r->headers.len;
    handler_list_tuple2_string_string_free(&r->headers);
    out->body = ws__str_n((const char *)r->body.ptr, r->body.len);
    out->body_len = r->body.len;
    handler_list_u8_free(&r->body);
    out->effective_url = ws__take(&r->effective_url);
}

static int ws__fetch_failed(waterspout_handler_http_client_fetch_error_t *err) {
    int status = (int)err->tag + 1;
    if (status == WS_FETCH_TOO_LARGE) {
        char buf[64];
        snprintf(buf, sizeof buf, "the response body is larger than %llu bytes",
                 (unsigned long long)err->val.too_large);
        ws__set_service_error((const uint8_t *)buf, strlen(buf));
    } else {
        /* Every other case carries a string, at the same place in the union. */
        ws__set_service_error(err->val.denied.ptr, err->val.denied.len);
        handler_string_free(&err->val.denied);
    }
    return status;
}

int ws_fetch(const ws_fetch_request *request, ws_fetch_response *response) {
    waterspout_handler_http_client_request_t req = ws__fetch_request(request);
    waterspout_handler_http_client_response_t ret;
    waterspout_handler_http_client_fetch_error_t err;
    memset(response, 0, sizeof *response);
    if (!waterspout_handler_http_client_fetch(&req, &ret, &err))
        return ws__fetch_failed(&err);
    ws__fetch_response(&ret, response);
    return WS_FETCH_OK;
}

void ws_fetch_all(const ws_fetch_request *requests, size_t n, ws_fetch_response *responses, int *statuses) {
    waterspout_handler_http_client_request_t *reqs =
        (waterspout_handler_http_client_request_t *)ws__alloc(sizeof *reqs * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        reqs[i] = ws__fetch_request(&requests[i]);
    waterspout_handler_http_client_list_request_t list = {reqs, n};
    waterspout_handler_http_client_list_result_response_fetch_error_t ret;
    waterspout_handler_http_client_fetch_all(&list, &ret);
    for (size_t i = 0; i < n && i < ret.len; i++) {
        memset(&responses[i], 0, sizeof responses[i]);
        if (ret.ptr[i].is_err) {
            statuses[i] = ws__fetch_failed(&ret.ptr[i].val.err);
        } else {
            ws__fetch_response(&ret.ptr[i].val.ok, &responses[i]);
            statuses[i] = WS_FETCH_OK;
        }
    }
    /* Each element's strings and lists were taken (and freed) above. */
    free(ret.ptr);
}

#endif /* WATERSPOUT_IMPLEMENTATION */
#endif /* WATERSPOUT_SERVICES_H */
