//! Tornado's "Hello, world", as a Waterspout handler.
//!
//! Run it: `cargo run -p waterspout -- serve --build examples/hello` from the
//! repository root (or `make serve`), then `curl http://127.0.0.1:8888/`.
//!
//! The Tornado original:
//!
//! ```python
//! class MainHandler(tornado.web.RequestHandler):
//!     def get(self):
//!         self.write("Hello, world")
//! ```

use waterspout_sdk::prelude::*;

/// Answers `GET /` with "Hello, world".
#[derive(Default)]
struct MainHandler;

impl RequestHandler for MainHandler {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        ctx.write("Hello, world");
        Ok(())
    }
}

export_handler!(MainHandler);
