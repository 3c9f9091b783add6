//! {{ name }}: Tornado's `MainHandler`, as a Waterspout handler.
//!
//! `waterspout serve --build .` builds it (the `build` line of
//! waterspout.toml) and serves it: `curl http://127.0.0.1:8888/`.
//!
//! The Tornado original:
//!
//! ```python
//! class MainHandler(tornado.web.RequestHandler):
//!     def get(self):
//!         name = self.get_argument("name", "world")
//!         self.write(f"Hello, {name}")
//! ```

use waterspout_sdk::prelude::*;

#[derive(Default)]
struct MainHandler;

impl RequestHandler for MainHandler {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        let name = ctx.get_argument_or("name", "world");
        ctx.write(format!("Hello, {name}"));
        Ok(())
    }
}

export_handler!(MainHandler);
