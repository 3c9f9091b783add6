//! `waterspout build`: runs each handler's `build` command (as Spin's
//! manifest does) in the manifest's directory.

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
