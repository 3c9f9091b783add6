/* waterspout_web.h — Tornado's web helpers for C handlers: signed cookies,
 * XSRF tokens, templates, URLs and the login guard. The host does the work
 * (the cookie_secret never reaches the guest); these wrap the WIT interface
 * `web`. Included by waterspout.h; strings returned live until the request
 * ends, as every ws_* string. A WebSocket handler (`--world websocket`) has
 * the ones that need no response: reading signed cookies (of the upgrade
 * request), create_signed_value, render_string and the URLs.
 *
 *     const char *user = ws_get_signed_cookie("user");
 *     int rc = ws_authenticated(req, user);
 *     if (rc != WS_CONTINUE) return rc;
 *     return ws_render("home.html", ws_sprintf("{\"user\": %s}", ws_json_string(user)));
 */
#ifndef WATERSPOUT_WEB_H
#define WATERSPOUT_WEB_H
#ifndef WATERSPOUT_WORKER

#if defined(WATERSPOUT_WEBSOCKET) && !defined(handler_option_list_u8_t)
#define handler_option_list_u8_t websocket_option_list_u8_t
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Tornado's create_signed_value(name, value); NULL (logged) without a cookie_secret. */
const char *ws_create_signed_value(const char *name, const char *value);
/** Tornado's get_signed_cookie(name): NULL when missing, tampered, expired or renamed. */
const char *ws_get_signed_cookie(const char *name);
/** get_signed_cookie with Tornado's max_age_days. */
const char *ws_get_signed_cookie_max_age(const char *name, double max_age_days);
/** Template `name` of the app's template_path with `context_json` (an object);
 *  NULL on a template error (the host logged file and line). */
const char *ws_render_string(const char *name, const char *context_json);
/** Tornado's reverse_url(name, *args); NULL when no route has that name. */
const char *ws_reverse_url(const char *name, const char *const *args, size_t nargs);
/** Tornado's static_url(path). */
const char *ws_static_url(const char *path);
/** The app's login_url, or NULL. */
const char *ws_get_login_url(void);

#ifndef WATERSPOUT_WEBSOCKET
/* ----- request handlers only (they set cookies or write the response) ----- */

/** ws_authenticated's "signed in: go on". */
#define WS_CONTINUE (-1)

/** Tornado's set_signed_cookie(name, value): signed, kept 30 days. */
bool ws_set_signed_cookie(const char *name, const char *value);
/** This page's masked XSRF token; sets the `_xsrf` cookie if needed. */
const char *ws_xsrf_token(void);
/** `<input type="hidden" name="_xsrf" value="…"/>` for a form. */
const char *ws_xsrf_form_html(void);
/** Renders, writes and finishes: WS_OK, or 500 on a template error. */
int ws_render(const char *name, const char *context_json);
/** Tornado's @authenticated with `current_user`: WS_CONTINUE when signed in;
 *  else a GET/HEAD is redirected to login_url?next=URI (the full URL when
 *  login_url is absolute; returns WS_OK) and
 *  anything else gets 403 (returned). */
int ws_authenticated(ws_request_t req, const void *current_user);
#endif /* !WATERSPOUT_WEBSOCKET */

#ifdef __cplusplus
}
#endif

#ifdef WATERSPOUT_IMPLEMENTATION

#include <ctype.h>

static const char *ws__web_error(waterspout_handler_web_web_error_t *err) {
    const char *out;
    switch (err->tag) {
    case WATERSPOUT_HANDLER_WEB_WEB_ERROR_NO_COOKIE_SECRET:
        return "the app has no [app] cookie_secret";
    case WATERSPOUT_HANDLER_WEB_WEB_ERROR_NO_TEMPLATE_PATH:
        return "the app has no [app] template_path";
    case WATERSPOUT_HANDLER_WEB_WEB_ERROR_TEMPLATE:
        out = ws__take(&err->val.template_);
        return out;
    default:
        out = ws__take(&err->val.invalid);
        return out;
    }
}

const char *ws_create_signed_value(const char *name, const char *value) {
    handler_string_t wname = ws__wit(name), ret;
    handler_list_u8_t wvalue = {(uint8_t *)(value ? value : ""), value ? strlen(value) : 0};
    waterspout_handler_web_web_error_t err;
    if (!waterspout_handler_web_create_signed_value(&wname, &wvalue, &ret, &err)) {
        ws_log(WS_LOG_ERROR, "create_signed_value(%s): %s", name, ws__web_error(&err));
        return NULL;
    }
    return ws__take(&ret);
}

const char *ws_get_signed_cookie_max_age(const char *name, double max_age_days) {
    handler_string_t wname = ws__wit(name);
    handler_option_list_u8_t ret;
    waterspout_handler_web_web_error_t err;
    if (!waterspout_handler_web_get_signed_cookie(&wname, max_age_days, NULL, &ret, &err)) {
        ws_log(WS_LOG_ERROR, "get_signed_cookie(%s): %s", name, ws__web_error(&err));
        return NULL;
    }
    if (!ret.is_some)
        return NULL;
    char *out = ws__str_n((const char *)ret.val.ptr, ret.val.len);
    handler_list_u8_free(&ret.val);
    return out;
}

const char *ws_get_signed_cookie(const char *name) { return ws_get_signed_cookie_max_age(name, 31.0); }

const char *ws_render_string(const char *name, const char *context_json) {
    handler_string_t wname = ws__wit(name), wcontext = ws__wit(context_json ? context_json : "{}"), ret;
    waterspout_handler_web_web_error_t err;
    if (!waterspout_handler_web_render_string(&wname, &wcontext, &ret, &err)) {
        ws_log(WS_LOG_ERROR, "render(%s): %s", name, ws__web_error(&err));
        return NULL;
    }
    return ws__take(&ret);
}

const char *ws_reverse_url(const char *name, const char *const *args, size_t nargs) {
    handler_string_t wname = ws__wit(name), ret;
    handler_string_t *items = (handler_string_t *)ws__alloc(sizeof(handler_string_t) * (nargs ? nargs : 1));
    for (size_t i = 0; i < nargs; i++)
        items[i] = ws__wit(args[i]);
    handler_list_string_t wargs = {items, nargs};
    if (!waterspout_handler_web_reverse_url(&wname, &wargs, &ret))
        return NULL;
    return ws__take(&ret);
}

const char *ws_static_url(const char *path) {
    handler_string_t wpath = ws__wit(path), ret;
    waterspout_handler_web_static_url(&wpath, &ret);
    return ws__take(&ret);
}

const char *ws_get_login_url(void) {
    handler_string_t ret;
    if (!waterspout_handler_web_login_url(&ret))
        return NULL;
    return ws__take(&ret);
}

#ifndef WATERSPOUT_WEBSOCKET

bool ws_set_signed_cookie(const char *name, const char *value) {
    const char *signed_value = ws_create_signed_value(name, value);
    if (!signed_value)
        return false;
    ws_cookie_options options = {0};
    options.has_max_age = true;
    options.max_age = 30 * 86400;
    return ws_set_cookie_with(name, signed_value, &options);
}

const char *ws_xsrf_token(void) {
    handler_string_t ret;
    waterspout_handler_web_xsrf_token(&ret);
    return ws__take(&ret);
}

const char *ws_xsrf_form_html(void) {
    handler_string_t ret;
    waterspout_handler_web_xsrf_form_html(&ret);
    return ws__take(&ret);
}

int ws_render(const char *name, const char *context_json) {
    const char *html = ws_render_string(name, context_json);
    if (!html)
        return ws_http_error(500, "template error", NULL);
    ws_write(html);
    ws_finish();
    return WS_OK;
}

/* Tornado's urlencode (quote_plus): unreserved bytes as they are, space as +. */
static const char *ws__quote_plus(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    char *out = (char *)ws__alloc(strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else if (c == ' ') {
            *o++ = '+';
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* urlsplit(url).scheme is not empty: [A-Za-z][A-Za-z0-9+.-]* then ':'. */
static bool ws__has_scheme(const char *url) {
    if (!isalpha((unsigned char)url[0]))
        return false;
    for (const char *p = url + 1; *p; p++) {
        if (*p == ':')
            return true;
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '.' && *p != '-')
            return false;
    }
    return false;
}

int ws_authenticated(ws_request_t req, const void *current_user) {
    if (current_user)
        return WS_CONTINUE;
    const char *method = ws_request_method(req);
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        const char *url = ws_get_login_url();
        if (!url)
            return ws_http_error(500, "authenticated: no [app] login_url is set", NULL);
        if (!strchr(url, '?')) {
            /* An absolute login_url gets an absolute next (Tornado). */
            const char *next = ws__has_scheme(url)
                ? ws_sprintf("%s://%s%s", ws_request_protocol(req), ws_request_host(req), ws_request_uri(req))
                : ws_request_uri(req);
            url = ws_sprintf("%s?next=%s", url, ws__quote_plus(next));
        }
        ws_redirect(url);
        return WS_OK;
    }
    return 403;
}

#endif /* !WATERSPOUT_WEBSOCKET */
#endif /* WATERSPOUT_IMPLEMENTATION */
#endif /* !WATERSPOUT_WORKER */
#endif /* WATERSPOUT_WEB_H */
