//! `waterspout new` for every language: the generated app built, served and
//! its own test passing in that language's runner (over the SDK's test
//! harness); `new` refusing a non-empty directory; `waterspout check` on good
//! and bad apps.
//!
//! The generated apps name the SDK of this checkout (`WATERSPOUT_HOME`), and
//! their harnesses run the test build of the binary (`WATERSPOUT_BIN`). The
//! four app tests run one at a time: each builds components (Rust ~1 min the
//! first time, Python ~30 s per component, JavaScript ~55 s).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use waterspout_tests::guests;
use waterspout_tests::harness::{ServerProcess, app_with_manifest, serve_command, server_binary};

/// One generated app's build and tests at a time (two cores).
static ONE_APP_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The checkout whose SDKs the generated apps use.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// `command` with the environment a generated app's tests need.
fn with_env(mut command: Command) -> Command {
    command
        .env("WATERSPOUT_BIN", server_binary())
        .env("WATERSPOUT_HOME", checkout())
        .env("WATERSPOUT_LOG", "info")
        .env_remove("WATERSPOUT_ADMIN_TOKEN")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to its end, killing it after `limit`; its output.
fn run(mut command: Command, limit: Duration) -> Output {
    let out = tempfile::tempdir().unwrap();
    let stdout = std::fs::File::create(out.path().join("stdout")).unwrap();
    let stderr = std::fs::File::create(out.path().join("stderr")).unwrap();
    let mut child = command
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} took over {limit:?}; its output:\n{}\n{}",
                std::fs::read_to_string(out.path().join("stdout")).unwrap_or_default(),
                std::fs::read_to_string(out.path().join("stderr")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: std::fs::read(out.path().join("stdout")).unwrap(),
        stderr: std::fs::read(out.path().join("stderr")).unwrap(),
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `waterspout new DIR/NAME ARGS…`; the app's directory.
fn new_app(parent: &Path, name: &str, args: &[&str]) -> PathBuf {
    let dir = parent.join(name);
    let mut command = with_env(Command::new(server_binary()));
    command.arg("new").arg(&dir).args(args);
    let output = run(command, Duration::from_secs(30));
    assert!(output.status.success(), "new failed:\n{}", text(&output));
    assert!(dir.join("waterspout.toml").is_file());
    dir
}

/// Runs `program ARGS…` in `dir` (the app's test runner) and asserts it passed.
fn test_runner(dir: &Path, program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut command = with_env(Command::new(program));
    command.args(args).current_dir(dir);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = run(command, Duration::from_secs(600));
    let out = text(&output);
    assert!(
        output.status.success(),
        "{program} {args:?} failed in {}:\n{out}",
        dir.display()
    );
    out
}

/// `waterspout check DIR`: exit status and output.
fn check(dir: &Path) -> (bool, String) {
    let mut command = with_env(Command::new(server_binary()));
    command.arg("check").arg(dir);
    let output = run(command, Duration::from_secs(120));
    (output.status.success(), text(&output))
}

#[test]
fn new_rust_app_passes_its_own_cargo_test() {
    let _one = ONE_APP_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let parent = tempfile::tempdir().unwrap();
    let dir = new_app(parent.path(), "hello-rs", &["--lang", "rust", "--websocket"]);
    // Built with 1 MiB of initial heap, so a request's allocations do not
    // grow the fresh instance's memory (docs/guests.md, "Initial heap").
    let config = std::fs::read_to_string(dir.join(".cargo/config.toml")).unwrap();
    assert!(
        config.contains("[target.wasm32-wasip2]") && config.contains("link-arg=--initial-heap=1048576"),
        "{config}"
    );
    // The host-side build (the harness and its clients) in a target directory
    // of its own beside the shared one, kept between runs; the component is
    // built into the app's own target/ by its manifest's build line.
    let target = server_binary()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("new-apps");
    let out = test_runner(&dir, "cargo", &["test"], &[("CARGO_TARGET_DIR", &target)]);
    assert!(out.contains("test result: ok. 4 passed"), "{out}");
    let (ok, out) = check(&dir);
    assert!(ok, "{out}");
    assert!(
        out.contains("ok    hello-rs  handler") && out.contains("ok    echo  websocket"),
        "{out}"
    );
}

#[test]
fn new_python_app_passes_its_own_unittest() {
    let _one = ONE_APP_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let parent = tempfile::tempdir().unwrap();
    let dir = new_app(parent.path(), "hello_py", &["--lang", "python", "--websocket"]);
    let out = test_runner(&dir, "python3", &["-m", "unittest", "-v"], &[]);
    assert!(out.contains("Ran 4 tests") && out.contains("\nOK"), "{out}");
    assert!(
        out.contains("test_echo (test_app.AppTest") && out.contains("... ok"),
        "{out}"
    );
}

#[test]
fn new_js_app_passes_its_own_node_test() {
    let _one = ONE_APP_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let parent = tempfile::tempdir().unwrap();
    let dir = new_app(parent.path(), "hello-js", &["--lang", "js"]);
    let out = test_runner(&dir, "node", &["--test"], &[]);
    assert!(out.contains("# pass 3") && out.contains("# fail 0"), "{out}");
}

#[test]
fn new_c_app_serves_with_serve_build_and_passes_its_make_test() {
    let _one = ONE_APP_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let parent = tempfile::tempdir().unwrap();
    let dir = new_app(parent.path(), "hello-c", &["--lang", "c", "--websocket"]);

    // The first try: `waterspout serve --build DIR`.
    let store = tempfile::tempdir().unwrap();
    let mut command = serve_command(&dir, store.path());
    command.env("WATERSPOUT_HOME", checkout()).arg("--build");
    let server = ServerProcess::spawn_within(command, false, Duration::from_secs(300));
    let body = reqwest::blocking::get(server.url("/?name=C"))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "Hello, C");
    drop(server);

    let out = test_runner(&dir, "make", &["test"], &[]);
    assert!(
        out.contains("ok   /echo accepts a WebSocket") && out.contains("all checks passed"),
        "{out}"
    );
    let (ok, out) = check(&dir);
    assert!(ok, "{out}");
    assert!(
        out.contains("ok    hello-c  handler") && out.contains("ok    echo  websocket"),
        "{out}"
    );
}

#[test]
fn new_refuses_a_non_empty_directory_and_writes_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("taken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let mut command = with_env(Command::new(server_binary()));
    command.arg("new").arg(&dir).args(["--lang", "rust"]);
    let output = run(command, Duration::from_secs(30));
    assert!(!output.status.success());
    let out = text(&output);
    assert!(out.contains("already exists and is not empty"), "{out}");
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["notes.txt"]);
    assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine");

    // A bad name is refused before anything is written, too.
    let mut command = with_env(Command::new(server_binary()));
    command
        .arg("new")
        .arg(parent.path().join("2fast"))
        .args(["--lang", "c"]);
    let output = run(command, Duration::from_secs(30));
    assert!(!output.status.success());
    assert!(
        text(&output).contains("not a usable app name"),
        "{}",
        text(&output)
    );
    assert!(!parent.path().join("2fast").exists());
}

#[test]
fn check_passes_a_good_app_one_line_per_handler() {
    let app = app_with_manifest(&format!(
        "[[route]]\npattern = \"/\"\nhandler = \"hello\"\n\n[[route]]\npattern = \"/echo\"\nhandler = \"echo\"\n\n\
         [handler.hello]\nwasm = {:?}\n\n[handler.echo]\nwasm = {:?}\n",
        guests::HELLO_WASM,
        guests::ECHO_WASM
    ));
    let (ok, out) = check(app.path());
    assert!(ok, "{out}");
    assert!(out.contains("ok    hello  handler"), "{out}");
    assert!(out.contains("ok    echo  websocket"), "{out}");
    assert!(out.contains("2 handler(s), 2 route(s): ok"), "{out}");
    // Nothing was served and no store was written into the app.
    assert!(!app.path().join(".waterspout/store").exists());
}

#[test]
fn check_fails_a_bad_manifest_naming_file_and_line() {
    let app = app_with_manifest(&format!(
        "[[route]]\npattern = \"/\"\nhandler = \"hello\"\n\n[handler.hello]\nwasm = {:?}\ntimeout_ms = \"soon\"\n",
        guests::HELLO_WASM
    ));
    let (ok, out) = check(app.path());
    assert!(!ok, "{out}");
    let file = app.path().join("waterspout.toml");
    // The type error is reported at its handler's table, line 5.
    assert!(
        out.contains(&format!("{}:5:", file.display())) && out.contains("soon"),
        "{out}"
    );

    let app = app_with_manifest("[[route]]\npattern = \"/\"\nhandler = \"nobody\"\n");
    let (ok, out) = check(app.path());
    assert!(!ok, "{out}");
    assert!(
        out.contains("waterspout.toml:3") && out.contains("nobody"),
        "{out}"
    );
}

#[test]
fn check_fails_a_wrong_world_and_an_unknown_import_with_the_reason() {
    let app = app_with_manifest(&format!(
        "[[route]]\npattern = \"/\"\nhandler = \"hello\"\n\n\
         [handler.hello]\nwasm = {:?}\n\n\
         [handler.empty]\nwasm = \"empty.wasm\"\n\n\
         [handler.alien]\nwasm = \"alien.wasm\"\n\n\
         [handler.plain]\nwasm = {:?}\n\n\
         [worker.jobs]\nhandler = \"plain\"\n",
        guests::HELLO_WASM,
        guests::HELLO_WASM
    ));
    // A component exporting none of our worlds, and one exporting the
    // handler world but importing an interface no host provides.
    let empty = wat::parse_str("(component)").unwrap();
    std::fs::write(app.path().join("empty.wasm"), empty).unwrap();
    let alien = wat::parse_str(
        r#"(component
             (import "acme:nope/thing@1.0.0" (instance (export "f" (func))))
             (instance $h)
             (export "waterspout:handler/request-handler@0.1.0" (instance $h)))"#,
    )
    .unwrap();
    std::fs::write(app.path().join("alien.wasm"), alien).unwrap();

    let (ok, out) = check(app.path());
    assert!(!ok, "{out}");
    let fail = |handler: &str| {
        out.lines()
            .find(|l| l.starts_with("FAIL") && l.contains(&format!("\"{handler}\"")))
            .unwrap_or_else(|| panic!("no FAIL line for {handler}:\n{out}"))
            .to_owned()
    };
    assert!(
        fail("empty").contains("exports none of the worlds served here"),
        "{out}"
    );
    let alien = fail("alien");
    assert!(
        alien.contains("imports cannot be satisfied") && alien.contains("acme:nope/thing"),
        "{out}"
    );
    // plain is a handler-world component that a [worker] names.
    assert!(fail("plain").contains("not the worker world"), "{out}");
    assert!(out.contains("ok    hello  handler"), "{out}");
    assert!(out.contains("3 of 4 handler(s)"), "{out}");
}
