//! Scenario a: HTTP. Every server is a process of its own, started here,
//! so its CPU time and RSS are its own (crate::procstat): plain hyper (this
//! binary, `--serve-baseline`), `waterspout serve` on the Rust hello (its
//! access log on, written to a file, and off with `WATERSPOUT_LOG=warn`),
//! on the wasi:http hello, on a generated app of bigger requests and on
//! generated apps of 1, 10 and 100 handlers; `wasmtime serve` on the same
//! wasi:http component; Tornado in one process and in one per core
//! (`fork_processes(0)`).
//!
//! Tables: the hello at every concurrency; bigger requests (a 4 KiB and a
//! 64 KiB response, a POST of a 16 KiB form, a route found at the end of
//! 200 regex routes) at 64 connections; the cost as handlers grow.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::wrk::{self, WrkResult};
use crate::{HttpSample, peers};

/// The requests of scenario a.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `GET /` → `Hello, world`.
    Hello,
    /// `GET /bytes/N` → N bytes.
    Bytes(usize),
    /// `POST /form`, a urlencoded body of 16 fields of 1 KiB names + values.
    Form,
    /// `GET /api/v1/item198/42`: the 199th of 200 regex routes.
    Routes,
}

/// Fields of the POST's form body: 16 × (`fNN=` + 1019 bytes + `&`) ≈ 16 KiB.
const FORM_FIELDS: usize = 16;

impl Work {
    pub fn label(self) -> String {
        match self {
            Work::Hello => "hello".into(),
            Work::Bytes(n) => format!("{} KiB response", n / 1024),
            Work::Form => "POST, 16 KiB form".into(),
            Work::Routes => "200 regex routes, match at 199".into(),
        }
    }

    fn path(self) -> String {
        match self {
            Work::Hello => "/".into(),
            Work::Bytes(n) => format!("/bytes/{n}"),
            Work::Form => "/form".into(),
            Work::Routes => "/api/v1/item198/42".into(),
        }
    }
}

/// The urlencoded form of [`Work::Form`].
fn form_body() -> String {
    (0..FORM_FIELDS)
        .map(|i| format!("f{i:02}={}", "x".repeat(1019)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A wrk script POSTing [`form_body`].
fn form_script(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("form.lua");
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\nwrk.body = \"{}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n",
            form_body()
        ),
    )?;
    Ok(path)
}

/// A wrk script spreading requests over `/h0` … `/h{n-1}` in turn.
fn handlers_script(dir: &Path, n: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("handlers-{n}.lua"));
    std::fs::write(
        &path,
        format!(
            "local i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(nil, \"/h\" .. (i % {n}))\nend\n"
        ),
    )?;
    Ok(path)
}

/// A `waterspout serve` process, killed on drop.
pub struct Waterspout {
    child: Child,
    pub port: u16,
}

impl Waterspout {
    /// The server's process id (for its CPU time: crate::procstat).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Waterspout {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `waterspout serve APP` on 127.0.0.1; `log_level` is `WATERSPOUT_LOG`
/// (None: the default, `info`). Its stderr (the log) is a pipe, read by a
/// thread here into `WORK/NAME.log`: as under systemd or docker, or in a
/// terminal, the log's reader is another process that a write wakes.
pub fn waterspout_serve(
    root: &Path,
    app: &Path,
    work: &Path,
    name: &str,
    log_level: Option<&str>,
) -> anyhow::Result<Waterspout> {
    waterspout_serve_on(root, app, work, name, log_level, None)
}

/// [`waterspout_serve`] on the cores `cpus` (a `taskset -c` list) when
/// given: its default worker count is then the number of those cores.
fn waterspout_serve_on(
    root: &Path,
    app: &Path,
    work: &Path,
    name: &str,
    log_level: Option<&str>,
    cpus: Option<&str>,
) -> anyhow::Result<Waterspout> {
    let bin = crate::profile_dir()?.join("waterspout");
    let port_file = work.join(format!("{name}.port"));
    let mut log = std::io::BufWriter::new(std::fs::File::create(work.join(format!("{name}.log")))?);
    let mut command = wrk::on_cpus(&bin, cpus);
    command
        .arg("serve")
        .arg(app)
        .args(["--listen", "127.0.0.1:0", "--port-file"])
        .arg(&port_file)
        .arg("--cache-dir")
        .arg(peers::tools_dir(root).join("compile-cache"))
        .arg("--store")
        .arg(work.join(format!("{name}.store")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command.env_remove("WATERSPOUT_LOG");
    if let Some(level) = log_level {
        command.env("WATERSPOUT_LOG", level);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {} (`make bench` builds it)", bin.display()))?;
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut log);
            let _ = log.flush();
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            return Ok(Waterspout { child, port });
        }
        if let Some(status) = child.try_wait()? {
            std::thread::sleep(Duration::from_millis(200));
            let log = std::fs::read_to_string(work.join(format!("{name}.log"))).unwrap_or_default();
            bail!("waterspout serve {} exited with {status}:\n{log}", app.display());
        }
        if Instant::now() > deadline {
            bail!("waterspout serve {} did not start", app.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The plain hyper baseline: this binary with `--serve-baseline ADDR`.
fn hyper_baseline(cpus: Option<&str>) -> anyhow::Result<peers::Peer> {
    let exe = std::env::current_exe()?;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let child = wrk::on_cpus(exe, cpus)
        .args(["--serve-baseline", &addr.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .context("starting the hyper baseline")?;
    peers::Peer::started(child, addr, "the hyper baseline")
}

/// The app of the bigger requests: `/` (hello), 200 regex routes
/// `/api/v1/itemI/(\d+)` (hello), `/bytes/(\d+)` and `/form`
/// (tests/guests/bench-bodies), in Tornado's table order.
fn workloads_app(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let hello = wasm(root, HELLO_LEAN)?;
    let bodies = wasm(
        root,
        "tests/guests/target/wasm32-wasip2/release/bench_bodies.wasm",
    )?;
    let mut manifest = String::from("# Generated by waterspout-bench (scenario a).\n\n");
    let mut route = |pattern: &str, handler: &str| {
        writeln!(
            manifest,
            "[[route]]\npattern = {pattern:?}\nhandler = \"{handler}\"\n"
        )
        .unwrap();
    };
    route("/", "hello");
    for i in 0..200 {
        route(&format!(r"/api/v1/item{i}/(\d+)"), "hello");
    }
    route(r"/bytes/(\d+)", "bodies");
    route("/form", "bodies");
    writeln!(
        manifest,
        "[handler.hello]\nwasm = {hello:?}\n\n[handler.bodies]\nwasm = {bodies:?}"
    )?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("waterspout.toml"), manifest)?;
    Ok(())
}

/// An app of `n` handlers, each the Rust hello on its own route `/hI`.
fn handlers_app(root: &Path, dir: &Path, n: usize) -> anyhow::Result<()> {
    let hello = wasm(root, HELLO_LEAN)?;
    let mut manifest = String::from("# Generated by waterspout-bench (scenario a).\n\n");
    for i in 0..n {
        writeln!(manifest, "[[route]]\npattern = \"/h{i}\"\nhandler = \"h{i}\"\n")?;
    }
    for i in 0..n {
        writeln!(manifest, "[handler.h{i}]\nwasm = {hello:?}\n")?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("waterspout.toml"), manifest)?;
    Ok(())
}

/// examples/hello as its manifest builds it: lean, for wasm32-unknown-unknown.
const HELLO_LEAN: &str = "examples/target/wasm32-unknown-unknown/release/hello.wasm";

/// The hello's app with its wasm32-wasip2 build.
fn wasip2_hello_app(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let hello = wasm(root, "examples/target/wasm32-wasip2/release/hello.wasm")?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("waterspout.toml"),
        format!(
            "# Generated by waterspout-bench (scenario a).\n\n[[route]]\npattern = \"/\"\nhandler = \"hello\"\n\n[handler.hello]\nwasm = {hello:?}\n"
        ),
    )?;
    Ok(())
}

fn wasm(root: &Path, path: &str) -> anyhow::Result<String> {
    let path = root.join(path);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing (`make bench` builds it: `make bench-deps`)",
        path.display()
    );
    Ok(path.display().to_string())
}

/// One server of scenario a.
struct Server {
    label: String,
    url: String,
    pid: u32,
    /// Which requests it is measured on.
    works: Vec<Work>,
    /// Where its access log goes (`waterspout serve` with the log on).
    log: Option<PathBuf>,
}

/// What scenario a measured.
pub struct Results {
    pub hello: Vec<HttpSample>,
    pub works: Vec<(Work, HttpSample)>,
    /// (handlers, sample) at 64 connections.
    pub handlers: Vec<(usize, HttpSample)>,
    /// Issue #16's must-reach, measured [`ROUNDS`] times at 64 connections.
    pub rounds: Vec<Round>,
    /// The must-reach pair again with wrk on a core of its own.
    pub pinned: Option<Pinned>,
}

/// Plain hyper and the hello, each in a process of its own on every core
/// but the last, and wrk on the last: the load generator takes no CPU from
/// the server and the scheduler does not move them around each other.
pub struct Pinned {
    /// The `taskset -c` lists: the servers', wrk's.
    pub server_cpus: String,
    pub wrk_cpus: String,
    /// (hyper, hello) a round.
    pub rounds: Vec<(WrkResult, WrkResult)>,
}

/// One round of the must-reach: plain hyper, then the Rust hello (log on)
/// right after it, and how long the hello's requests took inside the
/// server by its own access log.
pub struct Round {
    pub hyper: WrkResult,
    pub hello: WrkResult,
    /// The access lines' times (from the request's head parsed to the
    /// response's last byte handed to the socket) of the measured run.
    pub inside: Option<Percentiles>,
}

/// p50 and p99, ms.
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub lines: usize,
}

/// How many times the must-reach pair is measured.
pub const ROUNDS: usize = 3;

pub const HYPER: &str = "hyper (baseline)";
pub const RUST: &str = "waterspout (Rust guest)";
pub const RUST_NO_LOG: &str = "waterspout (Rust guest), WATERSPOUT_LOG=warn";
/// The same hello built for wasm32-wasip2 (std's 19 WASI imports), beside
/// examples/hello's lean build (wasm32-unknown-unknown, 3 imports).
pub const RUST_WASIP2: &str = "waterspout (Rust guest, wasm32-wasip2 build)";
pub const WORKLOADS: &str = "waterspout (Rust guests)";
pub const TORNADO_ONE: &str = "Tornado, 1 process";

/// Runs scenario a.
pub fn run(
    root: &Path,
    connections: &[u32],
    duration: u64,
    no_peers: bool,
    handler_counts: &[usize],
    works: bool,
) -> anyhow::Result<(Results, Vec<String>)> {
    wrk::check_installed()?;
    // wrk and the servers at 1024 connections.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let work = tempfile::tempdir()?;
    let mut notes = Vec::new();
    let mut servers: Vec<Server> = Vec::new();
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    let bigger: Vec<Work> = if works {
        vec![Work::Bytes(4096), Work::Bytes(65536), Work::Form, Work::Routes]
    } else {
        Vec::new()
    };

    let hyper = hyper_baseline(None)?;
    servers.push(Server {
        label: HYPER.into(),
        url: format!("http://{}", hyper.addr),
        pid: hyper.pid(),
        // It has no router: not the routes.
        works: [Work::Hello]
            .into_iter()
            .chain(bigger.iter().copied().filter(|w| *w != Work::Routes))
            .collect(),
        log: None,
    });
    keep.push(Box::new(hyper));
    let wasip2_hello = work.path().join("hello-wasip2");
    wasip2_hello_app(root, &wasip2_hello)?;
    for (label, app, level) in [
        (RUST, root.join("examples/hello"), None),
        (RUST_NO_LOG, root.join("examples/hello"), Some("warn")),
        (RUST_WASIP2, wasip2_hello, None),
        ("waterspout (wasi:http)", root.join("examples/wasi-hello"), None),
    ] {
        let name = label.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        let server = waterspout_serve(root, &app, work.path(), &name, level)?;
        servers.push(Server {
            label: label.into(),
            url: format!("http://127.0.0.1:{}", server.port),
            pid: server.child.id(),
            works: vec![Work::Hello],
            log: level.is_none().then(|| work.path().join(format!("{name}.log"))),
        });
        keep.push(Box::new(server));
    }
    if works {
        let dir = work.path().join("workloads");
        workloads_app(root, &dir)?;
        let server = waterspout_serve(root, &dir, work.path(), "workloads", None)?;
        servers.push(Server {
            label: WORKLOADS.into(),
            url: format!("http://127.0.0.1:{}", server.port),
            pid: server.child.id(),
            works: bigger.clone(),
            log: None,
        });
        keep.push(Box::new(server));
    }
    let mut handler_servers = Vec::new();
    for &n in handler_counts {
        let dir = work.path().join(format!("handlers-{n}"));
        handlers_app(root, &dir, n)?;
        let server = waterspout_serve(root, &dir, work.path(), &format!("handlers-{n}"), None)?;
        handler_servers.push((n, format!("http://127.0.0.1:{}/", server.port), server.child.id()));
        keep.push(Box::new(server));
    }
    if !no_peers {
        let component = root.join("examples/target/wasm32-wasip2/release/wasi_hello.wasm");
        match peers::wasmtime_serve(root, &component) {
            Ok(peer) => {
                servers.push(Server {
                    label: "wasmtime serve 48".into(),
                    url: format!("http://{}", peer.addr),
                    pid: peer.pid(),
                    works: vec![Work::Hello],
                    log: None,
                });
                keep.push(Box::new(peer));
            }
            Err(e) => notes.push(format!("wasmtime serve skipped: {e:#}")),
        }
        for processes in [1, 0] {
            match peers::tornado_processes(root, processes) {
                Ok((peer, version)) => {
                    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                    servers.push(Server {
                        label: if processes == 1 {
                            TORNADO_ONE.into()
                        } else {
                            format!("Tornado, {cores} processes")
                        },
                        url: format!("http://{}", peer.addr),
                        pid: peer.pid(),
                        works: [Work::Hello].into_iter().chain(bigger.iter().copied()).collect(),
                        log: None,
                    });
                    if processes == 1 {
                        notes.push(format!("Tornado {version}."));
                    }
                    keep.push(Box::new(peer));
                }
                Err(e) => notes.push(format!("Tornado ({processes} processes) skipped: {e:#}")),
            }
        }
    }
    // Every server answers every request it is measured on, as expected,
    // before anything is measured.
    let client = reqwest::blocking::Client::new();
    for s in &servers {
        for &w in &s.works {
            check(&client, &s.url, w).with_context(|| format!("{} on {}", s.label, w.label()))?;
        }
    }
    for (n, url, _) in &handler_servers {
        let body = client
            .get(format!("{url}h{}", n - 1))
            .send()?
            .error_for_status()?
            .text()?;
        anyhow::ensure!(body == "Hello, world", "{n} handlers: {body:?}");
    }

    let form = form_script(work.path())?;
    let mut results = Results {
        hello: Vec::new(),
        works: Vec::new(),
        handlers: Vec::new(),
        rounds: Vec::new(),
        pinned: None,
    };
    // Concurrency by concurrency, every server back to back (the others
    // idle), so the numbers a ratio compares are seconds apart.
    for &c in connections {
        for s in &servers {
            if !s.works.contains(&Work::Hello) {
                continue;
            }
            let result = measure(&s.label, &s.url, Work::Hello, c, duration, None, s.pid)?;
            results.hello.push(sample(&s.label, c, result));
        }
    }
    // The must-reach pair, again and again: each round's ratio compares
    // two runs taken seconds apart.
    if let (Some(hyper), Some(hello)) = (
        servers.iter().find(|s| s.label == HYPER),
        servers.iter().find(|s| s.label == RUST),
    ) {
        for round in 1..=ROUNDS {
            let run = |s: &Server| {
                let label = format!("round {round}: {}", s.label);
                measure(&label, &s.url, Work::Hello, 64, duration, None, s.pid)
            };
            let hyper = run(hyper)?;
            let before = hello
                .log
                .as_ref()
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len());
            let result = run(hello)?;
            // The log's last batch reaches the file within its batch window.
            std::thread::sleep(Duration::from_millis(300));
            let inside = match (&hello.log, before) {
                (Some(path), Some(from)) => access_times(path, from)?,
                _ => None,
            };
            results.rounds.push(Round {
                hyper,
                hello: result,
                inside,
            });
        }
    }
    if servers.iter().any(|s| s.label == RUST) {
        match pinned_rounds(root, work.path(), duration) {
            Ok(pinned) => results.pinned = pinned,
            Err(e) => notes.push(format!(
                "the rounds with wrk on a core of its own were skipped: {e:#}"
            )),
        }
    }
    for &w in &bigger {
        for s in servers.iter().filter(|s| s.works.contains(&w)) {
            let script = (w == Work::Form).then_some(form.as_path());
            let result = measure(&s.label, &s.url, w, 64, duration, script, s.pid)?;
            results.works.push((w, sample(&s.label, 64, result)));
        }
    }
    for (n, url, pid) in &handler_servers {
        let script = handlers_script(work.path(), *n)?;
        let label = format!("waterspout, {n} handlers");
        let result = measure(
            &label,
            url.trim_end_matches('/'),
            Work::Hello,
            64,
            duration,
            Some(&script),
            *pid,
        )?;
        results.handlers.push((*n, sample(&label, 64, result)));
    }
    drop(keep);
    Ok((results, notes))
}

/// The p50 and p99 of the access lines' times (`200 GET / (127.0.0.1)
/// 0.05ms`) in the log at `path` from byte `from` on (the measured run
/// and the second of warm-up before it).
fn access_times(path: &Path, from: u64) -> anyhow::Result<Option<Percentiles>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut times: Vec<f64> = text.lines().filter_map(access_ms).collect();
    if times.is_empty() {
        return Ok(None);
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    Ok(Some(Percentiles {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        lines: times.len(),
    }))
}

/// The time at the end of an access line: `… 200 GET / (127.0.0.1) 0.05ms`.
fn access_ms(line: &str) -> Option<f64> {
    if !line.contains("waterspout::access") {
        return None;
    }
    line.trim_end()
        .strip_suffix("ms")?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

fn sample(server: &str, connections: u32, result: WrkResult) -> HttpSample {
    HttpSample {
        server: server.to_owned(),
        connections,
        result,
    }
}

/// The cores this process may run on (`Cpus_allowed_list` of
/// /proc/self/status: `0-3,8,10-11`), in order.
fn allowed_cpus() -> anyhow::Result<Vec<u32>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .context("no Cpus_allowed_list in /proc/self/status")?;
    parse_cpu_list(list.trim())
}

/// `0-3,8,10-11` → 0, 1, 2, 3, 8, 10, 11.
fn parse_cpu_list(list: &str) -> anyhow::Result<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (u32, u32) = (first.parse()?, last.parse()?);
        cpus.extend(first..=last);
    }
    Ok(cpus)
}

/// The must-reach pair with wrk on the last core this process may use and
/// each server, started anew, on the others (`None` with one core).
fn pinned_rounds(root: &Path, work: &Path, duration: u64) -> anyhow::Result<Option<Pinned>> {
    let cpus = allowed_cpus()?;
    let Some((wrk_cpu, server)) = cpus.split_last().filter(|(_, server)| !server.is_empty()) else {
        return Ok(None);
    };
    let server_cpus = server.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let wrk_cpus = wrk_cpu.to_string();
    let hyper = hyper_baseline(Some(&server_cpus))?;
    let hello = waterspout_serve_on(
        root,
        &root.join("examples/hello"),
        work,
        "hello-pinned",
        None,
        Some(&server_cpus),
    )?;
    let (hyper_url, hello_url) = (
        format!("http://{}/", hyper.addr),
        format!("http://127.0.0.1:{}/", hello.port),
    );
    let mut rounds = Vec::new();
    for round in 1..=ROUNDS {
        let run = |label: &str, url: &str, pid: u32| -> anyhow::Result<WrkResult> {
            let result = wrk::measure_on(url, 64, duration, None, Some(pid), Some(&wrk_cpus))?;
            eprintln!(
                "{:>46} c=64   {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  {:>6.1} µs CPU/req",
                format!("pinned round {round}: {label}"),
                result.rps,
                result.p50_ms,
                result.p99_ms,
                result.cpu_us
            );
            Ok(result)
        };
        let h = run(HYPER, &hyper_url, hyper.pid())?;
        let w = run(RUST, &hello_url, hello.child.id())?;
        rounds.push((h, w));
    }
    Ok(Some(Pinned {
        server_cpus,
        wrk_cpus,
        rounds,
    }))
}

fn measure(
    label: &str,
    base: &str,
    work: Work,
    c: u32,
    duration: u64,
    script: Option<&Path>,
    pid: u32,
) -> anyhow::Result<WrkResult> {
    let result = wrk::measure_server(&format!("{base}{}", work.path()), c, duration, script, Some(pid))?;
    eprintln!(
        "{label:>46} {:<30} c={c:<4} {:>9.0} req/s  p99 {:>7.3} ms  {:>6.1} µs CPU/req  RSS {:>6.1} MiB  errors {}",
        work.label(),
        result.rps,
        result.p99_ms,
        result.cpu_us,
        result.rss_mib,
        result.errors
    );
    Ok(result)
}

/// One request of `work` answers as it should.
fn check(client: &reqwest::blocking::Client, base: &str, work: Work) -> anyhow::Result<()> {
    let url = format!("{base}{}", work.path());
    let response = match work {
        Work::Form => client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body())
            .send()?,
        _ => client.get(&url).send()?,
    }
    .error_for_status()?;
    let body = response.bytes()?;
    let ok = match work {
        Work::Hello | Work::Routes => &body[..] == b"Hello, world",
        Work::Bytes(n) => body.len() == n && body.iter().all(|&b| b == b'x'),
        Work::Form => body == FORM_FIELDS.to_string().as_bytes(),
    };
    anyhow::ensure!(
        ok,
        "unexpected answer: {:?}",
        String::from_utf8_lossy(&body[..body.len().min(80)])
    );
    Ok(())
}

/// `x / y` as `1.23×`, or `–`.
fn ratio(x: f64, y: Option<f64>) -> String {
    match y {
        Some(y) if y > 0.0 && x.is_finite() => format!("{:.2}×", x / y),
        _ => "–".into(),
    }
}

/// `x / y` as `45%`, or `–`.
fn percent(x: f64, y: Option<f64>) -> String {
    match y {
        Some(y) if y > 0.0 && x.is_finite() => format!("{:.0}%", 100.0 * x / y),
        _ => "–".into(),
    }
}

fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

/// The section of scenario a.
pub fn section(results: &Results, notes: &[String], duration: u64) -> anyhow::Result<String> {
    let hello = &results.hello;
    let tornado_n = hello
        .iter()
        .find(|s| s.server.starts_with("Tornado, ") && s.server != TORNADO_ONE)
        .map(|s| s.server.clone())
        .unwrap_or_else(|| "Tornado, N processes".into());
    let mut out = String::from("## a. HTTP hello, bigger requests, and cost as work grows\n\n");
    writeln!(
        out,
        "Every server is a process of its own, started by the tool, measured with `wrk -t1` on the same 2 cores; all are started first and, at each concurrency, measured back to back ({duration} s each after a 1 s warm-up, the others idle), so a ratio compares numbers taken seconds apart. **Server CPU** is the server's user + system time over the measured run (all its threads, and for Tornado all its processes; `/proc/PID/stat`) per request answered; **RSS** the server's largest resident memory sampled during the run. Waterspout makes a fresh instance per request and runs a thread per core, as does the hyper baseline (this tool, `--serve-baseline`). `waterspout serve` logs every request (Tornado's access line, at the default level `info`) to its stderr, a pipe this tool reads (as systemd, docker or a terminal would); the `WATERSPOUT_LOG=warn` row is the same server with the access log off. `wasmtime serve` runs the very same component as the wasi:http row; Tornado runs the seed's hello world in one process, and in one process per core as Tornado's docs deploy it (`bind_sockets`, `fork_processes(0)`, an `HTTPServer` per process on the shared socket): **the ratios to that row are the honest ones**, every server here uses both cores.\n"
    )?;
    writeln!(
        out,
        "| server | connections | req/s | p50 ms | p99 ms | errors | server CPU µs/req | RSS MiB | vs hyper | vs wasmtime serve | vs {tornado_n} | vs {TORNADO_ONE} |"
    )?;
    writeln!(
        out,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )?;
    let base = |name: &str, c: u32| {
        hello
            .iter()
            .find(|b| b.server.starts_with(name) && b.connections == c)
            .map(|b| b.result.rps)
    };
    for s in hello {
        let r = &s.result;
        writeln!(
            out,
            "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {} | {} | {} | {} |",
            s.server,
            s.connections,
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            num(r.cpu_us, 1),
            num(r.rss_mib, 0),
            percent(r.rps, base(HYPER, s.connections)),
            ratio(r.rps, base("wasmtime serve", s.connections)),
            ratio(r.rps, base(&tornado_n, s.connections)),
            ratio(r.rps, base(TORNADO_ONE, s.connections)),
        )?;
    }
    // What the access log costs, from the two rows of the same server.
    let mut log_costs = Vec::new();
    for c in hello.iter().filter(|s| s.server == RUST).map(|s| s.connections) {
        let on = hello.iter().find(|s| s.server == RUST && s.connections == c);
        let off = hello
            .iter()
            .find(|s| s.server == RUST_NO_LOG && s.connections == c);
        if let (Some(on), Some(off)) = (on, off) {
            log_costs.push(format!(
                "c={c}: {} vs {} µs ({:+.1} µs, {} req/s)",
                num(on.result.cpu_us, 1),
                num(off.result.cpu_us, 1),
                on.result.cpu_us - off.result.cpu_us,
                ratio(on.result.rps, Some(off.result.rps))
            ));
        }
    }
    if !log_costs.is_empty() {
        writeln!(
            out,
            "\nThe access log, server CPU per request with it and without it (`WATERSPOUT_LOG=warn`), and req/s with it as a share of without: {}.",
            log_costs.join("; ")
        )?;
    }

    if !results.rounds.is_empty() {
        writeln!(
            out,
            "\n### Issue #16's must-reach, {} rounds (64 connections)\n\nPlain hyper, then the Rust hello with a fresh instance per request and the access log on, measured again {} times in a row ({duration} s each): must reach ≥ 50% of hyper in every round, and a p99 ≤ 2 ms. **Inside the server** is what the hello's own access lines say of the same run (and its second of warm-up): the time from its request head parsed to the response's last byte handed to the socket; the rest of wrk's latency is the request waiting in its socket while the worker thread serves the connections before it, or while the thread waits for a core (two worker threads and wrk on two cores).\n",
            results.rounds.len(),
            results.rounds.len(),
        )?;
        writeln!(
            out,
            "| round | hyper req/s | hyper p99 ms | hello req/s | share of hyper | hello p50 ms | hello p99 ms | inside the server: p50 / p99 ms (lines) | server CPU µs/req, hyper / hello |"
        )?;
        writeln!(out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")?;
        for (i, r) in results.rounds.iter().enumerate() {
            let inside = r.inside.as_ref().map_or("–".to_owned(), |p| {
                format!("{:.2} / {:.2} ({})", p.p50_ms, p.p99_ms, p.lines)
            });
            writeln!(
                out,
                // The share with one decimal: the must-reach is ≥ 50%, and 49.6% is not.
                "| {} | {:.0} | {:.3} | {:.0} | {:.1}% | {:.3} | {:.3} | {inside} | {} / {} |",
                i + 1,
                r.hyper.rps,
                r.hyper.p99_ms,
                r.hello.rps,
                100.0 * r.hello.rps / r.hyper.rps,
                r.hello.p50_ms,
                r.hello.p99_ms,
                num(r.hyper.cpu_us, 1),
                num(r.hello.cpu_us, 1),
            )?;
        }
    }

    if let Some(pinned) = &results.pinned {
        writeln!(
            out,
            "\n### The must-reach pair with wrk on a core of its own (64 connections)\n\nThe same plain hyper and Rust hello (fresh instance per request, access log on), each started anew on core(s) {} (`taskset`; so the hello has one worker thread a core), and wrk on core {}: the load generator takes no CPU from the server. The rounds above share every core with wrk, and there the tail of both servers is mostly the scheduler's; here it is the server's own. By Little's law the mean latency is 64 / req/s, so the p99 follows throughput: with a p99 about twice the mean, a p99 of 2 ms needs about 64,000 req/s.\n",
            pinned.server_cpus, pinned.wrk_cpus
        )?;
        writeln!(
            out,
            "| round | hyper req/s | hyper p50 / p99 ms | hello req/s | share of hyper | hello p50 / p99 ms | server CPU µs/req, hyper / hello |"
        )?;
        writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |")?;
        for (i, (h, w)) in pinned.rounds.iter().enumerate() {
            writeln!(
                out,
                "| {} | {:.0} | {:.3} / {:.3} | {:.0} | {:.1}% | {:.3} / {:.3} | {} / {} |",
                i + 1,
                h.rps,
                h.p50_ms,
                h.p99_ms,
                w.rps,
                100.0 * w.rps / h.rps,
                w.p50_ms,
                w.p99_ms,
                num(h.cpu_us, 1),
                num(w.cpu_us, 1),
            )?;
        }
    }

    if !results.works.is_empty() {
        writeln!(
            out,
            "\n### Bigger requests (64 connections)\n\nA 4 KiB and a 64 KiB response (`GET /bytes/N`), a POST of a 16 KiB urlencoded form of 16 fields (the handler answers how many it read), and `GET /api/v1/item198/42` routed through a table of 200 regex routes `/api/v1/itemI/(\\d+)` (Tornado matches in order; so does Waterspout). Waterspout serves them from one generated app: the Rust hello on the routes, `tests/guests/bench-bodies` on `/bytes` and `/form`; Tornado from the same script as its hello; hyper answers `/bytes` and the POST (it parses the form with `form_urlencoded`), it has no router. \"vs its hello\" divides by the same server's hello at 64 connections above.\n"
        )?;
        writeln!(
            out,
            "| request | server | req/s | p50 ms | p99 ms | errors | server CPU µs/req | vs hyper | vs {tornado_n} | vs its hello |"
        )?;
        writeln!(
            out,
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        )?;
        for (w, s) in &results.works {
            let same = |name: &str| {
                results
                    .works
                    .iter()
                    .find(|(w2, b)| w2 == w && b.server.starts_with(name))
                    .map(|(_, b)| b.result.rps)
            };
            let own_hello = if s.server == WORKLOADS { RUST } else { &s.server };
            let r = &s.result;
            writeln!(
                out,
                "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {} | {} |",
                w.label(),
                s.server,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                num(r.cpu_us, 1),
                ratio(r.rps, same(HYPER)),
                ratio(r.rps, same(&tornado_n)),
                ratio(r.rps, base(own_hello, 64)),
            )?;
        }
    }
    if let Some(split) = split_note(results, &tornado_n) {
        writeln!(out, "\n{split}")?;
    }
    if !results.handlers.is_empty() {
        writeln!(
            out,
            "\n### Cost as handlers grow (64 connections)\n\n`waterspout serve` on a generated app of N handlers, each the Rust hello on its own route (`/h0` … `/hN-1`), the load spread over all of them in turn (a wrk script). The cost as connections grow is in the hello table above (1 to 1024 connections, with RSS).\n"
        )?;
        writeln!(
            out,
            "| handlers | req/s | p50 ms | p99 ms | errors | server CPU µs/req | RSS MiB | vs 1 handler |"
        )?;
        writeln!(out, "| --- | --- | --- | --- | --- | --- | --- | --- |")?;
        let one = results.handlers.first().map(|(_, s)| s.result.rps);
        for (n, s) in &results.handlers {
            let r = &s.result;
            writeln!(
                out,
                "| {n} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {} |",
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                num(r.cpu_us, 1),
                num(r.rss_mib, 0),
                ratio(r.rps, one)
            )?;
        }
    }
    for note in notes {
        writeln!(out, "\n_{note}_")?;
    }
    out.push('\n');
    Ok(out)
}

/// How Tornado's processes shared each run: with one listening socket
/// shared by `fork_processes`, which process accepts each of wrk's
/// connections is the kernel's choice, and one may take nearly all of
/// them; the rows of that server are then about one process's rate.
fn split_note(results: &Results, tornado_n: &str) -> Option<String> {
    let share = |s: &HttpSample| {
        if s.server == tornado_n {
            s.result.busiest_percent()
        } else {
            None
        }
    };
    let runs: Vec<String> = results
        .hello
        .iter()
        .filter_map(|s| Some(format!("hello c={} {}", s.connections, share(s)?)))
        .chain(
            results
                .works
                .iter()
                .filter_map(|(w, s)| Some(format!("{} {}", w.label(), share(s)?))),
        )
        .collect();
    split_sentence(tornado_n, &runs)
}

/// The sentence of [`split_note`] for `server`'s `runs` ("c=64 52%", …);
/// none when there are none.
pub fn split_sentence(server: &str, runs: &[String]) -> Option<String> {
    (!runs.is_empty()).then(|| {
        format!(
            "How {server} shared the work: the busiest process's share of the CPU its processes used in each run (50% is an even split between two; near 100%, one process served nearly every connection, since with one listening socket shared by `fork_processes` the kernel decides which process accepts each of wrk's connections, and that row is then about one process's rate): {}.",
            runs.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rps: f64, busiest_share: f64) -> WrkResult {
        WrkResult {
            rps,
            p50_ms: 1.0,
            p99_ms: 2.0,
            errors: 0,
            requests: (rps * 10.0) as u64,
            cpu_us: 100.0,
            rss_mib: 30.0,
            busiest_share,
        }
    }

    #[test]
    fn the_section_says_how_tornados_processes_shared_each_run() {
        let two = "Tornado, 2 processes";
        let results = Results {
            hello: vec![
                sample(TORNADO_ONE, 64, result(7000.0, f64::NAN)),
                sample(two, 64, result(12000.0, 0.52)),
                sample(two, 256, result(7100.0, 0.99)),
            ],
            works: vec![],
            handlers: vec![],
            rounds: vec![],
            pinned: None,
        };
        let section = section(&results, &[], 10).unwrap();
        assert!(section.contains("hello c=64 52%, hello c=256 99%."), "{section}");
        // One process has no split to tell.
        let one = Results {
            hello: vec![sample(TORNADO_ONE, 64, result(7000.0, f64::NAN))],
            ..results
        };
        assert!(!section_of(&one).contains("shared the work"));
    }

    /// `section`, where a local of that name hides it.
    fn section_of(results: &Results) -> String {
        section(results, &[], 10).unwrap()
    }

    #[test]
    fn cpu_lists_are_read_as_the_kernel_writes_them() {
        assert_eq!(parse_cpu_list("0-1").unwrap(), vec![0, 1]);
        assert_eq!(
            parse_cpu_list("0-3,8,10-11").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpu_list("5").unwrap(), vec![5]);
        assert!(parse_cpu_list("0-x").is_err());
        // This machine's own list names at least the core this test runs on.
        assert!(!allowed_cpus().unwrap().is_empty());
    }

    #[test]
    fn access_times_come_from_the_access_lines_after_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello.log");
        let warm_up = "2026-12-03T04:26:50.000001Z  INFO waterspout::access: 200 GET / (127.0.0.1) 9.00ms\n";
        let mut text = String::from(warm_up);
        for ms in 1..=100 {
            text.push_str(&format!(
                "2026-12-03T04:26:51.000001Z  INFO waterspout::access: 200 GET / (127.0.0.1) {:.2}ms\n",
                ms as f64 / 100.0
            ));
        }
        text.push_str(
            "2026-12-03T04:26:53.045107Z  INFO waterspout::cli: signal received; shutting down gracefully\n",
        );
        std::fs::write(&path, text).unwrap();

        let p = access_times(&path, warm_up.len() as u64).unwrap().unwrap();
        assert_eq!(p.lines, 100);
        assert_eq!(p.p50_ms, 0.5);
        assert_eq!(p.p99_ms, 0.99);
        assert!(
            access_times(&path, std::fs::metadata(&path).unwrap().len())
                .unwrap()
                .is_none()
        );
    }
}
