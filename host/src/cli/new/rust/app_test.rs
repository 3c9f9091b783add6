//! {{ name }}'s tests, as Tornado's `AsyncHTTPTestCase`: `TestApp::serve`
//! builds the app once (the `build` lines of waterspout.toml), starts the real
//! `waterspout serve` on 127.0.0.1:0 and stops it when dropped. The host
//! binary is `$WATERSPOUT_BIN`, else `waterspout` on the PATH.

use waterspout_testing::TestApp;

fn app() -> TestApp {
    TestApp::serve(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn hello() {
    let response = app().fetch("/");
    assert_eq!(response.code, 200);
    assert_eq!(response.text(), "Hello, world");
}

#[test]
fn hello_by_name() {
    let response = app().fetch("/?name=Ann");
    assert_eq!(response.code, 200);
    assert_eq!(response.text(), "Hello, Ann");
}

#[test]
fn unknown_path_is_404() {
    assert_eq!(app().fetch("/nowhere").code, 404);
}
{%- if websocket %}

#[test]
fn echo() {
    let app = app();
    let mut ws = app.websocket_connect("/echo");
    ws.write_message("hi");
    assert_eq!(ws.read_message().as_deref(), Some("hi"));
}
{%- endif %}
