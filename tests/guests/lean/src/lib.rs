//! A guest built lean (for `wasm32-unknown-unknown`, by tests/build.rs): a
//! core module the server makes a component of. `GET /` answers, `/panic`
//! panics (its message must reach the log through the SDK's hook, there
//! being no stderr), `/clock` asks std for the time, which this target does
//! not have: the request fails alone, with std's message in the log.

use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Lean;

impl RequestHandler for Lean {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        match ctx.request().path().as_str() {
            "/panic" => panic!("the lean guest panics on purpose"),
            "/clock" => {
                let now = std::time::SystemTime::now();
                ctx.write(format!("{now:?}"));
            }
            _ => {
                let name = ctx.get_argument_or("name", "lean");
                ctx.write(format!("Hello from a core module, {name}"));
            }
        }
        Ok(())
    }
}

export_handler!(Lean);
