//! The manifest of scenario e, generated: the hello example of every guest
//! language, each fresh and with instance reuse, on routes of their own.
//! Shared by `waterspout-bench` and the `languages` criterion bench.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The examples served, in table order: (language, example directory).
pub const EXAMPLES: &[(&str, &str)] = &[
    ("Rust", "hello"),
    ("Python", "python/hello"),
    ("JavaScript", "js/hello"),
    ("C", "c/hello"),
    ("Rust wasi:http 0.3", "wasi-hello-p3"),
];

/// One handler of the generated manifest: an example's component with
/// options of its own.
#[derive(Debug, Clone)]
pub struct Variant {
    pub language: &'static str,
    /// The handler's name, also its route (`/NAME`).
    pub handler: String,
    pub wasm: PathBuf,
    /// The handler class the example's route picks, if it names one.
    pub class: Option<String>,
    /// The handler's options (`reuse`, `memory_limit_mb`; `concurrency`
    /// for 0.3 components when the host has it): written as they are.
    pub options: toml::Table,
}

impl Variant {
    /// Requests one instance serves at once (`concurrency`, default 1).
    pub fn concurrency(&self) -> u32 {
        self.options
            .get("concurrency")
            .and_then(|r| r.as_integer())
            .unwrap_or(1)
            .try_into()
            .unwrap_or(1)
    }

    pub fn reuse(&self) -> u32 {
        self.options
            .get("reuse")
            .and_then(|r| r.as_integer())
            .unwrap_or(0)
            .try_into()
            .unwrap_or(0)
    }
}

/// The handler of the example in `examples/DIR` answering `/`: its
/// component and class (from the example's own manifest, so a rename there
/// is followed here).
fn example_handler(root: &Path, dir: &str) -> anyhow::Result<(PathBuf, Option<String>, u64)> {
    let manifest = waterspout::Manifest::load(&root.join("examples").join(dir))?;
    let route = manifest
        .routes
        .iter()
        .find(|r| r.pattern == "/")
        .or(manifest.routes.first())
        .context("the example has no route")?;
    let handler = manifest
        .handler(&route.handler)
        .context("the route's handler is not declared")?;
    // A route's `class` reaches the guest as this setting (host: manifest::CLASS_SETTING).
    let class = route
        .settings
        .iter()
        .find(|(k, _)| k == "waterspout:class")
        .map(|(_, v)| v.clone());
    Ok((handler.wasm.clone(), class, handler.limits.memory_limit_mb))
}

/// Every example fresh (`reuse = 0`) and with `reuse` requests per
/// instance, in [`EXAMPLES`] order.
pub fn variants(root: &Path, reuse: u32) -> anyhow::Result<Vec<Variant>> {
    let mut out = Vec::new();
    for &(language, dir) in EXAMPLES {
        let (wasm, class, memory_mb) =
            example_handler(root, dir).with_context(|| format!("reading examples/{dir}/waterspout.toml"))?;
        anyhow::ensure!(
            wasm.is_file(),
            "{} is missing: build the example first (`make bench` does: `waterspout build examples/{dir}`)",
            wasm.display()
        );
        let base = dir.replace('/', "-");
        for reuse in [0, reuse] {
            let mut options = toml::Table::new();
            options.insert("reuse".into(), i64::from(reuse).into());
            options.insert(
                "memory_limit_mb".into(),
                i64::try_from(memory_mb).unwrap_or(i64::MAX).into(),
            );
            out.push(Variant {
                language,
                handler: if reuse == 0 {
                    base.clone()
                } else {
                    format!("{base}-reuse")
                },
                wasm: wasm.clone(),
                class: class.clone(),
                options,
            });
        }
        // A wasi:http 0.3 instance may also serve several requests at once:
        // `wasmtime serve`'s default (16 at a time on a reused instance).
        if language.contains("0.3") {
            let mut options = out.last().expect("pushed above").options.clone();
            options.insert("concurrency".into(), i64::from(SHARED_CONCURRENCY).into());
            out.push(Variant {
                language,
                handler: format!("{base}-shared"),
                wasm: wasm.clone(),
                class: class.clone(),
                options,
            });
        }
    }
    Ok(out)
}

/// `concurrency` of scenario e's shared 0.3 variant: `wasmtime serve` 48's
/// requests at once per reused 0.3 instance.
pub const SHARED_CONCURRENCY: u32 = 16;

/// The manifest serving every variant at `/HANDLER`.
pub fn manifest(variants: &[Variant]) -> String {
    let mut doc = toml::Table::new();
    let routes: Vec<toml::Value> = variants
        .iter()
        .map(|v| {
            let mut route = toml::Table::new();
            route.insert("pattern".into(), format!("/{}", v.handler).into());
            route.insert("handler".into(), v.handler.clone().into());
            if let Some(class) = &v.class {
                route.insert("class".into(), class.clone().into());
            }
            route.into()
        })
        .collect();
    doc.insert("route".into(), routes.into());
    let mut handlers = toml::Table::new();
    for v in variants {
        let mut handler = v.options.clone();
        handler.insert("wasm".into(), v.wasm.display().to_string().into());
        handlers.insert(v.handler.clone(), handler.into());
    }
    doc.insert("handler".into(), handlers.into());
    format!(
        "# Generated by waterspout-bench (scenario e).\n\n{}",
        toml::to_string(&doc).expect("a table of strings and integers serializes")
    )
}
