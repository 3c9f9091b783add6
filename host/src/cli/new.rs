//! `waterspout new NAME --lang rust|python|js|c [--websocket]`: an app
//! directory that builds and serves on the first `waterspout serve --build
//! NAME`, with a test in the language's usual runner over the SDK's test
//! harness (Tornado's `AsyncHTTPTestCase`).
//!
//! The templates are files under `cli/new/LANG/`, compiled into the binary
//! and rendered with minijinja (`{{ name }}`, `{{ crate }}`, `{{ sdk }}`,
//! `{% if websocket %}`). The generated app names the SDK by the absolute path
//! of the Waterspout checkout (`--sdk`, `$WATERSPOUT_HOME`, else found from
//! this binary or the current directory), so it builds wherever it lives.

use std::path::{Path, PathBuf};

use minijinja::Environment;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The app's directory; its last component is the app's (and its first
    /// handler's) name: letters, digits, '-' and '_', starting with a letter.
    pub path: PathBuf,
    /// The handlers' language.
    #[arg(long, value_enum, default_value = "python")]
    pub lang: Lang,
    /// Add Tornado's EchoWebSocket at /echo (a second component).
    #[arg(long)]
    pub websocket: bool,
    /// The Waterspout checkout whose SDKs the app uses [default: the one this
    /// binary was built in, or the one above the current directory].
    #[arg(long, env = "WATERSPOUT_HOME", value_name = "DIR")]
    pub sdk: Option<PathBuf>,
}

/// One file of a template: where it goes in the app, its text, and whether
/// only `--websocket` apps get it.
struct File {
    path: &'static str,
    text: &'static str,
    websocket_only: bool,
}

const fn file(path: &'static str, text: &'static str) -> File {
    File {
        path,
        text,
        websocket_only: false,
    }
}

const fn ws_file(path: &'static str, text: &'static str) -> File {
    File {
        path,
        text,
        websocket_only: true,
    }
}

const RUST: &[File] = &[
    file("Cargo.toml", include_str!("new/rust/Cargo.toml.tmpl")),
    file("src/lib.rs", include_str!("new/rust/lib.rs")),
    file("tests/app.rs", include_str!("new/rust/app_test.rs")),
    file("waterspout.toml", include_str!("new/rust/waterspout.toml")),
    file(".gitignore", include_str!("new/rust/gitignore")),
    file(".cargo/config.toml", include_str!("new/rust/cargo_config.toml")),
    ws_file("echo/Cargo.toml", include_str!("new/rust/echo.Cargo.toml.tmpl")),
    ws_file("echo/src/lib.rs", include_str!("new/rust/echo.rs")),
];

const PYTHON: &[File] = &[
    file("app.py", include_str!("new/python/app.py")),
    file("test_app.py", include_str!("new/python/test_app.py")),
    file("waterspout.toml", include_str!("new/python/waterspout.toml")),
    file(".gitignore", include_str!("new/python/gitignore")),
    ws_file("echo.py", include_str!("new/python/echo.py")),
];

const JS: &[File] = &[
    file("app.js", include_str!("new/js/app.js")),
    file("app.test.js", include_str!("new/js/app.test.js")),
    file("package.json", include_str!("new/js/package.json")),
    file("waterspout.toml", include_str!("new/js/waterspout.toml")),
    file(".gitignore", include_str!("new/js/gitignore")),
    ws_file("echo.js", include_str!("new/js/echo.js")),
];

const C: &[File] = &[
    file("app.c", include_str!("new/c/app.c")),
    file("Makefile", include_str!("new/c/Makefile")),
    file("test.sh", include_str!("new/c/test.sh")),
    file("waterspout.toml", include_str!("new/c/waterspout.toml")),
    file(".gitignore", include_str!("new/c/gitignore")),
    ws_file("echo.c", include_str!("new/c/echo.c")),
];

pub fn run(args: &NewArgs) -> anyhow::Result<()> {
    let name = app_name(&args.path)?;
    anyhow::ensure!(
        !(args.websocket && name == "echo"),
        "the app cannot be named \"echo\" with --websocket: its WebSocket handler is called echo"
    );
    refuse_non_empty(&args.path)?;
    let sdk = sdk_root(args.sdk.as_deref())?;
    let files = match args.lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
        Lang::Js => JS,
        Lang::C => C,
    };
    let context = minijinja::context! {
        name => name,
        crate => name.replace('-', "_"),
        sdk => sdk.to_string_lossy(),
        websocket => args.websocket,
    };
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // Render everything before writing anything: a failure leaves no half app.
    let mut rendered = Vec::new();
    for f in files.iter().filter(|f| args.websocket || !f.websocket_only) {
        let text = env
            .render_str(f.text, &context)
            .map_err(|e| anyhow::anyhow!("template {}: {e}", f.path))?;
        rendered.push((args.path.join(f.path), text));
    }
    for (path, text) in &rendered {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    // A Rust app starts from the checkout's lock file: the versions the SDK
    // and the harness were tested with (cargo drops the entries it does not use).
    let lock = sdk.join("Cargo.lock");
    if args.lang == Lang::Rust && lock.is_file() {
        std::fs::copy(&lock, args.path.join("Cargo.lock"))
            .map_err(|e| anyhow::anyhow!("cannot copy {}: {e}", lock.display()))?;
    }
    #[cfg(unix)]
    if args.lang == Lang::C {
        use std::os::unix::fs::PermissionsExt;
        let script = args.path.join("test.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    let dir = args.path.display();
    let test = match args.lang {
        Lang::Rust => "cargo test",
        Lang::Python => "python3 -m unittest",
        Lang::Js => "node --test",
        Lang::C => "make test",
    };
    println!("created {dir} ({:?}, SDK at {})", args.lang, sdk.display());
    println!("  serve it:  waterspout serve --build {dir}");
    println!(
        "  test it:   cd {dir} && {test}   (the harness runs $WATERSPOUT_BIN, else `waterspout` on the PATH)"
    );
    Ok(())
}

/// The app's name: the last component of its path, as a crate, handler and
/// file name can carry it.
fn app_name(path: &Path) -> anyhow::Result<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow::anyhow!("{}: the app's path must end in its name", path.display()))?;
    let mut chars = name.chars();
    let good = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    anyhow::ensure!(
        good,
        "{name:?} is not a usable app name: use letters, digits, '-' and '_', starting with a letter \
         (it names the app's crate, handler and files)"
    );
    Ok(name.to_owned())
}

/// `new` never writes into a directory that holds anything.
fn refuse_non_empty(path: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => anyhow::ensure!(
            entries.next().is_none(),
            "{} already exists and is not empty: choose a new directory (nothing was written)",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory || path.is_file() => {
            anyhow::bail!(
                "{} is a file: choose a new directory (nothing was written)",
                path.display()
            )
        }
        Err(e) => anyhow::bail!("{}: {e}", path.display()),
    }
    Ok(())
}

/// The Waterspout checkout the app's SDK paths point into (absolute): the
/// one given, else the first holding `guest-sdk/` above this binary, above
/// the current directory, or where this binary was built.
fn sdk_root(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let is_checkout =
        |dir: &Path| dir.join("guest-sdk/rust/Cargo.toml").is_file() && dir.join("wit").is_dir();
    if let Some(dir) = given {
        anyhow::ensure!(
            is_checkout(dir),
            "{} is not a Waterspout checkout (no guest-sdk/ and wit/ in it); --sdk and $WATERSPOUT_HOME name one",
            dir.display()
        );
        return Ok(std::path::absolute(dir)?);
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_owned);
    let starts = [std::env::current_exe().ok(), std::env::current_dir().ok()];
    starts
        .into_iter()
        .flatten()
        .flat_map(|start| start.ancestors().map(Path::to_owned).collect::<Vec<_>>())
        .chain(built_in)
        .find(|dir| is_checkout(dir))
        .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot find the Waterspout SDKs (a checkout with guest-sdk/ and wit/): \
                 set WATERSPOUT_HOME (or --sdk) to the checkout"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_with_and_without_websocket() {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for files in [RUST, PYTHON, JS, C] {
            for websocket in [false, true] {
                let context = minijinja::context! {
                    name => "my-app", crate => "my_app", sdk => "/sdk", websocket => websocket,
                };
                for f in files {
                    let text = env.render_str(f.text, &context).unwrap();
                    assert!(!text.contains("{{") && !text.contains("{%"), "{}", f.path);
                    if f.path == "waterspout.toml" {
                        // The echo route is there exactly with --websocket.
                        assert_eq!(text.contains("pattern = \"/echo\""), websocket, "{}", f.path);
                        let manifest =
                            crate::manifest::Manifest::parse(Path::new("/app/waterspout.toml"), &text);
                        assert!(manifest.is_ok(), "{}: {:?}", f.path, manifest.err());
                    }
                }
            }
        }
    }

    #[test]
    fn names() {
        assert!(app_name(Path::new("a/b/hello-app_2")).is_ok());
        for bad in ["2app", "my app", "app.py", "..", "-x"] {
            assert!(app_name(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
