//! `serve --watch`: Tornado's autoreload without the restart. When a
//! handler's wasm file changes on disk, it is validated and swapped in
//! process; requests in flight finish on the old version, and a file that
//! fails validation is logged while the old version keeps serving.
//!
//! The parent directory is watched rather than the file, because build tools
//! replace files (write elsewhere, then rename or hard-link) and a watch on
//! the old inode would go quiet. Events are debounced: a file is read once
//! it has been quiet for [`DEBOUNCE`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::deploy::Source;
use crate::registry::sha256_hex;

/// How long a file must be quiet before it is read.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watching stops when this is dropped.
pub struct WatchHandle {
    _watcher: RecommendedWatcher,
    /// The app's template directory, when it has one.
    _templates: Option<RecommendedWatcher>,
    task: JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching every manifest handler's wasm file. Call inside a tokio
/// runtime.
pub fn start(app: Arc<App>) -> anyhow::Result<WatchHandle> {
    let mut files: HashMap<PathBuf, Vec<String>> = HashMap::new();
    let mut dirs = HashSet::new();
    for spec in &app.deployer().manifest().handlers {
        let (dir, file) = split(&spec.wasm)
            .with_context(|| format!("--watch: handler {:?}: {}", spec.name, spec.wasm.display()))?;
        files.entry(dir.join(file)).or_default().push(spec.name.clone());
        dirs.insert(dir);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        // Opening or reading a file (we do) is no change.
        Ok(event)
            if matches!(
                event.kind,
                EventKind::Access(notify::event::AccessKind::Open(_) | notify::event::AccessKind::Read)
            ) => {}
        Ok(event) => {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
        Err(e) => tracing::warn!("--watch: {e}"),
    })?;
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("--watch: cannot watch {}", dir.display()))?;
        tracing::info!("--watch: watching {}", dir.display());
    }
    let templates = watch_templates(&app)?;
    let task = tokio::spawn(debounce(app, files, rx));
    Ok(WatchHandle {
        _watcher: watcher,
        _templates: templates,
        task,
    })
}

/// Templates reload when a file under the app's `template_path` changes:
/// the loaded ones are dropped and the next render reads the files again.
fn watch_templates(app: &Arc<App>) -> anyhow::Result<Option<RecommendedWatcher>> {
    let web = app.web().clone();
    let Some(dir) = web.templates().map(|t| t.dir().to_owned()) else {
        return Ok(None);
    };
    if !dir.is_dir() {
        tracing::warn!("--watch: template_path {} is not a directory", dir.display());
        return Ok(None);
    }
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
        Ok(_) => {
            if let Some(templates) = web.templates() {
                templates.reload();
                tracing::info!(
                    "--watch: templates in {} changed: reloaded",
                    templates.dir().display()
                );
            }
        }
        Err(e) => tracing::warn!("--watch: {e}"),
    })?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .with_context(|| format!("--watch: cannot watch {}", dir.display()))?;
    tracing::info!("--watch: watching templates in {}", dir.display());
    Ok(Some(watcher))
}

/// The canonical parent directory and the file name.
fn split(path: &Path) -> anyhow::Result<(PathBuf, std::ffi::OsString)> {
    let file = path.file_name().context("not a file path")?.to_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir =
        std::fs::canonicalize(parent).with_context(|| format!("cannot resolve {}", parent.display()))?;
    Ok((dir, file))
}

async fn debounce(
    app: Arc<App>,
    files: HashMap<PathBuf, Vec<String>>,
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
) {
    let mut pending = HashSet::new();
    while let Some(path) = rx.recv().await {
        if files.contains_key(&path) {
            pending.insert(path);
        }
        // Wait until the files have been quiet for DEBOUNCE.
        loop {
            match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(Some(path)) => {
                    if files.contains_key(&path) {
                        pending.insert(path);
                    }
                }
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        for path in pending.drain() {
            for name in &files[&path] {
                reload(&app, name, &path).await;
            }
        }
    }
}

async fn reload(app: &Arc<App>, name: &str, path: &Path) {
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        // Removed or mid-replace; the next event brings it back.
        Err(e) => {
            tracing::debug!(
                handler = name,
                "--watch: {} not readable now: {e}",
                path.display()
            );
            return;
        }
    };
    let Some(active) = app.deployer().registry().get(name).map(|slot| slot.active()) else {
        return;
    };
    if active.sha256 == sha256_hex(&bytes) {
        return;
    }
    let (task_app, task_name) = (app.deployer().clone(), name.to_owned());
    // Its own task: stopping the watcher must not cut a swap in half.
    let result =
        tokio::spawn(async move { task_app.deploy(&task_name, bytes, true, Source::Watch).await }).await;
    match result {
        Ok(Ok(info)) => tracing::info!(
            handler = name,
            "--watch: {} changed: version {} is active (was {})",
            path.display(),
            info.version,
            active.version
        ),
        Ok(Err(e)) => tracing::warn!(
            handler = name,
            "--watch: {} changed but was refused: {e}; version {} keeps serving",
            path.display(),
            active.version
        ),
        Err(e) => tracing::error!(handler = name, "--watch: reload failed: {e}"),
    }
}
