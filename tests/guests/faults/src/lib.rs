//! A handler that misbehaves on purpose, so tests can check that the host
//! contains it. The route's `mode` setting picks the fault (see
//! `waterspout.toml`):
//!
//! | mode         | what the guest does                                   | expected answer            |
//! |--------------|-------------------------------------------------------|----------------------------|
//! | `trap`       | panics (a wasm trap)                                  | 500                        |
//! | `loop`       | loops forever                                         | 503 after the timeout      |
//! | `spin`       | busy-waits `?ms=N` milliseconds (default 100)         | 200 `spun`                 |
//! | `grow`       | allocates 1 MiB blocks until memory runs out          | 500                        |
//! | `recurse`    | recurses without end (stack overflow)                 | 500                        |
//! | `bad-header` | sets a header value containing `\r\nX-Injected: 1`    | 500, no `X-Injected`       |
//! | `log`        | logs and prints terminal escapes, then writes         | 200 `logged`               |
//! | `flush-spin` | writes and flushes `first`, spins `?ms=N`, writes `second` | 200, chunked        |
//! | `bad-header-name` | calls `set-header`/`add-header` with CR/LF/NUL/`:` in names and values, bypassing the SDK | 200 `refused N of N` |
//! | `bad-reason` | calls `set-status` with CR/LF/NUL in the reason phrase | 200 `refused N of N`, plain `OK` |
//! | `framing-headers` | sets Content-Length: 999, Transfer-Encoding, Connection, Upgrade, Trailer | 200 `framed`, the host's framing |
//! | `never-finish` | writes and flushes `first`, then loops forever       | chunked body cut off at the timeout |
//! | `resource-bomb` | creates WASI output streams without end, never dropping them | 500, host memory bounded |
//! | `ok`         | nothing wrong                                         | 200 `ok`                   |

use std::hint::black_box;
use std::time::{Duration, Instant};

use waterspout_sdk::bindings::handler::waterspout::handler::response as raw;
use waterspout_sdk::log;
use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Faults {
    mode: String,
}

impl RequestHandler for Faults {
    fn initialize(&mut self, settings: &Settings) {
        self.mode = settings.get("mode").unwrap_or("ok").to_owned();
    }

    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        match self.mode.as_str() {
            "trap" => panic!("faults: trapping on purpose"),
            "loop" => endless_loop(),
            "spin" => {
                let ms: u64 = ctx.get_argument_or("ms", "100").parse().unwrap_or(100);
                spin(Duration::from_millis(ms));
                ctx.write("spun");
            }
            "flush-spin" => {
                // The first chunk must reach the client while the guest still runs.
                let ms: u64 = ctx.get_argument_or("ms", "1000").parse().unwrap_or(1000);
                ctx.write("first\n");
                ctx.flush();
                spin(Duration::from_millis(ms));
                ctx.write("second\n");
            }
            "grow" => grow_forever(),
            "recurse" => {
                let depth = recurse(black_box(0));
                ctx.write(format!("recursed {depth}"));
            }
            "bad-header" => {
                // The host refuses the value; the SDK panics, as Tornado raises ValueError.
                ctx.set_header("X-Test", "ok\r\nX-Injected: 1");
                ctx.write("header set");
            }
            "log" => {
                let red = "\x1b[31mred\x1b[0m";
                log::info!("faults: a {red} log line\nwith a forged second line");
                println!("faults: stdout {red}");
                eprintln!("faults: stderr {red}");
                ctx.write("logged");
            }
            "bad-header-name" => {
                // The raw import, so the host's answer is seen rather than the SDK's panic.
                let attempts = [
                    ("X-Bad\r\nX-Injected", "1"),
                    ("X-Bad\nX-Injected", "1"),
                    ("X-Nul\0", "1"),
                    ("X-Colon: x", "1"),
                    ("", "1"),
                    ("X-Value", "a\rX-Injected: 1"),
                    ("X-Value", "a\0b"),
                ];
                let refused = attempts
                    .iter()
                    .filter(|(name, value)| {
                        let set = raw::set_header(name, value).is_err();
                        let add = raw::add_header(name, value).is_err();
                        set && add
                    })
                    .count();
                ctx.write(format!("refused {refused} of {}", attempts.len()));
            }
            "bad-reason" => {
                let attempts = ["OK\r\nX-Injected: 1", "OK\nX-Injected: 1", "OK\rX", "OK\0"];
                let refused = attempts
                    .iter()
                    .filter(|reason| raw::set_status(200, Some(reason)).is_err())
                    .count();
                ctx.write(format!("refused {refused} of {}", attempts.len()));
            }
            "framing-headers" => {
                // Accepted and ignored: the host frames the message itself.
                for (name, value) in [
                    ("Content-Length", "999"),
                    ("Transfer-Encoding", "chunked"),
                    ("Connection", "close"),
                    ("Upgrade", "websocket"),
                    ("Trailer", "X-Checksum"),
                ] {
                    ctx.set_header(name, value);
                    ctx.add_header(name, value);
                }
                ctx.write("framed");
            }
            "never-finish" => {
                ctx.write("first\n");
                ctx.flush();
                endless_loop();
            }
            "resource-bomb" => resource_bomb(),
            _ => ctx.write("ok"),
        }
        Ok(())
    }
}

export_handler!(Faults);

/// Loops forever without returning to the host: only an epoch deadline stops it.
fn endless_loop() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Burns CPU for `duration`, checking the (WASI) clock as it goes.
fn spin(duration: Duration) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        n = black_box(n.wrapping_add(1));
    }
}

/// Keeps allocating and touching 1 MiB blocks until the memory limit stops it.
fn grow_forever() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(black_box(vec![1u8; 1 << 20]));
        black_box(&blocks);
    }
}

/// Recursion the optimizer cannot turn into a loop: every frame keeps a
/// buffer alive across the call and uses the callee's result.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    let below = recurse(black_box(depth + 1));
    below.wrapping_add(frame.iter().sum::<u64>())
}

// `wasi:cli/stdout.get-stdout` returns a new `output-stream` resource on
// every call; the raw import lets the guest keep every handle (std drops them).
#[link(wasm_import_module = "wasi:cli/stdout@0.2.6")]
unsafe extern "C" {
    #[link_name = "get-stdout"]
    fn get_stdout() -> i32;
}

/// Creates host resources without end and never drops one: the host's
/// resource limits must stop it, not its memory.
fn resource_bomb() -> ! {
    let mut n = 0u64;
    loop {
        // SAFETY: a component-model import without arguments returning a handle.
        n = black_box(n.wrapping_add(unsafe { get_stdout() } as u64));
    }
}
