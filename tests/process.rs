//! The `waterspout` binary as a process: access log format, guest output in
//! the host log, graceful shutdown on SIGTERM.

// `waterspout new` and `waterspout check`, each app run by its own language's runner.
mod new_app;

use std::process::Command;
use std::time::{Duration, Instant};

use waterspout_tests::guests;
use waterspout_tests::harness::{
    ADMIN_TOKEN, ServerProcess, app_with_manifest, hello_and_wasi_http3_app, serve_command,
};

/// Sends `signal` (`TERM`, …) to `server` with kill(1).
fn signal(server: &ServerProcess, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn access_log_uses_tornado_format_and_guest_output_is_tagged_and_escaped() {
    let server = ServerProcess::on_own_store(guests::FAULTS_APP, &[]);
    let body = reqwest::blocking::get(server.url("/log?x=1"))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "logged");
    let log = server.wait_for_log("GET /log?x=1");
    let access = log.lines().find(|l| l.contains("GET /log?x=1")).unwrap();
    // `200 GET /log?x=1 (127.0.0.1) 0.52ms`
    let tail = access.split("waterspout::access: ").nth(1).unwrap_or(access);
    let re = regex_lite(tail);
    assert!(re, "access line not in Tornado's format: {access:?}");

    // The guest's log import, stdout and stderr all reach the host log,
    // tagged with handler and request id, with escapes neutralised.
    let guest: Vec<&str> = log.lines().filter(|l| l.contains("waterspout::guest")).collect();
    assert!(
        guest
            .iter()
            .any(|l| l.contains("a \\u{1b}[31mred") && l.contains("stream=\"log\"")),
        "{log}"
    );
    assert!(
        guest
            .iter()
            .any(|l| l.contains("faults: stdout") && l.contains("stream=\"stdout\"")),
        "{log}"
    );
    assert!(
        guest
            .iter()
            .any(|l| l.contains("faults: stderr") && l.contains("stream=\"stderr\"")),
        "{log}"
    );
    assert!(
        guest
            .iter()
            .all(|l| l.contains("handler=\"faults\"") && l.contains("request=")),
        "{log}"
    );
    // The forged second line stayed on the first one.
    assert!(
        !log.lines().any(|l| l.starts_with("with a forged second line")),
        "{log}"
    );
    assert!(!log.contains('\x1b'), "raw escape sequence in the log");
}

/// A lean guest (a core module; no stderr): its panic message reaches the
/// log through the SDK's hook, std's missing clock fails only its own
/// request with std's message in the log, and the next request is served.
#[test]
fn a_lean_guest_panic_is_logged_and_costs_only_its_request() {
    let server = ServerProcess::on_own_store(guests::LEAN_APP, &[]);
    let get = |path: &str| {
        let r = reqwest::blocking::get(server.url(path)).unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(get("/"), (200, "Hello from a core module, lean".into()));
    assert_eq!(get("/panic").0, 500);
    let log = server.wait_for_log("the lean guest panics on purpose");
    let line = log
        .lines()
        .find(|l| l.contains("the lean guest panics on purpose"))
        .unwrap();
    assert!(line.contains("waterspout::guest"), "{line}");
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("handler=\"lean\""), "{line}");
    assert!(line.contains("panicked at"), "{line}");
    assert_eq!(get("/clock").0, 500);
    server.wait_for_log("time not implemented on this platform");
    assert_eq!(
        get("/?name=again"),
        (200, "Hello from a core module, again".into())
    );
}

/// At the largest pool (`--max-instances 20000`: the main engine's 20,480
/// memory slots, ~81 TiB of address space) the concurrent engine's pool
/// for WASI 0.3 components still fits beside it: both kinds serve. (Its own
/// process: one test server's pool takes most of the address space.)
#[test]
fn at_the_largest_pool_a_wasi_http3_component_still_gets_its_engine() {
    let app = hello_and_wasi_http3_app();
    let server = ServerProcess::on_own_store(app.path().to_str().unwrap(), &["--max-instances", "20000"]);
    for path in ["/", "/p3/x", "/"] {
        let r = reqwest::blocking::get(server.url(path)).unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.text().unwrap(), "Hello, world", "{path}");
    }
}

/// `200 GET /log?x=1 (127.0.0.1) 0.52ms`, checked without a regex crate.
fn regex_lite(line: &str) -> bool {
    let parts: Vec<&str> = line.split(' ').collect();
    parts.len() == 5
        && parts[0] == "200"
        && parts[1] == "GET"
        && parts[2] == "/log?x=1"
        && parts[3] == "(127.0.0.1)"
        && parts[4].ends_with("ms")
        && parts[4]
            .trim_end_matches("ms")
            .split_once('.')
            .is_some_and(|(a, b)| {
                !a.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.len() == 2
                    && b.bytes().all(|c| c.is_ascii_digit())
            })
}

/// The `write` calls process `pid` has made so far (`syscw` of /proc/PID/io).
fn write_calls(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("syscw in /proc/PID/io")
}

/// Context switches of the server's epoch ticker thread so far (each tick
/// sleeps once).
fn epoch_ticker_switches(pid: u32) -> u64 {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        // The kernel keeps 15 bytes of a thread's name.
        if comm.trim() != "waterspout-epoc" {
            continue;
        }
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        return status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .map(|l| l.split(':').nth(1).unwrap().trim().parse::<u64>().unwrap())
            .sum();
    }
    panic!("no waterspout-epoch thread in process {pid}");
}

/// An idle server's epoch ticker sleeps (it woke 500 times a second, on a
/// core other processes were using) and the next guest call wakes it: an
/// endless loop entered after an idle spell is still stopped at its limit.
#[test]
fn the_epoch_ticker_sleeps_while_no_guest_runs_and_wakes_for_the_next() {
    let server = ServerProcess::on_own_store(guests::FAULTS_APP, &[]);
    let client = reqwest::blocking::Client::new();
    let status = client.get(server.url("/spin?ms=10")).send().unwrap().status();
    assert_eq!(status, 200);
    let pid = server.child.id();
    // Past the ticker's idle spell (100 ms).
    std::thread::sleep(Duration::from_millis(500));
    let before = epoch_ticker_switches(pid);
    std::thread::sleep(Duration::from_secs(1));
    let idle = epoch_ticker_switches(pid) - before;
    assert!(idle <= 5, "the epoch ticker woke {idle} times in an idle second");

    // The `loop` handler's time limit is 1000 ms.
    let start = Instant::now();
    let status = client.get(server.url("/loop")).send().unwrap().status();
    let took = start.elapsed();
    assert_eq!(status, 503);
    assert!(took < Duration::from_secs(5), "the endless loop ran {took:?}");
    let ticks = epoch_ticker_switches(pid) - before - idle;
    assert!(
        ticks >= 100,
        "the ticker ticked {ticks} times during a 1 s endless loop"
    );
}

#[test]
fn access_lines_are_written_in_batches_in_order_and_none_is_lost_at_exit() {
    let mut server = ServerProcess::on_own_store(guests::FAULTS_APP, &[]);
    let client = reqwest::blocking::Client::new();
    let get = |i: usize| {
        let response = client.get(server.url(&format!("/ok?n={i}"))).send().unwrap();
        assert_eq!(response.status(), 200);
    };
    get(0);
    server.wait_for_log("GET /ok?n=0");
    // One connection, one request at a time: each response is one write to
    // the socket; the access lines must not add one write each (they did,
    // unbatched: 606 writes for 300 requests, against 306 batched).
    let before = write_calls(server.child.id());
    for i in 1..=300 {
        get(i);
    }
    let writes = write_calls(server.child.id()) - before;
    assert!(writes < 450, "{writes} write calls for 300 requests");
    // Straight to SIGTERM: whatever is still waiting is written before exit.
    signal(&server, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = server.wait_for_log("GET /ok?n=300 ");
    let logged: Vec<usize> = log
        .lines()
        .filter_map(|l| l.split("GET /ok?n=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(logged, (0..=300).collect::<Vec<_>>(), "{log}");
}

#[test]
fn sigterm_finishes_requests_in_flight_then_exits() {
    let mut server = ServerProcess::on_own_store(guests::FAULTS_APP, &[]);
    let url = server.url("/spin?ms=1000");
    let in_flight = std::thread::spawn(move || {
        reqwest::blocking::get(url).map(|r| (r.status().as_u16(), r.text().unwrap()))
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(&server, "TERM");
    let (status, body) = in_flight.join().unwrap().expect("in-flight request failed");
    assert_eq!((status, body.as_str()), (200, "spun"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    server.wait_for_log("shutting down");
}

#[test]
fn workers_flag_starts_that_many_event_loop_threads_that_all_serve() {
    let server = ServerProcess::on_own_store(guests::FAULTS_APP, &["--workers", "3"]);
    server.wait_for_log("3 worker thread(s) serving on http://");
    let pid = server.child.id();
    // A thread names itself once it runs: give them a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let threads = loop {
        let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
            .map(|comm| comm.trim().to_owned())
            .filter(|comm| comm.starts_with("waterspout-http"))
            .collect();
        if threads.len() >= 3 || Instant::now() > deadline {
            break threads;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(threads.len(), 3, "{threads:?}");
    // Many connections at once: whichever threads accept them, all answer.
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let url = server.url("/ok");
            std::thread::spawn(move || reqwest::blocking::get(url).unwrap().text().unwrap())
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), "ok");
    }
}

/// A burst of new connections while the server cannot accept (here: it is
/// stopped) waits in the kernel's accept queue (`[app] backlog`, 1024 by
/// default) and is served once it can. With std's listen backlog of 128,
/// the 130th connection got no SYN-ACK (the kernel drops the SYN of a full
/// queue) and its client would have retried a second later.
#[test]
fn a_burst_of_connections_waits_in_the_accept_queue_until_the_server_accepts() {
    use std::io::{Read, Write};
    const BURST: usize = 600;
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map(|s| s.trim().parse().unwrap_or(0))
        .unwrap_or(0);
    assert!(
        somaxconn > BURST,
        "net.core.somaxconn is {somaxconn}: the kernel caps the backlog below this test's {BURST} connections"
    );
    let server = ServerProcess::on_own_store(guests::FAULTS_APP, &[]);
    let connected = connect_while_stopped(&server, BURST);
    assert_eq!(
        connected.len(),
        BURST,
        "connection {} found the accept queue full",
        connected.len() + 1
    );
    for (i, mut stream) in connected.into_iter().enumerate() {
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream
            .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"),
            "connection {i}: {answer:?}"
        );
    }

    // `[app] backlog` sets the queue's length (the kernel takes one more).
    let app = app_with_manifest(&format!(
        "[app]\nbacklog = 100\n\n[[route]]\npattern = \"/\"\nhandler = \"hello\"\n\n[handler.hello]\nwasm = {:?}\n",
        guests::HELLO_WASM
    ));
    let server = ServerProcess::on_own_store(app.path().to_str().unwrap(), &[]);
    let connected = connect_while_stopped(&server, 200).len();
    assert!((100..=101).contains(&connected), "{connected} connections queued");
}

/// Stops `server`, connects up to `n` times (each given 500 ms to be
/// queued; stopping at the first that is not), and lets it go on.
fn connect_while_stopped(server: &ServerProcess, n: usize) -> Vec<std::net::TcpStream> {
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    signal(server, "STOP");
    let connected = (0..n)
        .map_while(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok())
        .collect();
    signal(server, "CONT");
    connected
}

#[test]
fn zero_workers_is_refused_with_a_reason() {
    let store = tempfile::tempdir().unwrap();
    let output = serve_command(guests::FAULTS_APP, store.path())
        .args(["--workers", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--workers must be at least 1"), "{stderr}");
}

/// New connections go to the worker with the fewest open ones: eight
/// keep-alive connections on two workers are four and four
/// (`waterspout_open_connections` on the admin API's `/metrics`).
#[test]
fn connections_are_spread_evenly_over_the_workers() {
    let store = tempfile::tempdir().unwrap();
    let mut command = serve_command(guests::FAULTS_APP, store.path());
    command.args([
        "--workers",
        "2",
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-token",
        ADMIN_TOKEN,
    ]);
    let server = ServerProcess::spawn(command, true);
    // Eight connections held open at once (raw sockets: no client pool decides).
    let mut connections: Vec<std::net::TcpStream> = (0..8)
        .map(|_| {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
            stream.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = [0u8; 256];
            let n = stream.read(&mut buf).unwrap();
            assert!(
                buf[..n].starts_with(b"HTTP/1.1 200"),
                "{:?}",
                String::from_utf8_lossy(&buf[..n])
            );
            stream
        })
        .collect();
    let metrics = reqwest::blocking::Client::new()
        .get(server.admin_url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let open = |worker: &str| -> f64 {
        let series = format!("waterspout_open_connections{{worker=\"{worker}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!((open("0"), open("1")), (4.0, 4.0), "{metrics}");
    connections.clear();
}

/// Tornado's own hello world file, served as it is: `serve hello.py` builds
/// it with the Python SDK (its routes from `make_app()`), says in the log
/// that it compiles a large component and how long it took, and answers.
/// The compile cache then holds the compiled code for the next start.
#[test]
fn a_tornado_app_file_is_served_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("hello.py");
    std::fs::copy(
        std::path::Path::new(guests::PYTHON_TORNADO_HELLO_APP).join("hello.py"),
        &app,
    )
    .unwrap();
    let store = dir.path().join("store");
    let cache = dir.path().join("cache");
    let mut command = serve_command(&app, &store);
    command.arg("--cache-dir").arg(&cache);
    let server = ServerProcess::spawn_within(command, false, Duration::from_secs(300));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        runtime.block_on(server.get_text("/")),
        (200, "Hello, world".to_owned())
    );
    let log = server.log();
    assert!(log.contains("compiling handler \"hello\" ("), "{log}");
    assert!(log.contains("compiled handler \"hello\" ("), "{log}");
    // The component and the manifest made from the Application sit beside the file.
    let out = dir.path().join(".waterspout/hello");
    assert!(out.join("hello.wasm").is_file());
    let manifest = std::fs::read_to_string(out.join("waterspout.toml")).unwrap();
    assert!(manifest.contains("class = \"MainHandler\""), "{manifest}");
    assert!(
        std::fs::read_dir(&cache).unwrap().next().is_some(),
        "the compile cache is empty"
    );
}
