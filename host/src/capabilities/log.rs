//! Capability `log`: the `log` import and the guest's stdout/stderr both go to the host log,
//! tagged with handler, version and request id, with control characters
//! escaped so a guest cannot forge log lines or drive the operator's terminal.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::{HasData, Linker};

use crate::capabilities::bindings::{LogLevel, log};
use crate::text::MAX_LINE;

/// Who is speaking: attached to every log line a guest causes.
#[derive(Debug, Clone)]
pub struct Tag {
    pub handler: Arc<str>,
    pub version: u64,
    pub request_id: u64,
}

pub fn emit(tag: &Tag, level: tracing::Level, stream: &str, message: &str) {
    let message = crate::text::sanitize(message);
    let (handler, version, request) = (&*tag.handler, tag.version, tag.request_id);
    crate::logtail::publish(crate::logtail::LogLine {
        time_ms: crate::logtail::now_ms(),
        handler: tag.handler.clone(),
        version,
        request,
        level: level.as_str(),
        stream: stream.to_owned(),
        message: message.clone(),
    });
    macro_rules! at {
        ($lvl:ident) => {
            tracing::$lvl!(target: "waterspout::guest", handler, version, request, stream, "{message}")
        };
    }
    match level {
        tracing::Level::ERROR => at!(error),
        tracing::Level::WARN => at!(warn),
        tracing::Level::INFO => at!(info),
        tracing::Level::DEBUG => at!(debug),
        _ => at!(trace),
    }
}

/// A guest's stdout or stderr: split into lines, each logged; never blocks
/// and never fails, so a chatty guest cannot stall or crash its request.
#[derive(Clone)]
pub struct GuestOutput {
    tag: Tag,
    stream: &'static str,
}

impl GuestOutput {
    pub fn new(tag: Tag, stream: &'static str) -> Self {
        GuestOutput { tag, stream }
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.line_writer())
    }

    /// Writes synchronously: the default adapter spawns a tokio task per
    /// stream, and `get-stdout` makes a new stream on every call, so a guest
    /// calling it in a loop would flood the scheduler.
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.line_writer())
    }
}

impl GuestOutput {
    fn line_writer(&self) -> LineWriter {
        LineWriter {
            out: self.clone(),
            pending: Vec::new(),
        }
    }
}

struct LineWriter {
    out: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit_line(&mut self, line: &[u8]) {
        let level = if self.out.stream == "stderr" {
            tracing::Level::WARN
        } else {
            tracing::Level::INFO
        };
        emit(
            &self.out.tag,
            level,
            self.out.stream,
            &String::from_utf8_lossy(line),
        );
    }

    /// Logs every complete line of `buf`; keeps the rest (at most `MAX_LINE`).
    fn write_bytes(&mut self, buf: &[u8]) {
        self.pending.extend_from_slice(buf);
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            self.emit_line(&line[..line.len() - 1]);
        }
        if self.pending.len() > MAX_LINE {
            let line = std::mem::take(&mut self.pending);
            self.emit_line(&line);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit_line(&line);
        }
        Poll::Ready(Ok(()))
    }
}

/// The WASI stream: never blocks, never fails, always ready.
impl wasmtime_wasi::p2::Pollable for LineWriter {
    // `#[async_trait]`'s signature, written out (no dependency for one method).
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(std::future::ready(()))
    }
}

impl wasmtime_wasi::p2::OutputStream for LineWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit_line(&line);
        }
    }
}

struct HasLog;

impl HasData for HasLog {
    type Data<'a> = &'a mut Tag;
}

/// Links interface `log`; the instance's tag is all it needs.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut Tag,
) -> wasmtime::Result<()> {
    log::add_to_linker::<T, HasLog>(linker, get)
}

impl log::Host for Tag {
    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let level = match level {
            LogLevel::Trace => tracing::Level::TRACE,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        };
        emit(self, level, "log", &message);
        Ok(())
    }
}
