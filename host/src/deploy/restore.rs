//! Start-up: what the version store says was active wins over the
//! manifest, except that a manifest wasm file changed since it was last
//! recorded counts as a new deploy. A stored version that cannot be loaded
//! falls back to the most recent earlier one that can.

use std::path::PathBuf;
use std::sync::Arc;

use crate::deploy::{
    HandlerRecord, RouteTableError, STATE_FILE, Source, StoreError, VersionStore, routes_from_docs,
    set_active, valid_handler_name,
};
use crate::manifest::{HandlerLimits, Manifest, ManifestError};
use crate::registry::{Registry, sha256_hex};
use crate::router::Route;
use crate::runtime::{Components, HandlerVersion};

/// Why the app's handlers could not be restored at start.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{}: the route table saved over the admin API is no longer valid \
         (fix it there, or remove its \"routes\" entry to use the manifest's)",
        file.display()
    )]
    SavedRoutes {
        file: PathBuf,
        #[source]
        source: RouteTableError,
    },
    #[error("handler {handler:?}: no stored version can be loaded: {problems}")]
    NoLoadableVersion { handler: String, problems: String },
}

/// At start: installs every handler's version in `registry` (the store's
/// active version wins; a manifest wasm file that changed since it was last
/// recorded counts as a new deploy) and returns the routes (the store's, once
/// replaced over the API, else the manifest's). Blocking.
pub(super) fn restore(
    manifest: &Manifest,
    components: &Components,
    registry: &Registry<HandlerVersion>,
    store: &VersionStore,
) -> Result<Vec<Route>, RestoreError> {
    let state = store.state();
    for spec in &manifest.handlers {
        if store.dir().is_some() && !valid_handler_name(&spec.name) {
            return Err(manifest
                .error(
                    Some(spec.line),
                    format!(
                        "handler name {:?} cannot be kept in the store: use letters, digits, '-', '_' or '.'",
                        spec.name
                    ),
                )
                .into());
        }
        let bytes = std::fs::read(&spec.wasm).map_err(|e| {
            manifest.error(
                Some(spec.line),
                format!(
                    "handler {:?}: cannot read {}: {e}{}",
                    spec.name,
                    spec.wasm.display(),
                    if spec.build.is_some() {
                        " (run `waterspout build` or `serve --build` first)"
                    } else {
                        ""
                    }
                ),
            )
        })?;
        let sha = sha256_hex(&bytes);
        let compile_file = || {
            components.prepare_logged(&spec.name, &bytes).map_err(|e| {
                manifest.error(
                    Some(spec.line),
                    format!(
                        "handler {:?} ({}): {}",
                        spec.name,
                        spec.wasm.display(),
                        crate::text::report(&e)
                    ),
                )
            })
        };
        let record_file = |world, prepared| -> Result<HandlerVersion, RestoreError> {
            let meta = store.record_version(&spec.name, &bytes, &sha, world, Source::Manifest)?;
            store.update(|s| {
                let record = s.handlers.entry(spec.name.clone()).or_insert(HandlerRecord {
                    active: meta.version,
                    previous: Vec::new(),
                    manifest_sha256: None,
                });
                set_active(record, meta.version);
                record.manifest_sha256 = Some(sha.clone());
                Ok::<_, StoreError>(())
            })?;
            let mut version = HandlerVersion::new(
                &spec.name,
                meta.version,
                sha.clone(),
                bytes.len(),
                world,
                prepared,
            );
            version.uploaded_at = meta.uploaded_at_time();
            Ok(version)
        };

        let version = match state.handlers.get(&spec.name) {
            None => {
                let (world, prepared) = compile_file()?;
                record_file(world, prepared)?
            }
            Some(record) => {
                let active_sha = store.meta(&spec.name, record.active).map(|m| m.sha256);
                let file_changed =
                    record.manifest_sha256.as_deref() != Some(&sha) && active_sha.as_deref() != Some(&sha);
                if file_changed {
                    match compile_file() {
                        Ok((world, prepared)) => {
                            tracing::info!(handler = %spec.name, file = %spec.wasm.display(),
                                "the manifest's wasm file changed since it was last recorded: deploying it");
                            record_file(world, prepared)?
                        }
                        Err(e) => {
                            tracing::error!(handler = %spec.name, "{e}; serving the stored active version {}", record.active);
                            load_stored(components, store, &spec.name, record)
                                .map_err(|_| RestoreError::Manifest(e))?
                        }
                    }
                } else {
                    if record.manifest_sha256.as_deref() != Some(&sha) {
                        store.update(|s| {
                            if let Some(r) = s.handlers.get_mut(&spec.name) {
                                r.manifest_sha256 = Some(sha.clone());
                            }
                            Ok::<_, StoreError>(())
                        })?;
                    }
                    // The file holds the active version's very bytes: no
                    // need to read them back from the store.
                    let same_bytes = active_sha.as_deref() == Some(&sha);
                    let from_file = same_bytes
                        .then(|| components.prepare_logged(&spec.name, &bytes).ok())
                        .flatten()
                        .map(|(world, prepared)| {
                            let mut version = HandlerVersion::new(
                                &spec.name,
                                record.active,
                                sha.clone(),
                                bytes.len(),
                                world,
                                prepared,
                            );
                            if let Some(meta) = store.meta(&spec.name, record.active) {
                                version.uploaded_at = meta.uploaded_at_time();
                            }
                            version
                        });
                    match from_file
                        .ok_or(())
                        .or_else(|()| load_stored(components, store, &spec.name, record))
                    {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::error!(handler = %spec.name, "{e}; falling back to the manifest's file");
                            let (world, prepared) = compile_file()?;
                            record_file(world, prepared)?
                        }
                    }
                }
            }
        };
        tracing::debug!(handler = %spec.name, version = version.version, "loaded");
        registry.install(&spec.name, spec.limits.clone(), Arc::new(version));
    }

    // Handlers created over the API.
    for (name, record) in &state.handlers {
        if manifest.handler(name).is_some() {
            continue;
        }
        let version = load_stored(components, store, name, record)?;
        registry.install(name, HandlerLimits::default(), Arc::new(version));
    }

    let names = registry.names();
    match &state.routes {
        Some(docs) => routes_from_docs(docs, &names).map_err(|source| RestoreError::SavedRoutes {
            file: store.dir().unwrap_or(std::path::Path::new(".")).join(STATE_FILE),
            source,
        }),
        None => manifest
            .routes
            .iter()
            .map(|r| {
                Route::new(&r.pattern, r.handler.clone(), r.name.clone(), r.settings.clone()).map_err(|e| {
                    manifest
                        .error(Some(r.line), format!("invalid route pattern: {e}"))
                        .into()
                })
            })
            .collect(),
    }
}

/// The store's active version of `name`, or, if that cannot be loaded, the
/// most recent earlier one that can (and the state is corrected to it).
fn load_stored(
    components: &Components,
    store: &VersionStore,
    name: &str,
    record: &HandlerRecord,
) -> Result<HandlerVersion, RestoreError> {
    let candidates = std::iter::once(record.active).chain(record.previous.iter().rev().copied());
    let mut problems = Vec::new();
    for (i, number) in candidates.enumerate() {
        let loaded = store
            .read_version(name, number)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let (world, prepared) = components
                    .prepare_logged(name, &bytes)
                    .map_err(|e| crate::text::report(&e))?;
                let meta = store.meta(name, number).expect("read_version checked it");
                let mut version =
                    HandlerVersion::new(name, number, meta.sha256.clone(), bytes.len(), world, prepared);
                version.uploaded_at = meta.uploaded_at_time();
                Ok(version)
            });
        match loaded {
            Ok(version) => {
                if i > 0 {
                    tracing::error!(
                        handler = name,
                        "stored version {} cannot be loaded ({}); serving version {number}",
                        record.active,
                        problems.join("; ")
                    );
                    let _ = store.update(|s| {
                        if let Some(r) = s.handlers.get_mut(name) {
                            r.previous.truncate(r.previous.len() - i);
                            r.active = number;
                        }
                        Ok::<_, StoreError>(())
                    });
                }
                return Ok(version);
            }
            Err(e) => problems.push(format!("version {number}: {e}")),
        }
    }
    Err(RestoreError::NoLoadableVersion {
        handler: name.to_owned(),
        problems: problems.join("; "),
    })
}
