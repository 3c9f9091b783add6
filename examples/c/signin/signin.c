/* Signed cookies, XSRF, a template and the login guard in C. The Tornado
 * original would be
 *
 *     class MainHandler(tornado.web.RequestHandler):
 *         def get_current_user(self):
 *             return self.get_signed_cookie("user")
 *         @tornado.web.authenticated
 *         def get(self):
 *             self.render("hello.html", name=self.current_user)
 *
 * Build: ../../../guest-sdk/c/build signin.c ../../target/c/signin.wasm
 * Serve: cargo run -p waterspout -- serve examples/c/signin
 */

#include "waterspout.h"

static int main_get(ws_request_t req) {
    const char *user = ws_get_signed_cookie("user");
    int rc = ws_authenticated(req, user);
    if (rc != WS_CONTINUE)
        return rc;
    return ws_render("hello.html", ws_sprintf("{\"name\": %s}", ws_json_string(user)));
}

static int main_post(ws_request_t req) {
    const char *user = ws_get_signed_cookie("user");
    int rc = ws_authenticated(req, user);
    if (rc != WS_CONTINUE)
        return rc;
    ws_writef("posted by %s", user);
    return WS_OK;
}

static int login_get(ws_request_t req) {
    const char *name = ws_get_argument(req, "name", NULL);
    if (name == NULL)
        return ws_missing_argument("name");
    ws_set_signed_cookie("user", name);
    ws_write("signed in");
    return WS_OK;
}

static int token_get(ws_request_t req) {
    (void)req;
    ws_write(ws_xsrf_token());
    return WS_OK;
}

WS_HANDLERS(
    {.name = "MainHandler", .get = main_get, .post = main_post},
    {.name = "LoginHandler", .get = login_get},
    {.name = "TokenHandler", .get = token_get},
);
