//! The console in headless Chromium (harness/browser.rs: chromedriver +
//! fantoccini): sign in, see the hello handler, watch its request count rise
//! while the test sends requests, upload a new version through the page's
//! file input, roll back, see an invalid upload refused in place.
//!
//! `WATERSPOUT_SCREENSHOTS=docs/console` (a path from the repository root)
//! saves a PNG of each state there; README.md shows them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use waterspout_tests::guests;
use waterspout_tests::harness::{ADMIN_TOKEN, Browser, TestServer, admin_config};

/// Where screenshots go, if asked for.
fn screenshot_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("WATERSPOUT_SCREENSHOTS")?;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    Some(dir)
}

async fn screenshot(page: &Client, name: &str) {
    if let Some(dir) = screenshot_dir() {
        let png = page.screenshot().await.expect("a screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("writing the screenshot");
    }
}

/// The text of `css` once `ok` holds for it (15 s at most).
async fn wait_for_text(page: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = page.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if ok(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed what was expected within 15 s; last text: {last:?}");
}

#[tokio::test]
async fn the_console_in_a_browser() {
    let server = TestServer::start_with(guests::HELLO_APP, admin_config()).await;
    let (status, hello) = server.get_text("/").await;
    assert_eq!(status, 200);
    let browser = Browser::start().await;
    let page = &browser.client;
    page.set_window_size(1280, 1100).await.unwrap();

    // Not signed in: the sign-in page. A wrong token is refused there.
    page.goto(&server.admin_url("/")).await.unwrap();
    assert_eq!(page.current_url().await.unwrap().path(), "/console/login");
    let token = page.find(Locator::Css("#token")).await.unwrap();
    token.send_keys("wrong").await.unwrap();
    page.find(Locator::Css("#login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(page, "#login-error", |t| t.contains("Wrong admin token")).await;
    screenshot(page, "login").await;
    let token = page.find(Locator::Css("#token")).await.unwrap();
    token.send_keys(ADMIN_TOKEN).await.unwrap();
    page.find(Locator::Css("#login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Signed in (so Chromium kept the Secure cookie from http://127.0.0.1):
    // the hello handler, Rust, version 1.
    wait_for_text(page, "tr[data-handler=hello] td.version", |t| t == "1").await;
    assert_eq!(page.current_url().await.unwrap().path(), "/");
    wait_for_text(page, "tr[data-handler=hello] td.language", |t| t == "Rust").await;
    wait_for_text(page, "#versions tbody tr[data-version='1']", |t| {
        t.contains("active")
    })
    .await;

    // Requests from the test: the count on the page rises without a reload.
    let before: u64 = wait_for_text(page, "tr[data-handler=hello] td.requests", |t| {
        t.parse::<u64>().is_ok()
    })
    .await
    .parse()
    .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..10 {
            assert_eq!(server.get_text("/").await.0, 200);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_text(page, "tr[data-handler=hello] td.requests", |t| {
        t.parse::<u64>().is_ok_and(|n| n >= before + 50)
    })
    .await;
    screenshot(page, "dashboard").await;

    // Upload version 2 through the page's <input type=file>.
    let input = page.find(Locator::Css("#upload-file")).await.unwrap();
    input.send_keys(guests::VERSION_B_WASM).await.unwrap();
    wait_for_text(page, "#upload-status", |t| {
        t.contains("version 2 of hello is active")
    })
    .await;
    assert_eq!(
        server.get_text("/").await,
        (200, "b".into()),
        "the upload went live"
    );
    wait_for_text(page, "#versions tbody tr[data-version='2']", |t| {
        t.contains("active")
    })
    .await;
    wait_for_text(page, "tr[data-handler=hello] td.version", |t| t == "2").await;
    screenshot(page, "uploaded").await;

    // Roll back with the page's button.
    page.find(Locator::Css("#rollback"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(page, "#upload-status", |t| {
        t.contains("Version 1 of hello is active")
    })
    .await;
    assert_eq!(server.get_text("/").await, (200, hello.clone()), "rolled back");
    wait_for_text(page, "#versions tbody tr[data-version='1']", |t| {
        t.contains("active")
    })
    .await;
    screenshot(page, "rolled-back").await;

    // An invalid file: refused, the reason shown in place, nothing changes.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-component.wasm");
    std::fs::write(&bad, b"this is not WebAssembly").unwrap();
    let input = page.find(Locator::Css("#upload-file")).await.unwrap();
    input.send_keys(bad.to_str().unwrap()).await.unwrap();
    let error = wait_for_text(page, "#upload-error", |t| t.starts_with("Refused (")).await;
    assert!(
        error.contains("Refused (400)") || error.contains("Refused (422)"),
        "{error}"
    );
    assert_eq!(server.get_text("/").await, (200, hello), "still version 1");
    screenshot(page, "refused").await;

    browser.close().await;
    server.shutdown().await;
}
