//! Tornado's web helpers done by the host (issue 12 items 1, 2, 3, 6):
//! signed cookies read and written in Tornado's own format (checked against
//! pip `tornado` itself), XSRF before the guest runs, templates with their
//! error page and log line, reload under `--watch`, and the login guard.
//! The guest is tests/guests/web (Rust); the other SDKs are tested in
//! python.rs (the blog), js.rs and c.rs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use waterspout::ServerConfig;
use waterspout_tests::guests;
use waterspout_tests::harness::{Browser, ServerProcess, TestServer, app_copy, app_with_manifest};

/// The `cookie_secret` of tests/guests/web/waterspout.toml.
const SECRET: &str = "a secret the tests share with Tornado";

/// Runs `script` in the project's Python (`.tools/python`, where `make
/// tools-python` installs pip `tornado`) and returns its stdout, trimmed.
fn tornado(script: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let python = root.join(".tools/python/bin/python3");
    let output = Command::new(&python)
        .arg("-c")
        .arg(format!("import tornado.web, time\n{script}"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (make tools-python installs it)", python.display()));
    assert!(
        output.status.success(),
        "python failed (make tools-python installs tornado):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A Tornado-signed value of `value` for cookie `name`, signed `age_days` ago.
fn tornado_signed(secret: &str, name: &str, value: &str, age_days: f64) -> String {
    tornado(&format!(
        "print(tornado.web.create_signed_value({secret:?}, {name:?}, {value:?}, \
         clock=lambda: time.time() - {age_days} * 86400).decode())"
    ))
}

/// What a Tornado app with `secret` reads from cookie `name` when the
/// browser sends back `value` as we set it (Tornado's own cookie parser,
/// then `decode_signed_value`); "None" when it refuses it.
fn tornado_reads(secret: &str, name: &str, value: &str) -> String {
    tornado(&format!(
        "import tornado.httputil\nraw = tornado.httputil.parse_cookie({:?})[{name:?}]\n\
         v = tornado.web.decode_signed_value({secret:?}, {name:?}, raw)\nprint(v.decode() if v else None)",
        format!("{name}={value}")
    ))
}

/// The value of cookie `name` among a response's `Set-Cookie` headers.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (n, value) = pair.split_once('=')?;
            (n == name).then(|| value.to_owned())
        })
}

async fn get_with_cookie(server: &TestServer, path: &str, cookie: &str) -> (u16, String) {
    let r = server
        .client
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_cookie_signed_by_tornado_is_accepted() {
    let server = TestServer::start(guests::WEB_APP).await;
    let signed = tornado_signed(SECRET, "user", "ada lovelace", 0.0);
    assert!(signed.starts_with("2|1:0|10:"), "{signed}");
    let cookie = format!("user=\"{signed}\"");
    assert_eq!(
        get_with_cookie(&server, "/get?name=user", &cookie).await,
        (200, "ada lovelace".into())
    );
    // Without quotes too (Tornado quotes values holding `|`; browsers keep them).
    let cookie = format!("user={signed}");
    assert_eq!(get_with_cookie(&server, "/get?name=user", &cookie).await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn our_signed_cookie_decodes_with_tornado() {
    let server = TestServer::start(guests::WEB_APP).await;
    let r = server.get("/set?name=user&value=grace%20hopper%21").await;
    assert_eq!(r.status(), 200);
    let value = set_cookie(&r, "user").expect("a user cookie");
    assert!(
        value.trim_matches('"').starts_with("2|1:0|"),
        "not percent-encoded: {value}"
    );
    assert_eq!(tornado_reads(SECRET, "user", &value), "grace hopper!");
    // Bound to the name: Tornado refuses it under another one.
    let raw = value.trim_matches('"');
    let renamed = tornado(&format!(
        "print(tornado.web.decode_signed_value({SECRET:?}, 'admin', {raw:?}))"
    ));
    assert_eq!(renamed, "None");
    // Kept 30 days, as Tornado's set_signed_cookie.
    let header = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(header.contains("Max-Age=2592000"), "{header}");
    assert!(header.contains("Path=/"), "{header}");
    server.shutdown().await;
}

/// Tornado's versioned keys: with `cookie_secret = {1 = …, 2 = …}` and
/// `key_version = 2`, a cookie Tornado signed with key 1 still reads, and
/// ours are signed with key 2 in a form Tornado decodes.
#[tokio::test]
async fn versioned_cookie_secrets_read_old_keys_and_sign_with_the_current_one() {
    let keys = r#"{1: "old key", 2: "new key"}"#;
    let app = app_copy(guests::WEB_APP, |m| {
        let line = format!("cookie_secret = {SECRET:?}");
        assert!(m.contains(&line), "{m}");
        m.replace(
            &line,
            "cookie_secret = { 1 = \"old key\", 2 = \"new key\" }\nkey_version = 2",
        )
    });
    let server = TestServer::start(app.path().to_str().unwrap()).await;
    let old = tornado(&format!(
        "print(tornado.web.create_signed_value({keys}, 'user', 'ada', key_version=1).decode())"
    ));
    assert!(old.starts_with("2|1:1|"), "{old}");
    assert_eq!(
        get_with_cookie(&server, "/get?name=user", &format!("user={old}")).await,
        (200, "ada".into())
    );
    let r = server.get("/set?name=user&value=grace").await;
    let ours = set_cookie(&r, "user").expect("a user cookie");
    let raw = ours.trim_matches('"');
    assert!(raw.starts_with("2|1:2|"), "signed with key 2: {raw}");
    let read = tornado(&format!(
        "v = tornado.web.decode_signed_value({keys}, 'user', {raw:?})\nprint(v.decode() if v else None)"
    ));
    assert_eq!(read, "grace");
    server.shutdown().await;
}

#[tokio::test]
async fn tampered_expired_renamed_and_foreign_cookies_read_as_none() {
    let server = TestServer::start(guests::WEB_APP).await;
    let good = tornado_signed(SECRET, "user", "ada", 0.0);
    assert_eq!(
        get_with_cookie(&server, "/get?name=user", &format!("user={good}"))
            .await
            .0,
        200
    );

    // Tampered: one byte of the value's base64 changed (signature kept).
    let tampered = good.replacen("|4:YWRh|", "|4:YWRi|", 1);
    assert_ne!(tampered, good);
    // Expired: signed 40 days ago, read with Tornado's default 31 days.
    let old = tornado_signed(SECRET, "user", "ada", 40.0);
    // Renamed: signed for `admin`, sent as `user`.
    let renamed = tornado_signed(SECRET, "admin", "ada", 0.0);
    // Another app's secret.
    let foreign = tornado_signed("another secret", "user", "ada", 0.0);
    for (what, value) in [
        ("tampered", tampered),
        ("expired", old.clone()),
        ("renamed", renamed),
        ("foreign", foreign),
        ("garbage", "2|1:0|garbage".to_owned()),
    ] {
        let (status, _) = get_with_cookie(&server, "/get?name=user", &format!("user={value}")).await;
        assert_eq!(status, 404, "a {what} cookie must read as none");
    }
    // max_age_days is the guest's: 41 days accepts the 40-day-old cookie.
    assert_eq!(
        get_with_cookie(&server, "/get?name=user&days=41", &format!("user={old}")).await,
        (200, "ada".into())
    );
    server.shutdown().await;
}

/// The page's token (from `xsrf_form_html`) and the `_xsrf` cookie it set.
async fn xsrf_pair(server: &TestServer) -> (String, String) {
    let r = server.get("/form").await;
    let cookie = set_cookie(&r, "_xsrf").expect("GET /form sets _xsrf");
    let page = r.text().await.unwrap();
    let token = page
        .split("value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a hidden _xsrf input")
        .to_owned();
    (token, cookie)
}

#[tokio::test]
async fn xsrf_missing_or_wrong_is_403_and_right_passes() {
    let server = TestServer::start(guests::WEB_APP).await;
    let (token, cookie) = xsrf_pair(&server).await;
    assert!(token.starts_with("2|"), "Tornado's masked v2 token: {token}");
    let post = |form: Vec<(&'static str, String)>, headers: Vec<(&'static str, String)>| {
        let mut request = server.client.post(server.url("/form")).form(&form);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let with_cookie = |c: &str| vec![("cookie", format!("_xsrf={c}"))];

    // Missing: no token, or a token and no cookie.
    assert_eq!(post(vec![], with_cookie(&cookie)).await, 403);
    assert_eq!(post(vec![("_xsrf", token.clone())], vec![]).await, 403);
    // Wrong: the token of another visitor.
    let (other_token, _) = xsrf_pair(&server).await;
    assert_eq!(
        post(vec![("_xsrf", other_token)], with_cookie(&cookie)).await,
        403
    );
    assert_eq!(
        post(vec![("_xsrf", "2|zz|zz|1".into())], with_cookie(&cookie)).await,
        403
    );
    // Right: the form field, or either header.
    assert_eq!(
        post(vec![("_xsrf", token.clone())], with_cookie(&cookie)).await,
        200
    );
    let mut headers = with_cookie(&cookie);
    headers.push(("x-xsrftoken", token.clone()));
    assert_eq!(post(vec![], headers).await, 200);
    let mut headers = with_cookie(&cookie);
    headers.push(("x-csrftoken", token.clone()));
    assert_eq!(post(vec![], headers).await, 200);
    // Every unsafe method is checked, safe ones are not.
    for method in ["PUT", "PATCH", "DELETE"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = server
            .client
            .request(method.clone(), server.url("/form"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method}");
    }
    // The masked token differs per page (BREACH) but Tornado decodes it to
    // the cookie's token.
    let (second, _) = {
        let r = server
            .client
            .get(server.url("/token"))
            .header("cookie", format!("_xsrf={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(set_cookie(&r, "_xsrf"), None, "the visitor's cookie is kept");
        (r.text().await.unwrap(), ())
    };
    assert_ne!(second, token);
    let decode = |t: &str| {
        tornado(&format!(
            "print(tornado.web.RequestHandler._decode_xsrf_token(None, {t:?})[1].hex())"
        ))
    };
    assert_eq!(decode(&second), decode(&cookie));
    assert_eq!(decode(&token), decode(&cookie));
    server.shutdown().await;
}

#[tokio::test]
async fn a_tornado_xsrf_cookie_is_accepted() {
    let server = TestServer::start(guests::WEB_APP).await;
    // A v1 (plain hex) cookie, as older Tornado apps set, and a v2 token
    // masked by Tornado's own code for the same raw token.
    let raw = "00112233445566778899aabbccddeeff";
    let masked = tornado(&format!(
        "import binascii\nfrom tornado.util import _websocket_mask\nm = b'\\x01\\x02\\x03\\x04'\n\
         print('2|' + binascii.b2a_hex(m).decode() + '|' + binascii.b2a_hex(_websocket_mask(m, bytes.fromhex({raw:?}))).decode() + '|1700000000')"
    ));
    let r = server
        .client
        .post(server.url("/form"))
        .header("cookie", format!("_xsrf={raw}"))
        .form(&[("_xsrf", masked)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn cross_origin_protection_refuses_other_origins() {
    let dir = app_with_manifest(&format!(
        "[app]\ncross_origin_protection = true\ntrusted_origins = [\"https://friend.example\"]\n\n\
         [[route]]\npattern = \"/.*\"\nhandler = \"web\"\n\n[handler.web]\nwasm = {:?}\n",
        guests::WEB_WASM
    ));
    let server = TestServer::start(dir.path().to_str().unwrap()).await;
    let post = |headers: &[(&str, &str)]| {
        let mut request = server.client.post(server.url("/x"));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let host = server.addr.to_string();
    let own = format!("http://{host}");
    assert_eq!(post(&[]).await, 200, "not a browser");
    assert_eq!(post(&[("sec-fetch-site", "same-origin")]).await, 200);
    assert_eq!(post(&[("origin", &own)]).await, 200);
    assert_eq!(post(&[("origin", "https://evil.example")]).await, 403);
    assert_eq!(
        post(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example")
        ])
        .await,
        403
    );
    assert_eq!(
        post(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://friend.example")
        ])
        .await,
        200
    );
    // Safe methods are never checked.
    let r = server
        .client
        .get(server.url("/form"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn templates_escape_and_offer_the_page_helpers() {
    let server = TestServer::start(guests::WEB_APP).await;
    let r = server.get("/render?t=page.html&name=%3Cb%3E%26").await;
    assert_eq!(r.status(), 200);
    let xsrf = set_cookie(&r, "_xsrf");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("<p>Hello &lt;b&gt;&amp;</p>"),
        "autoescaped: {page}"
    );
    assert!(page.contains(r#"<a href="/items/7">"#), "reverse_url: {page}");
    assert!(
        page.contains(r#"<link href="/static/site.css">"#),
        "static_url: {page}"
    );
    assert!(
        page.contains(r#"<input type="hidden" name="_xsrf" value="2|"#),
        "{page}"
    );
    assert!(xsrf.is_some(), "xsrf_form_html in a template sets the cookie");
    // reverse_url from the guest, with a group percent-encoded.
    assert_eq!(server.get_text("/reverse").await, (200, "/items/a%20b".into()));
    server.shutdown().await;
}

/// tests/guests/web with its wasm by absolute path and its templates copied
/// into a directory the test may change.
fn web_app_copy() -> tempfile::TempDir {
    app_copy(guests::WEB_APP, |m| m)
}

#[tokio::test]
async fn a_template_error_is_a_500_page_and_a_log_line_naming_file_and_line() {
    let app = web_app_copy();
    let server = ServerProcess::on_own_store(app.path().to_str().unwrap(), &[]);
    let (status, body) = server.get_text("/render?t=broken.html").await;
    assert_eq!(status, 500);
    assert!(body.contains("500: Internal Server Error"), "{body}");
    assert!(
        !body.contains("broken.html"),
        "the client never sees the template: {body}"
    );
    let log = server.wait_for_log("broken.html:3:");
    let line = log.lines().find(|l| l.contains("broken.html:3:")).unwrap();
    assert!(line.contains("template error"), "{line}");
    assert!(
        line.contains(&app.path().join("templates").display().to_string()),
        "{line}"
    );
    // An error while rendering (an unknown function) names its line too.
    let (status, _) = server.get_text("/render?t=failing.html").await;
    assert_eq!(status, 500);
    server.wait_for_log("failing.html:1:");
}

#[tokio::test]
async fn templates_reload_under_watch() {
    let app = web_app_copy();
    let server = ServerProcess::on_own_store(app.path().to_str().unwrap(), &["--watch"]);
    let (status, body) = server.get_text("/render?t=page.html&name=x").await;
    assert_eq!(status, 200);
    assert!(body.contains("Hello x"), "{body}");
    std::fs::write(app.path().join("templates/page.html"), "Goodbye {{ name }}").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = server.get_text("/render?t=page.html&name=x").await;
        if body == "Goodbye x" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never reloaded: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn authenticated_redirects_get_and_refuses_post() {
    let server = TestServer::start(guests::WEB_APP).await;
    let r = server.get("/private?x=1").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/login?next=%2Fprivate%3Fx%3D1");

    let (token, cookie) = xsrf_pair(&server).await;
    let post = |user: Option<String>| {
        let mut cookies = format!("_xsrf={cookie}");
        if let Some(user) = user {
            cookies.push_str(&format!("; user={user}"));
        }
        let request = server
            .client
            .post(server.url("/private"))
            .header("cookie", cookies)
            .form(&[("_xsrf", token.clone())]);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(post(None).await.0, 403);
    let user = tornado_signed(SECRET, "user", "ada", 0.0);
    assert_eq!(post(Some(user.clone())).await, (200, "posted by ada".into()));
    assert_eq!(
        get_with_cookie(&server, "/private", &format!("user={user}")).await,
        (200, "hello ada".into())
    );
    server.shutdown().await;
}

/// The signin example of every SDK (examples/{js,c}/signin): the login
/// guard, a template for the signed-in user, a signed cookie Tornado reads,
/// and XSRF on POST.
async fn check_signin(app: &str) {
    let server = TestServer::start(app).await;
    // Not signed in: GET goes to login_url?next=…
    let r = server.get("/").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/login?next=%2F");
    // A Tornado-signed user gets the template, escaped.
    let user = tornado_signed(SECRET, "user", "<ada>", 0.0);
    let (status, body) = get_with_cookie(&server, "/", &format!("user={user}")).await;
    assert_eq!((status, body.trim()), (200, "<p>Hello &lt;ada&gt;</p>"));
    // Our cookie, read by Tornado.
    let r = server.get("/login?name=bob").await;
    assert_eq!(r.status(), 200);
    let ours = set_cookie(&r, "user").expect("a user cookie");
    assert_eq!(tornado_reads(SECRET, "user", &ours), "bob");
    // POST needs the XSRF token, then the user.
    let r = server.get("/token").await;
    let cookie = set_cookie(&r, "_xsrf").expect("an _xsrf cookie");
    let token = r.text().await.unwrap();
    let post = |cookies: String, token: Option<&str>| {
        let mut request = server.client.post(server.url("/")).header("cookie", cookies);
        if let Some(token) = token {
            request = request.form(&[("_xsrf", token)]);
        }
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let both = format!("_xsrf={cookie}; user={user}");
    assert_eq!(post(both.clone(), None).await.0, 403, "no token");
    assert_eq!(
        post(format!("_xsrf={cookie}"), Some(&token)).await.0,
        403,
        "no user"
    );
    assert_eq!(post(both, Some(&token)).await, (200, "posted by <ada>".into()));
    server.shutdown().await;
}

/// Tornado: with an absolute `login_url`, `next` is the request's full URL.
#[tokio::test]
async fn an_absolute_login_url_gets_an_absolute_next() {
    for (app, path) in [
        (guests::WEB_APP, "/private?x=1"),
        (guests::JS_SIGNIN_APP, "/?x=1"),
        (guests::C_SIGNIN_APP, "/?x=1"),
        (guests::PYTHON_BLOG_APP, "/compose?x=1"),
    ] {
        let copy = app_copy(app, |m| {
            let mut out = String::new();
            for line in m.lines() {
                if line.starts_with("login_url = ") {
                    out.push_str("login_url = \"https://login.example/auth\"\n");
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out
        });
        let server = serve_blog(&copy).await;
        let r = server.get(path).await;
        assert_eq!(r.status(), 302, "{app}");
        let next = format!("http://{}{path}", server.addr);
        let expected =
            reqwest::Url::parse_with_params("https://login.example/auth", [("next", &next)]).unwrap();
        assert_eq!(r.headers()["location"], expected.as_str(), "{app}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn js_signin() {
    check_signin(guests::JS_SIGNIN_APP).await;
}

#[tokio::test]
async fn c_signin() {
    check_signin(guests::C_SIGNIN_APP).await;
}

/// A C WebSocket handler reads the upgrade request's signed cookie.
#[tokio::test]
async fn a_c_websocket_handler_reads_the_signed_cookie() {
    use waterspout_tests::harness::websocket;
    let server = TestServer::start(guests::C_SIGNIN_APP).await;
    let user = tornado_signed(SECRET, "user", "ada", 0.0);
    let mut ws = websocket::connect_with_cookie(&server, "/greet", &format!("user={user}")).await;
    assert_eq!(websocket::text(&mut ws).await, "hello ada");
    // The signature's last hex digit changed: tampered, so no user.
    let last = if user.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &user[..user.len() - 1]);
    let mut ws = websocket::connect_with_cookie(&server, "/greet", &format!("user={forged}")).await;
    assert_eq!(websocket::text(&mut ws).await, "hello stranger");
    server.shutdown().await;
}

/// examples/blog copied to a temporary directory (its kv store starts empty).
fn blog_copy() -> tempfile::TempDir {
    app_copy(guests::PYTHON_BLOG_APP, |m| m)
}

/// Serves a blog copy with its store (and so its kv log, `kv_persist`) in
/// `APP/.waterspout/store`, as `waterspout serve` does.
async fn serve_blog(app: &tempfile::TempDir) -> TestServer {
    let config = ServerConfig {
        store_dir: Some(app.path().join(".waterspout/store")),
        ..ServerConfig::default()
    };
    TestServer::start_with(app.path().to_str().unwrap(), config).await
}

#[tokio::test]
async fn the_blog_signs_in_and_protects_its_forms() {
    let app = blog_copy();
    let server = serve_blog(&app).await;
    assert_eq!(server.get("/auth/whoami").await.status(), 401);
    let r = server.get("/compose").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/auth/login?next=%2Fcompose");

    // GET /auth/login: the form, and the _xsrf cookie.
    let r = server.get("/auth/login").await;
    assert_eq!(r.status(), 200);
    let cookie = set_cookie(&r, "_xsrf").expect("the login page sets _xsrf");
    let page = r.text().await.unwrap();
    let token = page
        .split("name=\"_xsrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the form's _xsrf")
        .to_owned();
    // POST without the token: 403 before the guest runs.
    let r = server
        .client
        .post(server.url("/auth/login"))
        .header("cookie", format!("_xsrf={cookie}"))
        .form(&[("name", "mallory")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(set_cookie(&r, "blogdemo_user"), None);
    // With it: blogdemo_user is set (Tornado reads it) and we are redirected.
    let r = server
        .client
        .post(server.url("/auth/login"))
        .header("cookie", format!("_xsrf={cookie}"))
        .form(&[("name", "Ada"), ("_xsrf", &token), ("next", "/compose")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/compose");
    let user = set_cookie(&r, "blogdemo_user").expect("blogdemo_user");
    let secret = "Ov2pAv9ZlAE6mPaxkWnbqk2bNLfJiA0sqB6tr0JtF2c=";
    assert_eq!(tornado_reads(secret, "blogdemo_user", &user), "Ada");
    let cookies = format!("_xsrf={cookie}; blogdemo_user={user}");
    let (status, name) = get_with_cookie(&server, "/auth/whoami", &cookies).await;
    assert_eq!((status, name.as_str()), (200, "Ada"));

    // Write a post, then read it back.
    let r = server
        .client
        .post(server.url("/compose"))
        .header("cookie", &cookies)
        .form(&[
            ("title", "First post"),
            ("markdown", "Hello <world>"),
            ("_xsrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/entry/first-post");
    let (status, page) = server.get_text("/entry/first-post").await;
    assert_eq!(status, 200);
    assert!(page.contains("<p>Hello &lt;world&gt;</p>"), "{page}");
    assert!(page.contains("First post"), "{page}");
    let (status, feed) = server.get_text("/feed").await;
    assert_eq!(status, 200);
    assert!(feed.contains("<title type=\"text\">First post</title>"), "{feed}");

    // A second post with the same title gets its own slug (claimed by CAS).
    let r = server
        .client
        .post(server.url("/compose"))
        .header("cookie", &cookies)
        .form(&[("title", "First post"), ("markdown", "again"), ("_xsrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/entry/first-post-2");
    server.shutdown().await;

    // The posts are in the kv service's log: a restarted server has them.
    let server = serve_blog(&app).await;
    let (status, page) = server.get_text("/entry/first-post").await;
    assert_eq!(status, 200);
    assert!(page.contains("<p>Hello &lt;world&gt;</p>"), "{page}");
    let (status, archive) = server.get_text("/archive").await;
    assert_eq!(status, 200);
    assert!(archive.contains("/entry/first-post-2"), "{archive}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_blog_in_headless_chromium() {
    let app = blog_copy();
    let server = serve_blog(&app).await;
    let browser = Browser::start().await;
    let page = &browser.client;
    use fantoccini::Locator;

    // Signing in: the form from GET /auth/login, posted with its _xsrf.
    page.goto(&server.url("/compose")).await.unwrap();
    assert!(
        page.current_url().await.unwrap().path() == "/auth/login",
        "login_url"
    );
    page.find(Locator::Css("input[name=name]"))
        .await
        .unwrap()
        .send_keys("Ada")
        .await
        .unwrap();
    page.find(Locator::Css("#login input[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Back to /compose (next=), signed in.
    page.wait()
        .for_element(Locator::Css("form.compose"))
        .await
        .expect("the compose form after signing in");
    assert_eq!(
        page.find(Locator::Css("#user"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Ada"
    );

    // Write a post.
    page.find(Locator::Css("input[name=title]"))
        .await
        .unwrap()
        .send_keys("Hello from Chromium")
        .await
        .unwrap();
    page.find(Locator::Css("textarea[name=markdown]"))
        .await
        .unwrap()
        .send_keys("First paragraph.\n\nSecond <b>paragraph</b>.")
        .await
        .unwrap();
    page.find(Locator::Css("form.compose input[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.wait()
        .for_element(Locator::Css(".entry h1"))
        .await
        .expect("the new post's page");
    assert_eq!(
        page.current_url().await.unwrap().path(),
        "/entry/hello-from-chromium"
    );
    let title = page
        .find(Locator::Css(".entry h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(title, "Hello from Chromium");
    let paragraphs = page.find_all(Locator::Css(".entry .body p")).await.unwrap();
    assert_eq!(paragraphs.len(), 2);
    assert_eq!(
        paragraphs[1].text().await.unwrap(),
        "Second <b>paragraph</b>.",
        "escaped, not markup"
    );

    // Edit it (another XSRF-protected form).
    page.find(Locator::Css(".admin a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let title_input = page
        .wait()
        .for_element(Locator::Css("input[name=title]"))
        .await
        .unwrap();
    title_input.clear().await.unwrap();
    title_input.send_keys("Hello again").await.unwrap();
    page.find(Locator::Css("form.compose input[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.wait()
        .for_element(Locator::XPath("//div[@class='entry']/h1/a[text()='Hello again']"))
        .await
        .expect("the edited post's page");
    assert_eq!(
        page.current_url().await.unwrap().path(),
        "/entry/hello-from-chromium"
    );

    // The home page lists it; whoami names the user.
    page.goto(&server.url("/")).await.unwrap();
    let titles = page.find_all(Locator::Css(".entry h1")).await.unwrap();
    assert_eq!(titles.len(), 1);
    assert_eq!(titles[0].text().await.unwrap(), "Hello again");
    page.goto(&server.url("/auth/whoami")).await.unwrap();
    assert_eq!(
        page.find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Ada"
    );
    browser.close().await;
    server.shutdown().await;
}
