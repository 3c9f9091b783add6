//! Panic messages for the lean build (`wasm32-unknown-unknown`), which has no
//! stderr: the message goes to the host's log at `error` level, as a
//! `wasm32-wasip2` build's default hook writes it to the stderr the host
//! logs. The instance then traps, as in either build (`panic = "abort"`).

/// Installs the hook once per instance. Every export goes through the
/// handler slot, which calls this first.
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub(crate) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload_as_str().unwrap_or("Box<dyn Any>");
            let message = match info.location() {
                Some(at) => format!("panicked at {at}: {payload}"),
                None => format!("panicked: {payload}"),
            };
            crate::bindings::raw_log::log(crate::bindings::raw_log::Level::Error, &message);
        }));
    });
}

/// A `wasm32-wasip2` (or native) build keeps std's hook, which writes to stderr.
#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
pub(crate) fn install() {}
