//! App directories made for a test, and the components they serve.

use std::path::Path;

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

/// A temporary app of the Rust hello (handler world, main engine) at `/`
/// and the wasi:http 0.3 hello (concurrent engine) at `/p3/…`.
pub fn hello_and_wasi_http3_app() -> tempfile::TempDir {
    app_with_manifest(&format!(
        "[[route]]\npattern = \"/p3/.*\"\nhandler = \"p3\"\n\n\
         [[route]]\npattern = \"/\"\nhandler = \"hello\"\n\n\
         [handler.hello]\nwasm = {:?}\n\n[handler.p3]\nwasm = {:?}\n",
        crate::guests::HELLO_WASM,
        crate::guests::WASI_HELLO_P3_WASM,
    ))
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

/// The app in `src` copied to a temporary directory with its manifest passed
/// through `edit`: wasm paths made absolute, build lines dropped, its
/// templates and static files copied.
pub fn app_copy(src: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let src = Path::new(src);
    let manifest = std::fs::read_to_string(src.join("waterspout.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("build ="))
        .map(|l| match l.strip_prefix("wasm = ") {
            Some(path) => {
                let wasm = src
                    .join(path.trim_matches('"'))
                    .canonicalize()
                    .expect("the guest is built");
                format!("wasm = {:?}", wasm.display().to_string())
            }
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = app_with_manifest(&edit(manifest));
    for sub in ["templates", "static"] {
        if src.join(sub).is_dir() {
            copy_dir(&src.join(sub), &dir.path().join(sub));
        }
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
