//! App directories made for a test, and the components they serve.

/// The bytes of a built component (a `guests::*_WASM` path).
pub fn read_wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A temporary app directory holding `manifest` as its `waterspout.toml`.
pub fn app_with_manifest(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("waterspout.toml"), manifest).unwrap();
    dir
}

/// A temporary app whose handler `version`, routed at `/`, is a copy of
/// `wasm_file` beside the manifest (`version.wasm`), so a test may rewrite it
/// or restart on it.
pub fn version_app(wasm_file: &str) -> tempfile::TempDir {
    let dir = app_with_manifest(
        "[[route]]\npattern = \"/\"\nhandler = \"version\"\n\n[handler.version]\nwasm = \"version.wasm\"\n",
    );
    std::fs::copy(wasm_file, dir.path().join("version.wasm")).unwrap_or_else(|e| panic!("{wasm_file}: {e}"));
    dir
}
