//! The bodies of `make bench`'s scenario a (bench/src/http.rs), mirroring
//! its Tornado script: `GET /bytes/N` answers N bytes (route
//! `/bytes/(\d+)`), a POST answers how many fields its form body held
//! (Tornado: `len(self.request.body_arguments)`).

use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Bodies;

impl RequestHandler for Bodies {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        let n: usize = ctx
            .path_args()
            .first()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        ctx.write(vec![b'x'; n]);
        Ok(())
    }

    fn post(&mut self, ctx: &mut Context) -> Result<()> {
        let fields = ctx
            .request()
            .argument_names()
            .iter()
            .filter(|name| !ctx.request().body_arguments(name).is_empty())
            .count();
        ctx.write(fields.to_string());
        Ok(())
    }
}

export_handler!(Bodies);
