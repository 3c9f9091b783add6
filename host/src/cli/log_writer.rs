//! The log's writer: every line (the access line of each request above all)
//! goes into one buffer in memory, and a thread of its own writes the buffer
//! to stderr in batches — one `write` per batch instead of one per line,
//! which on a pipe (systemd, docker, a terminal, the test harness) also
//! spares the reader a wake-up per line. A batch is written at most
//! [`BATCH_WINDOW`] after its first line; an error line is written at once,
//! with everything before it, by the thread that logs it; everything is
//! written before the process exits ([`flush`], called by `cli::main` and
//! by a panic hook). Nothing is dropped: a writer waits when
//! [`MAX_BUFFERED`] bytes are already waiting (stderr not being read), as
//! it waited on a full pipe before.
//!
//! tracing-appender's `non_blocking` was the library for this, and was not
//! taken: its worker writes each line as it arrives and flushes whenever
//! its queue is empty, so at a few tens of thousands of requests per second
//! it still makes one `write` (and one wake-up of its thread) per line.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread gathers lines after the first of a batch.
pub const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// Bytes waiting beyond which a line's writer waits for the batch to go out.
pub const MAX_BUFFERED: usize = 4 << 20;

#[derive(Default)]
struct Shared {
    /// The lines waiting.
    buffer: Mutex<Vec<u8>>,
    /// Held while a batch is taken and written, so batches reach stderr in
    /// the order their lines were logged.
    output: Mutex<()>,
    /// A first line arrived in an empty buffer.
    arrived: Condvar,
    /// A batch was taken (room again).
    drained: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Takes what is waiting and writes it to stderr (the caller's thread).
    fn flush(&self) {
        let _order = lock(&self.output);
        let batch = std::mem::take(&mut *lock(&self.buffer));
        self.drained.notify_all();
        if !batch.is_empty() {
            let mut stderr = std::io::stderr().lock();
            // As tracing's own writer: a log that cannot be written is lost,
            // never an error of the request that logged it.
            let _ = stderr.write_all(&batch);
            let _ = stderr.flush();
        }
    }

    /// The writer thread: waits for a first line, gathers for the window,
    /// writes the batch.
    fn run(&self) {
        loop {
            {
                let mut buffer = lock(&self.buffer);
                while buffer.is_empty() {
                    buffer = self.arrived.wait(buffer).unwrap_or_else(|e| e.into_inner());
                }
            }
            std::thread::sleep(BATCH_WINDOW);
            self.flush();
        }
    }

    fn push(&self, line: &[u8]) {
        let mut buffer = lock(&self.buffer);
        while buffer.len() >= MAX_BUFFERED {
            buffer = self.drained.wait(buffer).unwrap_or_else(|e| e.into_inner());
        }
        let first = buffer.is_empty();
        buffer.extend_from_slice(line);
        drop(buffer);
        if first {
            self.arrived.notify_one();
        }
    }
}

/// The batched stderr, as tracing-subscriber's writer.
#[derive(Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

static GLOBAL: OnceLock<BatchedStderr> = OnceLock::new();

impl BatchedStderr {
    /// The process's one batched stderr, its thread started on first use
    /// (and a panic hook that writes what is waiting before the panic's
    /// message).
    pub fn global() -> BatchedStderr {
        GLOBAL
            .get_or_init(|| {
                let shared = Arc::new(Shared::default());
                let worker = shared.clone();
                let started = std::thread::Builder::new()
                    .name("waterspout-log".into())
                    .spawn(move || worker.run());
                if started.is_err() {
                    // No thread: every line is written as it comes.
                    eprintln!("waterspout: the log writer thread did not start; logging unbatched");
                }
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    flush();
                    previous(info);
                }));
                BatchedStderr { shared }
            })
            .clone()
    }

    /// Writes every line waiting, now.
    pub fn flush(&self) {
        self.shared.flush();
    }
}

/// Writes every line waiting in the process's batched stderr, if it was
/// started.
pub fn flush() {
    if let Some(writer) = GLOBAL.get() {
        writer.flush();
    }
}

/// One event's writer: tracing-subscriber formats an event into a buffer of
/// its own and hands it over in one `write_all`.
pub struct Line<'a> {
    shared: &'a Shared,
    /// An error: written at once.
    urgent: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.shared.push(buf);
        if self.urgent {
            self.shared.flush();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        Line {
            shared: &self.shared,
            urgent: *meta.level() == tracing::Level::ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_for_the_batch_and_keep_their_order() {
        let shared = Shared::default();
        for i in 0..3 {
            let mut line = Line {
                shared: &shared,
                urgent: false,
            };
            line.write_all(format!("{i}\n").as_bytes()).unwrap();
        }
        let waiting = String::from_utf8(lock(&shared.buffer).clone()).unwrap();
        let expected: String = (0..3).map(|i| format!("{i}\n")).collect();
        assert_eq!(waiting, expected);
        // An error line takes everything before it out at once.
        let mut error = Line {
            shared: &shared,
            urgent: true,
        };
        error.write_all(b"error\n").unwrap();
        assert!(lock(&shared.buffer).is_empty());
    }

    #[test]
    fn a_full_buffer_makes_the_writer_wait_until_a_batch_is_taken() {
        let shared = Arc::new(Shared::default());
        lock(&shared.buffer).resize(MAX_BUFFERED, b'x');
        let writer = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                Line {
                    shared: &shared,
                    urgent: false,
                }
                .write_all(b"late\n")
                .unwrap()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!writer.is_finished(), "wrote past the limit");
        // What the writer thread does: take the batch.
        let taken = std::mem::take(&mut *lock(&shared.buffer));
        shared.drained.notify_all();
        writer.join().unwrap();
        assert_eq!(taken.len(), MAX_BUFFERED);
        assert_eq!(&lock(&shared.buffer)[..], b"late\n");
    }
}
