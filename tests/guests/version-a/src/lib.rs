//! Version A of one handler, for hot-swap tests: `GET /` answers `a`.

use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Version;

impl RequestHandler for Version {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        ctx.write("a");
        Ok(())
    }
}

export_handler!(Version);
