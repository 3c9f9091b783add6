//! Builds every guest component the integration tests load, so `cargo test`
//! never runs against stale wasm: the example apps (`examples/`) and the test
//! guests (`tests/guests/`), each its own cargo workspace built with
//! `cargo build --release --target wasm32-wasip2`. The crates of
//! [`LEAN_CRATES`] are built again for `wasm32-unknown-unknown` (the Rust
//! SDK's lean build, a core module the server makes a component of), and
//! that build is the one their constant and their `waterspout.toml` name.
//!
//! Guest apps in other languages (`examples/<language>/<app>/`) are built by
//! their manifest's `build` lines (the SDK's build command), and only when a
//! hash of what goes into them (the app's files, the SDK's folder, `wit/`)
//! differs from the one saved beside the built wasm: an unchanged guest is
//! never rebuilt.
//!
//! It then writes `$OUT_DIR/guests.rs`, which `lib.rs` includes as
//! `waterspout_tests::guests`: one `NAME_WASM` constant per Rust component (the
//! absolute path of the built `.wasm`) and one `NAME_APP` constant per crate
//! or app that has a `waterspout.toml` (the app directory to serve), named
//! `LANGUAGE_APP_APP` for the other languages (`PYTHON_HELLO_APP`).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

/// The lean build's target: no WASI from std, only the WIT imports a guest calls.
const LEAN_TARGET: &str = "wasm32-unknown-unknown";

/// Crates also built for [`LEAN_TARGET`]: (workspace, package).
const LEAN_CRATES: &[(&str, &str)] = &[("examples", "hello"), ("tests/guests", "lean")];

/// The guest workspaces, relative to the repository root.
const GUEST_WORKSPACES: &[&str] = &["examples", "tests/guests"];

/// The languages whose example apps live in `examples/<language>/`, each
/// with its SDK in `guest-sdk/<language>/`.
const LANGUAGES: &[&str] = &["python", "js", "c"];

/// Apps of other languages kept elsewhere than `examples/<language>/` (the
/// blog lives at `examples/blog/`, the path its issue names): (language, directory).
const OTHER_APPS: &[(&str, &str)] = &[("python", "examples/blog")];

/// One crate of a guest workspace.
struct GuestCrate {
    /// The package name, e.g. `version-a`.
    name: String,
    /// The crate's directory (where its `waterspout.toml` lives, if any).
    dir: PathBuf,
    /// The built component.
    wasm: PathBuf,
}

fn main() {
    let tests_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = tests_dir
        .parent()
        .expect("tests/ lives in the repository root")
        .to_path_buf();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    println!("cargo:rerun-if-changed=build.rs");
    watch(&root.join("wit"));
    watch(&root.join("guest-sdk/rust/src"));
    watch(&root.join("guest-sdk/rust/Cargo.toml"));

    let mut guests = Vec::new();
    for workspace in GUEST_WORKSPACES {
        let lean: Vec<&str> = LEAN_CRATES
            .iter()
            .filter(|(w, _)| w == workspace)
            .map(|(_, package)| *package)
            .collect();
        let workspace = root.join(workspace);
        let crates = member_crates(&workspace, &lean);
        watch(&workspace.join("Cargo.toml"));
        watch(&workspace.join("Cargo.lock"));
        for guest in &crates {
            watch(&guest.dir.join("Cargo.toml"));
            watch(&guest.dir.join("src"));
            watch(&guest.dir.join("waterspout.toml"));
        }
        build_workspace(&cargo, &workspace, WASM_TARGET, &[]);
        if !lean.is_empty() {
            build_workspace(&cargo, &workspace, LEAN_TARGET, &lean);
        }
        for guest in &crates {
            if !guest.wasm.is_file() {
                panic!(
                    "building {} succeeded but {} is missing (is `{}` a cdylib?)",
                    workspace.display(),
                    guest.wasm.display(),
                    guest.name
                );
            }
        }
        guests.extend(crates);
    }

    for language in LANGUAGES {
        for app in language_apps(&root, language) {
            build_language_app(&root, language, &app);
            let name = format!("{language}-{}", app.file_name().unwrap().to_string_lossy());
            guests.push(GuestCrate {
                name,
                dir: app,
                wasm: PathBuf::new(),
            });
        }
    }

    for (language, app) in OTHER_APPS {
        let app = root.join(app);
        build_language_app(&root, language, &app);
        guests.push(GuestCrate {
            name: format!("{language}-{}", app.file_name().unwrap().to_string_lossy()),
            dir: app,
            wasm: PathBuf::new(),
        });
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let out = out_dir.join("guests.rs");
    fs::write(&out, constants(&guests)).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// Tells cargo to rerun this script when `path` changes; a missing path is
/// skipped, because cargo would treat it as always changed.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The crates listed in `members = [...]` of a workspace's Cargo.toml; those
/// named in `lean` are found in the lean build's target directory.
fn member_crates(workspace: &Path, lean: &[&str]) -> Vec<GuestCrate> {
    let manifest = workspace.join("Cargo.toml");
    let text = read(&manifest);
    let members = text
        .split_once("members")
        .and_then(|(_, rest)| rest.split_once('['))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| quoted_strings(list))
        .unwrap_or_else(|| panic!("{}: expected `members = [...]`", manifest.display()));
    members
        .into_iter()
        .map(|member| {
            let dir = workspace.join(&member);
            let name = package_name(&dir.join("Cargo.toml"));
            let target = if lean.contains(&name.as_str()) {
                LEAN_TARGET
            } else {
                WASM_TARGET
            };
            let wasm = workspace
                .join("target")
                .join(target)
                .join("release")
                .join(format!("{}.wasm", name.replace('-', "_")));
            GuestCrate { name, dir, wasm }
        })
        .collect()
}

/// The `name = "..."` of a crate's `[package]` table.
fn package_name(manifest: &Path) -> String {
    let text = read(manifest);
    let package = text
        .split_once("[package]")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("{}: no [package] table", manifest.display()));
    package
        .lines()
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == "name")
        .and_then(|(_, value)| quoted_strings(value).into_iter().next())
        .unwrap_or_else(|| panic!("{}: no `name = \"...\"` in [package]", manifest.display()))
}

/// Every `"..."` string in `text`, in order.
fn quoted_strings(text: &str) -> Vec<String> {
    text.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Runs `cargo build --release --target TARGET` in `workspace` (only
/// `packages`, when some are named), with the same cargo but none of the
/// outer build's settings.
fn build_workspace(cargo: &std::ffi::OsStr, workspace: &Path, target: &str, packages: &[&str]) {
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", target]);
    for package in packages {
        command.args(["-p", package]);
    }
    for (key, _) in env::vars_os() {
        if let Some(key) = key.to_str()
            && breaks_nested_cargo(key)
        {
            command.env_remove(key);
        }
    }

    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} in {}: {e}",
            cargo.to_string_lossy(),
            workspace.display()
        )
    });
    if output.status.success() {
        return;
    }

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}{stderr}");
    let target_missing = stderr.contains("may not be installed")
        || stderr.contains("can't find crate for `core`")
        || stderr.contains("can't find crate for `std`");
    if target_missing {
        panic!(
            "building the guests in {} failed: the {target} target is not installed; \
             run `rustup target add {target}` (or `make test`)",
            workspace.display()
        );
    }
    panic!(
        "`cargo build --release --target {target}` failed in {} ({}); its output is above",
        workspace.display(),
        output.status
    );
}

/// Whether an environment variable, set by the outer cargo (or for it), would
/// leak into the nested build: its target dir, flags, profile overrides,
/// jobserver, wrappers (clippy-driver) or the build-script variables.
/// Network, registry and terminal settings are kept; so is `RUSTC`, so the
/// nested build uses the same compiler.
fn breaks_nested_cargo(key: &str) -> bool {
    const KEEP_PREFIXES: &[&str] = &[
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
        "CARGO_TERM_",
    ];
    if key == "CARGO_HOME" || KEEP_PREFIXES.iter().any(|prefix| key.starts_with(prefix)) {
        return false;
    }
    key.starts_with("CARGO")
        || key.starts_with("__CARGO")
        || key.starts_with("RUSTC_")
        || key.starts_with("RUSTDOC")
        || matches!(
            key,
            "RUSTFLAGS"
                | "TARGET"
                | "HOST"
                | "OUT_DIR"
                | "PROFILE"
                | "OPT_LEVEL"
                | "DEBUG"
                | "NUM_JOBS"
                | "MAKEFLAGS"
                | "MFLAGS"
        )
}

/// The text of `guests.rs`.
fn constants(guests: &[GuestCrate]) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = String::from("// Generated by tests/build.rs: the guest components the tests load.\n\n");
    let mut all_wasm = String::new();
    let mut all_apps = String::new();
    for guest in guests {
        let ident = guest.name.to_uppercase().replace('-', "_");
        if !seen.insert(ident.clone()) {
            panic!(
                "two guest crates are called `{}`; constant names must be unique",
                guest.name
            );
        }
        if !guest.wasm.as_os_str().is_empty() {
            let wasm = guest.wasm.display().to_string();
            writeln!(out, "/// The built `{}` component.", guest.name).unwrap();
            writeln!(out, "pub const {ident}_WASM: &str = {wasm:?};").unwrap();
            writeln!(all_wasm, "    ({:?}, {ident}_WASM),", guest.name).unwrap();
        }
        if guest.dir.join("waterspout.toml").is_file() {
            let app = guest.dir.display().to_string();
            writeln!(
                out,
                "/// The `{}` app directory (holds its `waterspout.toml`).",
                guest.name
            )
            .unwrap();
            writeln!(out, "pub const {ident}_APP: &str = {app:?};").unwrap();
            writeln!(all_apps, "    ({:?}, {ident}_APP),", guest.name).unwrap();
        }
    }
    writeln!(out, "\n/// Every built component, as `(crate name, wasm path)`.").unwrap();
    writeln!(out, "pub const ALL_WASM: &[(&str, &str)] = &[\n{all_wasm}];").unwrap();
    writeln!(out, "\n/// Every app directory, as `(crate name, directory)`.").unwrap();
    writeln!(out, "pub const ALL_APPS: &[(&str, &str)] = &[\n{all_apps}];").unwrap();
    out
}

/// The app directories of `examples/<language>/`, sorted.
fn language_apps(root: &Path, language: &str) -> Vec<PathBuf> {
    let dir = root.join("examples").join(language);
    watch(&dir);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut apps: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("waterspout.toml").is_file())
        .collect();
    apps.sort();
    apps
}

/// Builds one app of another language with its manifest's `build` lines,
/// unless the hash of its inputs matches the one saved at the last build.
fn build_language_app(root: &Path, language: &str, app: &Path) {
    let sdk = root.join("guest-sdk").join(language);
    let inputs = [app.to_path_buf(), sdk, root.join("wit")];
    for input in &inputs {
        watch(input);
    }
    let manifest_path = app.join("waterspout.toml");
    let manifest: toml::Table = read(&manifest_path)
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
    let mut commands: Vec<String> = Vec::new();
    let mut outputs: Vec<PathBuf> = Vec::new();
    for handler in manifest
        .get("handler")
        .and_then(|h| h.as_table())
        .into_iter()
        .flat_map(|t| t.values())
    {
        if let Some(wasm) = handler.get("wasm").and_then(|w| w.as_str()) {
            outputs.push(app.join(wasm));
        }
        if let Some(build) = handler.get("build").and_then(|b| b.as_str())
            && !commands.iter().any(|c| c == build)
        {
            commands.push(build.to_owned());
        }
    }
    let hash = inputs_hash(&inputs);
    let stamps: Vec<PathBuf> = outputs
        .iter()
        .map(|w| w.with_extension("wasm.inputs-sha256"))
        .collect();
    let fresh = !outputs.is_empty()
        && outputs.iter().zip(&stamps).all(|(wasm, stamp)| {
            wasm.is_file() && fs::read_to_string(stamp).is_ok_and(|saved| saved.trim() == hash)
        });
    if fresh {
        return;
    }
    for command in &commands {
        let mut sh = Command::new("sh");
        sh.arg("-c").arg(command).current_dir(app);
        for (key, _) in env::vars_os() {
            if let Some(key) = key.to_str()
                && breaks_nested_cargo(key)
            {
                sh.env_remove(key);
            }
        }
        let output = sh
            .output()
            .unwrap_or_else(|e| panic!("{}: cannot run `{command}`: {e}", app.display()));
        if !output.status.success() {
            eprintln!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            panic!(
                "{}: the build command `{command}` failed ({}); its output is above \
                 (the {language} toolchain is installed by `make tools`)",
                manifest_path.display(),
                output.status
            );
        }
    }
    for (wasm, stamp) in outputs.iter().zip(&stamps) {
        if !wasm.is_file() {
            panic!(
                "{}: the build commands succeeded but {} is missing",
                manifest_path.display(),
                wasm.display()
            );
        }
        fs::write(stamp, &hash).unwrap_or_else(|e| panic!("cannot write {}: {e}", stamp.display()));
    }
}

/// A SHA-256 over every file under `inputs` (path and contents), skipping
/// what builds produce: dot files, `target`, `node_modules`, `__pycache__`, `*.wasm`.
fn inputs_hash(inputs: &[PathBuf]) -> String {
    use sha2::Digest as _;
    let mut files = Vec::new();
    for input in inputs {
        collect_files(input, &mut files);
    }
    files.sort();
    let mut hasher = sha2::Sha256::new();
    for file in files {
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(fs::read(&file).unwrap_or_default());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let skipped = name.starts_with('.')
        || matches!(name.as_str(), "target" | "node_modules" | "__pycache__")
        || name.ends_with(".wasm");
    if skipped {
        return;
    }
    if path.is_dir() {
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.filter_map(Result::ok) {
                collect_files(&entry.path(), files);
            }
        }
    } else if path.is_file() {
        files.push(path.to_owned());
    }
}
