//! `waterspout build`: runs each handler's `build` command (as Spin's
//! manifest does) in the manifest's directory; and a Tornado app file
//! (`hello.py`) built as it is, its routes taken from its `Application`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::manifest::Manifest;

/// Runs every handler's build command once (handlers sharing a command run it
/// once). Output goes to the terminal.
pub fn build_app(manifest: &Manifest) -> anyhow::Result<()> {
    let mut done: Vec<&str> = Vec::new();
    for handler in &manifest.handlers {
        let Some(command) = handler.build.as_deref() else {
            continue;
        };
        if done.contains(&command) {
            continue;
        }
        done.push(command);
        tracing::info!(handler = %handler.name, "building: {command}");
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&manifest.dir)
            .status()
            .map_err(|e| anyhow::anyhow!("handler {:?}: cannot run `{command}`: {e}", handler.name))?;
        if !status.success() {
            let hint = if command.contains("wasm32-wasip2") {
                " (is the target installed? `rustup target add wasm32-wasip2`)"
            } else {
                ""
            };
            anyhow::bail!(
                "{}:{}: handler {:?}: `{command}` failed with {status}{hint}",
                manifest.file.display(),
                handler.line,
                handler.name
            );
        }
    }
    Ok(())
}

/// Where a Tornado app file's component and manifest go:
/// `DIR/.waterspout/STEM/` beside `DIR/STEM.py`.
pub fn tornado_out_dir(app: &Path) -> PathBuf {
    let dir = app.parent().unwrap_or(Path::new("."));
    let stem = app.file_stem().unwrap_or_default();
    dir.join(".waterspout").join(stem)
}

/// Whether `path` names a Python app file rather than an app directory.
pub fn is_python_app(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "py")
}

/// Builds the Tornado app in `app` (a `.py` file that makes a
/// `tornado.web.Application`) into the component `wasm`, and writes beside
/// it `waterspout.toml` with the Application's routes, through the Python
/// SDK's build command (`guest-sdk/python/build … --manifest`). A Tornado API
/// the SDK does not provide fails here, naming it. Returns the manifest's
/// directory.
pub fn build_tornado_app(app: &Path, wasm: &Path) -> anyhow::Result<PathBuf> {
    let script = python_sdk_build(app)?;
    let out = wasm.parent().unwrap_or(Path::new(".")).to_owned();
    std::fs::create_dir_all(&out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let manifest = out.join(crate::manifest::MANIFEST_FILE);
    tracing::info!(app = %app.display(), "building the Tornado app (a Python component takes ~30 s)");
    let status = Command::new(&script)
        .arg(app)
        .arg(wasm)
        .arg("--manifest")
        .arg(&manifest)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", script.display()))?;
    anyhow::ensure!(
        status.success(),
        "building {} failed ({status}); the Python SDK's message is above",
        app.display()
    );
    Ok(out)
}

/// The Python SDK's build command: `$WATERSPOUT_PYTHON_SDK/build`, else
/// `guest-sdk/python/build` in the first of the app's folder, the current
/// folder and the folder of this binary (or any folder above them) that
/// holds one.
fn python_sdk_build(app: &Path) -> anyhow::Result<PathBuf> {
    if let Some(sdk) = std::env::var_os("WATERSPOUT_PYTHON_SDK") {
        return Ok(PathBuf::from(sdk).join("build"));
    }
    let starts = [
        std::path::absolute(app).ok(),
        std::env::current_dir().ok(),
        std::env::current_exe().ok(),
    ];
    starts
        .into_iter()
        .flatten()
        .flat_map(|start| start.ancestors().map(Path::to_owned).collect::<Vec<_>>())
        .map(|dir| dir.join("guest-sdk/python/build"))
        .find(|script| script.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot find the Python SDK (guest-sdk/python/build) above {} or here; \
                 run from the Waterspout checkout or set WATERSPOUT_PYTHON_SDK",
                app.display()
            )
        })
}
