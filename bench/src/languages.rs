//! Scenario e: the languages. One Waterspout serves the hello example of
//! every guest language — Python, JavaScript and C, each with a fresh
//! instance per request and with instance reuse; the Rust hello as the
//! reference; the Rust wasi:http 0.3 hello — from one generated manifest,
//! beside `wasmtime serve` 48 on the very same 0.3 component and Tornado on the seed's
//! hello, all measured back to back at each concurrency.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::variants::{SHARED_CONCURRENCY, manifest, variants};
use crate::{peers, wrk};

/// The peers the ratios of scenario e divide by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The seed's hello in one Tornado process (issue #15's "Tornado").
    Tornado,
    /// Tornado with a process per core (`fork_processes(0)`).
    TornadoPerCore,
    /// `wasmtime serve` 48 on the same 0.3 component.
    WasmtimeServe,
}

impl Baseline {
    fn name(self) -> &'static str {
        match self {
            Baseline::Tornado => "Tornado",
            Baseline::TornadoPerCore => "Tornado per core",
            Baseline::WasmtimeServe => "wasmtime serve",
        }
    }
}

/// One measurement of scenario e.
#[derive(Debug, Clone)]
pub struct Sample {
    pub server: String,
    pub language: String,
    pub reuse: String,
    pub size_mb: f64,
    /// Which peer this row is, if it is one.
    pub baseline: Option<Baseline>,
    pub connections: u32,
    pub result: wrk::WrkResult,
}

struct Server {
    server: String,
    language: String,
    reuse: String,
    size_mb: f64,
    baseline: Option<Baseline>,
    url: String,
    /// Watched for how its processes share the work (Tornado per core).
    pid: Option<u32>,
}

fn size_mb(path: &Path) -> f64 {
    std::fs::metadata(path)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(f64::NAN)
}

/// Runs scenario e and returns its section.
pub fn scenario_e(
    runtime: &tokio::runtime::Runtime,
    root: &Path,
    duration: u64,
    connections: &[u32],
    reuse: u32,
    no_peers: bool,
) -> anyhow::Result<String> {
    wrk::check_installed()?;
    let variants = variants(root, reuse)?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("waterspout.toml"), manifest(&variants))?;
    // The compile cache under target/ keeps the big components' compiles
    // (seconds each, cold) from one run to the next.
    let mut config = waterspout::ServerConfig::default();
    config.engine.cache_dir = Some(peers::tools_dir(root).join("compile-cache"));
    let started = std::time::Instant::now();
    let app = waterspout::App::load(dir.path(), config)
        .with_context(|| format!("loading the generated manifest in {}", dir.path().display()))?;
    eprintln!(
        "scenario e: {} handlers loaded in {:.1?}",
        variants.len(),
        started.elapsed()
    );
    let server = runtime.block_on(waterspout::server::start(app, "127.0.0.1:0".parse()?))?;
    let mut servers: Vec<Server> = variants
        .iter()
        .map(|v| Server {
            server: format!("Waterspout, {}", v.language),
            language: v.language.to_owned(),
            reuse: if v.concurrency() > 1 {
                format!("{}, {} at once", v.reuse(), v.concurrency())
            } else if v.reuse() > 1 {
                v.reuse().to_string()
            } else {
                "fresh".into()
            },
            size_mb: size_mb(&v.wasm),
            baseline: None,
            url: format!("http://{}/{}", server.local_addr(), v.handler),
            // In this process: its CPU would be the tool's too.
            pid: None,
        })
        .collect();
    let mut notes = Vec::new();
    let mut peers = Vec::new();
    if !no_peers {
        let p3 = variants
            .iter()
            .find(|v| v.language.contains("0.3"))
            .context("no 0.3 example")?;
        match peers::wasmtime_serve_p3(root, &p3.wasm) {
            Ok(peer) => {
                servers.push(Server {
                    server: "wasmtime serve 48".into(),
                    language: p3.language.into(),
                    reuse: "its default".into(),
                    size_mb: size_mb(&p3.wasm),
                    baseline: Some(Baseline::WasmtimeServe),
                    url: format!("http://{}/", peer.addr),
                    pid: None,
                });
                peers.push(peer);
            }
            Err(e) => notes.push(format!("wasmtime serve skipped: {e:#}")),
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // One process (the seed's hello as its tutorial runs it, the
        // issue's "Tornado"), and one per core (`fork_processes(0)`, as
        // Tornado's docs deploy it): Waterspout uses every core too.
        for processes in [1, 0] {
            let (baseline, processes_label) = if processes == 1 {
                (Baseline::Tornado, String::new())
            } else {
                (Baseline::TornadoPerCore, format!(", {cores} processes"))
            };
            match peers::tornado_processes(root, processes) {
                Ok((peer, version)) => {
                    servers.push(Server {
                        server: format!("{} {version}{processes_label}", baseline.name()),
                        language: "Python (CPython)".into(),
                        reuse: "–".into(),
                        size_mb: f64::NAN,
                        baseline: Some(baseline),
                        url: format!("http://{}/", peer.addr),
                        pid: (processes != 1).then(|| peer.pid()),
                    });
                    peers.push(peer);
                }
                Err(e) => notes.push(format!("Tornado ({processes} processes) skipped: {e:#}")),
            }
        }
    }
    // Every server answers before anything is measured.
    for s in &servers {
        let body = reqwest::blocking::get(&s.url)
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .with_context(|| format!("{} at {}", s.server, s.url))?;
        anyhow::ensure!(
            body.trim() == "Hello, world",
            "{} at {} answered {body:?}",
            s.server,
            s.url
        );
    }
    let mut samples = Vec::new();
    for &c in connections {
        for s in &servers {
            let result = wrk::measure_server(&s.url, c, duration, None, s.pid)?;
            eprintln!(
                "{:>34} reuse {:<11} c={c:<4} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {}",
                s.server, s.reuse, result.rps, result.p50_ms, result.p99_ms, result.errors
            );
            samples.push(Sample {
                server: s.server.clone(),
                language: s.language.clone(),
                reuse: s.reuse.clone(),
                size_mb: s.size_mb,
                baseline: s.baseline,
                connections: c,
                result,
            });
        }
    }
    runtime.block_on(server.shutdown());
    drop(peers);
    let order = |s: &Sample| {
        servers
            .iter()
            .position(|x| x.server == s.server && x.reuse == s.reuse)
    };
    samples.sort_by_key(|s| (order(s), s.connections));
    report(&samples, duration, reuse, &notes)
}

fn report(samples: &[Sample], duration: u64, reuse: u32, notes: &[String]) -> anyhow::Result<String> {
    let mut out = String::from("## e. Languages\n\n");
    writeln!(
        out,
        "`GET` → `Hello, world` from the hello example of each guest language (`examples/python/hello`, `examples/js/hello`, `examples/c/hello`, the Rust `examples/hello` as the reference, the Rust wasi:http 0.3 `examples/wasi-hello-p3`), all served by one Waterspout from a generated manifest: each with a fresh instance per request and with `reuse = {reuse}`; the 0.3 hello also with `reuse = {reuse}` and `concurrency = {SHARED_CONCURRENCY}` (16 requests at once on one instance, as `wasmtime serve` does). `wasmtime serve` 48 runs the very same 0.3 component file (`-Scli -Sp3 -Wcomponent-model-async`; it reuses 0.3 instances by default); Tornado runs the seed's hello world in one process (\"vs Tornado\", the comparison issue #15 names) and in one process per core as Tornado's docs deploy it (`fork_processes(0)`, \"vs Tornado per core\": Waterspout uses every core too). All servers are started first; at each concurrency they are measured back to back ({duration} s each after a 1 s warm-up, the others idle), so a ratio compares numbers taken seconds apart.\n"
    )?;
    writeln!(
        out,
        "| server | guest | component MB | reuse | connections | req/s | p50 ms | p99 ms | errors | vs Tornado | vs Tornado per core | vs wasmtime serve |"
    )?;
    writeln!(
        out,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )?;
    let base = |baseline: Baseline, c: u32| {
        samples
            .iter()
            .find(|b| b.baseline == Some(baseline) && b.connections == c)
            .map(|b| b.result.rps)
    };
    let ratio = |rps: f64, b: Option<f64>| {
        b.map(|b| format!("{:.2}×", rps / b))
            .unwrap_or_else(|| "–".into())
    };
    for s in samples {
        let size = if s.size_mb.is_nan() {
            "–".to_owned()
        } else {
            format!("{:.1}", s.size_mb)
        };
        writeln!(
            out,
            "| {} | {} | {size} | {} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {} |",
            s.server,
            s.language,
            s.reuse,
            s.connections,
            s.result.rps,
            s.result.p50_ms,
            s.result.p99_ms,
            s.result.errors,
            ratio(s.result.rps, base(Baseline::Tornado, s.connections)),
            ratio(s.result.rps, base(Baseline::TornadoPerCore, s.connections)),
            ratio(s.result.rps, base(Baseline::WasmtimeServe, s.connections)),
        )?;
    }
    let per_core: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.baseline == Some(Baseline::TornadoPerCore))
        .collect();
    let runs: Vec<String> = per_core
        .iter()
        .filter_map(|s| Some(format!("c={} {}", s.connections, s.result.busiest_percent()?)))
        .collect();
    if let Some(first) = per_core.first()
        && let Some(sentence) = crate::http::split_sentence(&first.server, &runs)
    {
        writeln!(out, "\n{sentence}")?;
    }
    // The targets, from the rows above.
    // `Shared`: the row with requests served at once on one instance.
    #[derive(PartialEq, Clone, Copy)]
    enum Kind {
        Fresh,
        Reuse,
        Shared,
    }
    let kind = |s: &Sample| {
        if s.reuse == "fresh" {
            Kind::Fresh
        } else if s.reuse.contains("at once") {
            Kind::Shared
        } else {
            Kind::Reuse
        }
    };
    let find = |language: &str, wanted: Kind, c: u32| {
        samples
            .iter()
            .find(|s| {
                s.server.starts_with("Waterspout")
                    && s.language == language
                    && kind(s) == wanted
                    && s.connections == c
            })
            .map(|s| s.result.rps)
    };
    // The rows against Tornado per core carry no target of the issue: they
    // show the same comparison with both servers on every core.
    let targets: [(&str, &str, Kind, Baseline, f64, f64); 7] = [
        (
            "Python, reuse",
            "Python",
            Kind::Reuse,
            Baseline::Tornado,
            2.0,
            4.0,
        ),
        (
            "Python, reuse",
            "Python",
            Kind::Reuse,
            Baseline::TornadoPerCore,
            0.0,
            0.0,
        ),
        (
            "Python, fresh",
            "Python",
            Kind::Fresh,
            Baseline::Tornado,
            0.0,
            1.0,
        ),
        (
            "JavaScript, reuse",
            "JavaScript",
            Kind::Reuse,
            Baseline::Tornado,
            1.5,
            0.0,
        ),
        (
            "JavaScript, reuse",
            "JavaScript",
            Kind::Reuse,
            Baseline::TornadoPerCore,
            0.0,
            0.0,
        ),
        (
            "wasi:http 0.3, reuse",
            "Rust wasi:http 0.3",
            Kind::Reuse,
            Baseline::WasmtimeServe,
            1.0,
            1.5,
        ),
        (
            "wasi:http 0.3, reuse, 16 at once (as `wasmtime serve`)",
            "Rust wasi:http 0.3",
            Kind::Shared,
            Baseline::WasmtimeServe,
            1.0,
            1.5,
        ),
    ];
    let levels: Vec<u32> = {
        let mut l: Vec<u32> = samples.iter().map(|s| s.connections).collect();
        l.sort_unstable();
        l.dedup();
        l
    };
    writeln!(
        out,
        "\nTargets of issue #15 (must reach / aim), as ratios of the rows above:\n"
    )?;
    let mut head = String::from("| row | vs | must | aim |");
    let mut rule = String::from("| --- | --- | --- | --- |");
    for c in &levels {
        write!(head, " c={c} |")?;
        rule.push_str(" --- |");
    }
    writeln!(out, "{head}\n{rule}")?;
    for (name, language, wanted, vs, must, aim) in targets {
        let x = |v: f64| {
            if v > 0.0 {
                format!("≥ {v}×")
            } else {
                "–".into()
            }
        };
        write!(out, "| {name} | {} | {} | {} |", vs.name(), x(must), x(aim))?;
        for &c in &levels {
            let cell = match (find(language, wanted, c), base(vs, c)) {
                (Some(ours), Some(theirs)) => {
                    let r = ours / theirs;
                    let verdict = if must == 0.0 && aim == 0.0 {
                        "(no target)"
                    } else if r >= aim && aim > 0.0 {
                        "aim met"
                    } else if r >= must && must > 0.0 {
                        "met"
                    } else if must > 0.0 {
                        "**missed**"
                    } else {
                        "aim missed"
                    };
                    format!("{r:.2}× {verdict}")
                }
                _ => "not measured".into(),
            };
            write!(out, " {cell} |")?;
        }
        out.push('\n');
    }
    for note in notes {
        writeln!(out, "\n_{note}_")?;
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod manifest_tests {
    use std::path::{Path, PathBuf};

    use crate::variants::{Variant, manifest};

    #[test]
    fn the_generated_manifest_loads_with_every_variant() {
        let variants: Vec<Variant> = ["a", "b"]
            .iter()
            .map(|name| {
                let mut options = toml::Table::new();
                options.insert("reuse".into(), 1000.into());
                options.insert("memory_limit_mb".into(), 64.into());
                Variant {
                    language: "Python",
                    handler: format!("python-hello-{name}"),
                    wasm: PathBuf::from(format!("/nowhere/{name} \"q\".wasm")),
                    class: (*name == "b").then(|| "MainHandler".to_owned()),
                    options,
                }
            })
            .collect();
        let text = manifest(&variants);
        let parsed = waterspout::Manifest::parse(Path::new("/tmp/waterspout.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed.routes.len(), 2);
        assert_eq!(parsed.routes[1].pattern, "/python-hello-b");
        assert_eq!(
            parsed.routes[1].settings.first(),
            Some(&("waterspout:class".to_owned(), "MainHandler".to_owned()))
        );
        let b = parsed.handler("python-hello-b").expect("declared");
        assert_eq!(b.limits.reuse, 1000);
        assert_eq!(b.wasm, PathBuf::from("/nowhere/b \"q\".wasm"));
    }
}

#[cfg(test)]
mod report_tests {
    use super::*;

    fn sample(server: &str, baseline: Option<Baseline>, c: u32, busiest_share: f64) -> Sample {
        Sample {
            server: server.into(),
            language: "Python (CPython)".into(),
            reuse: "–".into(),
            size_mb: f64::NAN,
            baseline,
            connections: c,
            result: wrk::WrkResult {
                rps: 6000.0,
                p50_ms: 1.0,
                p99_ms: 2.0,
                errors: 0,
                requests: 60_000,
                cpu_us: f64::NAN,
                rss_mib: f64::NAN,
                busiest_share,
            },
        }
    }

    #[test]
    fn the_report_says_how_tornado_per_core_shared_each_run() {
        let per_core = "Tornado per core 6.6.1, 2 processes";
        let samples = [
            sample("Tornado 6.6.1", Some(Baseline::Tornado), 64, f64::NAN),
            sample(per_core, Some(Baseline::TornadoPerCore), 1, 0.51),
            sample(per_core, Some(Baseline::TornadoPerCore), 64, 0.97),
        ];
        let text = report(&samples, 10, 1000, &[]).unwrap();
        assert!(
            text.contains(&format!("How {per_core} shared the work: "))
                && text.contains(": c=1 51%, c=64 97%."),
            "{text}"
        );
        // Without the per-core row (no peers), no sentence.
        let text = report(&samples[..1], 10, 1000, &[]).unwrap();
        assert!(!text.contains("shared the work"), "{text}");
    }
}
