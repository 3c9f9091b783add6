//! Fuzz regressions (issue 6, item 6): every input kept under
//! `fuzz/regressions/<target>/` (crashes `scripts/fuzz.sh` found, and
//! hand-written cases) and the seeds under `fuzz/seeds/<target>/` replayed
//! through the same functions the fuzz targets call, on stable, without
//! libFuzzer.

#[path = "../../fuzz/src/lib.rs"]
mod fuzzed;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for kind in ["regressions", "seeds"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in dir.flatten() {
            if entry.path().is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = fuzzed::TARGETS.iter().find(|(name, _)| *name == target).unwrap();
    let files = inputs(target);
    assert!(!files.is_empty(), "no inputs for {target}");
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let start = Instant::now();
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {} panics: {message}", file.display());
        }
        // A fuzz "timeout" input must stay fast once fixed.
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "{target}: {} took {took:?}",
            file.display()
        );
    }
}

#[test]
fn manifest_inputs() {
    replay("manifest");
}

#[test]
fn router_inputs() {
    replay("router");
}

#[test]
fn body_inputs() {
    replay("body");
}

#[test]
fn upload_inputs() {
    replay("upload");
}
