/* The request/response tour (examples/requests, ported to C): one handler
 * class serves every route; each route's `mode` setting (passed to
 * initialize, as Tornado's URL spec kwargs) picks what it does. Error pages
 * are JSON; every response has `X-Prepared: 1`. waterspout.toml lists the
 * routes and their answers. */

#include <stdlib.h>
#include <string.h>

#include "waterspout.h"

#define MAX_CHUNKS 1000

static const char *mode;

static void initialize(void) { mode = ws_setting("mode", ""); }

static int prepare(ws_request_t req) {
    (void)req;
    ws_set_header("X-Prepared", "1");
    return WS_OK;
}

static int stream(ws_request_t req) {
    const char *text = ws_get_argument(req, "n", "3");
    char *end;
    unsigned long n = strtoul(text, &end, 10);
    if (*text == '\0' || *end != '\0' || *text == '-')
        return ws_http_error(400, NULL, "n must be a whole number");
    for (unsigned long i = 0; i < n && i < MAX_CHUNKS; i++) {
        ws_writef("chunk %lu\n", i);
        ws_flush();
    }
    return WS_OK;
}

static int get(ws_request_t req) {
    if (strcmp(mode, "greet") == 0) {
        const char *name = ws_get_argument(req, "name", NULL);
        if (!name)
            return ws_missing_argument("name");
        ws_writef("Hello, %s", name);
    } else if (strcmp(mode, "item") == 0) {
        const char *id = ws_path_arg(req, 0);
        ws_writef("item %s", id ? id : "");
    } else if (strcmp(mode, "user") == 0) {
        const char *name = ws_path_kwarg(req, "name");
        ws_writef("user %s", name ? name : "");
    } else if (strcmp(mode, "old") == 0) {
        ws_redirect("/new");
    } else if (strcmp(mode, "new") == 0) {
        ws_write("This is the new page");
    } else if (strcmp(mode, "cookie-set") == 0) {
        const char *value = ws_get_argument(req, "value", NULL);
        if (!value)
            return ws_missing_argument("value");
        ws_set_cookie("flavor", value);
        ws_writef("flavor set to %s", value);
    } else if (strcmp(mode, "cookie-get") == 0) {
        const char *flavor = ws_get_cookie(req, "flavor", NULL);
        if (flavor)
            ws_writef("flavor: %s", flavor);
        else
            ws_write("no flavor");
    } else if (strcmp(mode, "fail") == 0) {
        return ws_http_error(418, "/fail always fails", "Teapot Refuses Coffee");
    } else if (strcmp(mode, "stream") == 0) {
        return stream(req);
    } else {
        return 405;
    }
    return WS_OK;
}

/* ----- a small JSON checker: C has no JSON in its standard library ----- */

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *json_value(const char *p, int depth);

static const char *json_string(const char *p) {
    if (*p++ != '"')
        return NULL;
    while (*p && *p != '"') {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *json_number(const char *p) {
    const char *start = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p > start ? p : NULL;
}

/* The end of the object or array at p ('{' or '['), or NULL. */
static const char *json_container(const char *p, int depth) {
    char close = *p == '{' ? '}' : ']';
    p = skip_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (close == '}') {
            p = json_string(p);
            if (!p)
                return NULL;
            p = skip_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = json_value(skip_ws(p), depth + 1);
        if (!p)
            return NULL;
        p = skip_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
        p = skip_ws(p);
    }
}

static const char *json_value(const char *p, int depth) {
    if (depth > 64)
        return NULL;
    switch (*p) {
    case '{':
    case '[': return json_container(p, depth);
    case '"': return json_string(p);
    case 't': return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: return json_number(p);
    }
}

/* POST /json: the body must be one JSON object; it comes back with "echoed": true. */
static int echo_json(ws_request_t req) {
    size_t len;
    const char *body = ws_request_body(req, &len);
    const char *start = skip_ws(body);
    const char *end = *start == '{' ? json_container(start, 0) : NULL;
    if (!end || strlen(body) != len || *skip_ws(end) != '\0')
        return ws_http_error(400, "the body is not a JSON object", "Body is not a JSON object");
    /* Reopen the object before its closing brace and add the member. */
    const char *close = end - 1;
    bool empty = *skip_ws(start + 1) == '}';
    ws_write_json(ws_sprintf("%.*s%s\"echoed\":true}", (int)(close - start), start,
                             empty ? "" : ","));
    return WS_OK;
}

/* POST /form: {"fields": {name: last body value}, "files": [{field, filename, content_type, size}]} */
static int describe_form(ws_request_t req) {
    const char **names;
    size_t n = ws_request_argument_names(req, &names);
    const char *json = "{\"fields\":{";
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        const char **values;
        size_t count = ws_get_body_arguments(req, names[i], &values);
        if (!count)
            continue;
        json = ws_sprintf("%s%s%s:%s", json, first ? "" : ",", ws_json_string(names[i]),
                          ws_json_string(values[count - 1]));
        first = false;
    }
    json = ws_sprintf("%s},\"files\":[", json);
    const ws_file *files;
    size_t nfiles = ws_request_files(req, &files);
    for (size_t i = 0; i < nfiles; i++)
        json = ws_sprintf("%s%s{\"field\":%s,\"filename\":%s,\"content_type\":%s,\"size\":%zu}", json,
                          i ? "," : "", ws_json_string(files[i].field),
                          ws_json_string(files[i].filename), ws_json_string(files[i].content_type),
                          files[i].size);
    ws_write_json(ws_sprintf("%s]}", json));
    return WS_OK;
}

static int post(ws_request_t req) {
    if (strcmp(mode, "json") == 0)
        return echo_json(req);
    if (strcmp(mode, "form") == 0)
        return describe_form(req);
    return 405;
}

static void write_error(ws_request_t req, int status, const char *reason) {
    (void)req;
    ws_write_json(ws_sprintf("{\"status\":%d,\"reason\":%s}", status, ws_json_string(reason)));
}

static void on_finish(ws_request_t req) {
    ws_log(WS_LOG_INFO, "%s %s finished with %d", ws_request_method(req), ws_request_path(req),
           ws_get_status());
}

WS_HANDLERS({
    .name = "Requests",
    .initialize = initialize,
    .prepare = prepare,
    .get = get,
    .post = post,
    .write_error = write_error,
    .on_finish = on_finish,
});
