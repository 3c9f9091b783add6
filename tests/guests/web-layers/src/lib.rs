//! The guest behind the web-layer tests (integration/web_layers.rs):
//!
//! - `GET /whoami` → `REMOTE_IP PROTOCOL` (what the host decided: TLS, xheaders);
//! - `GET /big?n=N` → N bytes of text (`text/plain`), written at once;
//! - `GET /stream?n=N` → N lines of 100 bytes, each flushed on its own;
//! - `POST /echo` → the body as received, with `X-Body-Length` and the
//!   `X-Consumed-Content-Encoding` the host set (or `-`).

use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Web;

const LINE: &str = "Waterspout serves Tornado apps as WebAssembly components, one sandbox a request.\n";

fn text(n: usize) -> String {
    LINE.repeat(n / LINE.len() + 1)[..n].to_owned()
}

impl RequestHandler for Web {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        let n: usize = ctx.get_argument_or("n", "0").parse().unwrap_or(0);
        match ctx.request().path().as_str() {
            "/whoami" => {
                let line = format!("{} {}", ctx.request().remote_ip(), ctx.request().protocol());
                ctx.set_header("Content-Type", "text/plain");
                ctx.write(line);
            }
            "/big" => {
                ctx.set_header("Content-Type", "text/plain");
                ctx.write(text(n));
            }
            "/stream" => {
                ctx.set_header("Content-Type", "text/plain");
                for i in 0..n {
                    ctx.write(format!("{i:>3} {}", text(96)));
                    ctx.flush();
                }
            }
            _ => return Err(HttpError::new(404)),
        }
        Ok(())
    }

    fn post(&mut self, ctx: &mut Context) -> Result<()> {
        let body = ctx.request().body();
        let consumed = ctx
            .request()
            .header("X-Consumed-Content-Encoding")
            .unwrap_or_else(|| "-".to_owned());
        ctx.set_header("Content-Type", "application/octet-stream");
        ctx.set_header("X-Body-Length", body.len());
        ctx.set_header("X-Consumed-Content-Encoding", consumed);
        ctx.write(body);
        Ok(())
    }
}

export_handler!(Web);
