//! The web helpers from a Rust guest (tests/integration/web.rs): signed
//! cookies, XSRF, templates, URLs and the login guard.

use serde_json::json;
use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Web;

impl RequestHandler for Web {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        match ctx.request().path().as_str() {
            // Tornado's set_signed_cookie(name, value).
            "/set" => {
                let (name, value) = (ctx.get_argument("name")?, ctx.get_argument("value")?);
                ctx.set_signed_cookie(&name, &value);
                ctx.write("set");
            }
            // get_signed_cookie(name[, max_age_days]): the value, or 404.
            "/get" => {
                let name = ctx.get_argument("name")?;
                let days: f64 = ctx.get_argument_or("days", "31").parse().unwrap_or(31.0);
                match ctx.get_signed_cookie_max_age(&name, days) {
                    Some(value) => ctx.write(value),
                    None => return Err(HttpError::new(404)),
                }
            }
            "/form" => {
                let html = ctx.xsrf_form_html();
                ctx.write(format!("<form method=post>{html}</form>"));
            }
            "/token" => {
                let token = ctx.xsrf_token();
                ctx.write(token);
            }
            "/render" => {
                let template = ctx.get_argument("t")?;
                let name = ctx.get_argument_or("name", "");
                ctx.render(&template, &json!({ "name": name }))?;
            }
            "/private" => {
                let user = ctx.get_signed_cookie("user");
                ctx.authenticated(user, |ctx, user| {
                    ctx.write(format!("hello {user}"));
                    Ok(())
                })?;
            }
            "/reverse" => {
                let url = ctx.reverse_url("item", &["a b"]).unwrap_or_default();
                ctx.write(url);
            }
            _ => return Err(HttpError::new(404)),
        }
        Ok(())
    }

    fn post(&mut self, ctx: &mut Context) -> Result<()> {
        match ctx.request().path().as_str() {
            "/private" => {
                let user = ctx.get_signed_cookie("user");
                ctx.authenticated(user, |ctx, user| {
                    ctx.write(format!("posted by {user}"));
                    Ok(())
                })
            }
            _ => {
                ctx.write("posted");
                Ok(())
            }
        }
    }
}

export_handler!(Web);
