//! The recent guest log lines, for the console's live tail: a bounded ring
//! of the last lines and a broadcast to whoever watches. Lossy by design: a
//! slow reader skips lines (it is told how many), the guest never waits.
//!
//! Process-wide, like the metrics recorder: every server in a process shares
//! it, and a reader filters by the handlers it knows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

/// Lines kept for a reader that arrives late.
const RECENT: usize = 200;
/// Lines a reader may fall behind before it skips.
const BACKLOG: usize = 1024;

/// One line a guest logged (the `log` import, stdout or stderr).
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    #[serde(serialize_with = "as_str")]
    pub handler: Arc<str>,
    pub version: u64,
    pub request: u64,
    pub level: &'static str,
    /// `log`, `stdout` or `stderr`.
    pub stream: String,
    /// Already sanitized (control characters escaped).
    pub message: String,
}

fn as_str<S: serde::Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(text)
}

struct Tail {
    sender: broadcast::Sender<Arc<LogLine>>,
    recent: Mutex<VecDeque<Arc<LogLine>>>,
}

fn tail() -> &'static Tail {
    static TAIL: OnceLock<Tail> = OnceLock::new();
    TAIL.get_or_init(|| Tail {
        sender: broadcast::channel(BACKLOG).0,
        recent: Mutex::new(VecDeque::with_capacity(RECENT)),
    })
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Keeps `line` among the recent ones and hands it to every reader.
pub fn publish(line: LogLine) {
    let tail = tail();
    let line = Arc::new(line);
    {
        let mut recent = tail.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(line.clone());
    }
    // No reader: nothing to do (the error only says so).
    let _ = tail.sender.send(line);
}

/// The recent lines, oldest first, and a receiver of the lines after them.
pub fn subscribe() -> (Vec<Arc<LogLine>>, broadcast::Receiver<Arc<LogLine>>) {
    let tail = tail();
    let recent = tail.recent.lock().unwrap_or_else(|e| e.into_inner());
    // Subscribing under the lock: no line falls between the two.
    let receiver = tail.sender.subscribe();
    (recent.iter().cloned().collect(), receiver)
}
