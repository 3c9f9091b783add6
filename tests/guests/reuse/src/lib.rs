//! Instance reuse, seen from inside: `GET /` answers how many requests this
//! instance has served, counting this one (a global counter: it survives
//! between requests only when the host reuses the instance). `GET /trap`
//! panics (the host must drop that instance). The route's `label` setting
//! is written before the count (`a:3`), so tests can tell handlers apart.

use std::sync::atomic::{AtomicU32, Ordering};

use waterspout_sdk::prelude::*;

static SERVED: AtomicU32 = AtomicU32::new(0);

#[derive(Default)]
struct Counter {
    label: String,
}

impl RequestHandler for Counter {
    fn initialize(&mut self, settings: &Settings) {
        self.label = settings.get("label").unwrap_or("").to_owned();
    }

    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
        if ctx.request().path() == "/trap" {
            panic!("trap on purpose after {served} request(s)");
        }
        ctx.write(format!("{}:{served}", self.label));
        Ok(())
    }
}

export_handler!(Counter);
