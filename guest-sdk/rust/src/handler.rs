//! Tornado's `RequestHandler` lifecycle and the glue that exports it.

use std::marker::PhantomData;

use crate::bindings::{raw_dispatch, raw_handler, raw_response, raw_types};
use crate::context::Context;
use crate::error::{HttpError, Result};
use crate::settings::Settings;

/// A request handler, as a subclass of Tornado's `RequestHandler`.
///
/// The host makes a fresh instance of the component for every request and
/// calls, in order: [`initialize`](RequestHandler::initialize) with the
/// route's settings, [`prepare`](RequestHandler::prepare), the verb matching
/// the request's method, then [`on_finish`](RequestHandler::on_finish). One
/// handler value (made with `Default`) lives for that whole request, so what
/// `prepare` stores in `self` the verb sees.
///
/// Every verb defaults to `405 Method Not Allowed`, as in Tornado: implement
/// the ones the route serves. An `Err` from `prepare` or a verb, or a panic
/// (a 500), makes the host reset the response and call
/// [`write_error`](RequestHandler::write_error).
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct MainHandler;
///
/// impl RequestHandler for MainHandler {
///     fn get(&mut self, ctx: &mut Context) -> Result<()> {
///         ctx.write("Hello, world");
///         Ok(())
///     }
/// }
///
/// export_handler!(MainHandler);
/// ```
pub trait RequestHandler: Default + 'static {
    /// Receives the route's settings (Tornado's `initialize(**kwargs)`).
    ///
    /// ```no_run
    /// use waterspout_sdk::prelude::*;
    ///
    /// #[derive(Default)]
    /// struct Greeter { greeting: String }
    ///
    /// impl RequestHandler for Greeter {
    ///     fn initialize(&mut self, settings: &Settings) {
    ///         self.greeting = settings.get("greeting").unwrap_or("Hello").to_owned();
    ///     }
    /// }
    /// ```
    fn initialize(&mut self, settings: &Settings) {
        let _ = settings;
    }

    /// Runs before the verb, whatever the method. Finishing the response here
    /// (e.g. with `ctx.finish()` or `ctx.redirect(..)`) skips the verb;
    /// returning an error sends the error page instead.
    ///
    /// ```no_run
    /// use waterspout_sdk::prelude::*;
    ///
    /// #[derive(Default)]
    /// struct Private { user: String }
    ///
    /// impl RequestHandler for Private {
    ///     fn prepare(&mut self, ctx: &mut Context) -> Result<()> {
    ///         self.user = ctx.get_cookie("user").ok_or(HttpError::new(403))?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn prepare(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Handles `GET`. Defaults to 405.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl RequestHandler for H {
    ///     fn get(&mut self, ctx: &mut Context) -> Result<()> {
    ///         ctx.write("Hello, world");
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn get(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Err(HttpError::new(405))
    }

    /// Handles `HEAD`. Defaults to 405. The host sends the headers only, so
    /// a `head` may simply call `get`.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl RequestHandler for H {
    ///     fn get(&mut self, ctx: &mut Context) -> Result<()> {
    ///         ctx.write("body");
    ///         Ok(())
    ///     }
    ///     fn head(&mut self, ctx: &mut Context) -> Result<()> {
    ///         self.get(ctx)
    ///     }
    /// }
    /// ```
    fn head(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Err(HttpError::new(405))
    }

    /// Handles `POST`. Defaults to 405.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl RequestHandler for H {
    ///     fn post(&mut self, ctx: &mut Context) -> Result<()> {
    ///         let title = ctx.get_body_argument("title")?;
    ///         ctx.set_status(201);
    ///         ctx.write(format!("created {title}"));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn post(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Err(HttpError::new(405))
    }

    /// Handles `PUT`. Defaults to 405.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl RequestHandler for H {
    ///     fn put(&mut self, ctx: &mut Context) -> Result<()> {
    ///         let doc: serde_json::Value = ctx.request().body_json()?;
    ///         ctx.write_json(&doc);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn put(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Err(HttpError::new(405))
    }

    /// Handles `DELETE`. Defaults to 405.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl RequestHandler for H {
    ///     fn delete(&mut self, ctx: &mut Context) -> Result<()> {
    ///         ctx.set_status(204);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn delete(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Err(HttpError::new(405))
    }

    /// Handles `PATCH`. Defaults to 405.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl RequestHandler for H {
    ///     fn patch(&mut self, ctx: &mut Context) -> Result<()> {
    ///         ctx.write("patched");
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn patch(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Err(HttpError::new(405))
    }

    /// Handles `OPTIONS`. Defaults to 405.
    ///
    /// ```no_run
    /// # use waterspout_sdk::prelude::*;
    /// # #[derive(Default)] struct H;
    /// impl RequestHandler for H {
    ///     fn options(&mut self, ctx: &mut Context) -> Result<()> {
    ///         ctx.set_header("Allow", "GET, OPTIONS");
    ///         ctx.set_status(204);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn options(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Err(HttpError::new(405))
    }

    /// Writes the error page. The response was already cleared and its status
    /// set to `status` with `reason`; the default writes Tornado's page,
    /// `<html><title>404: Not Found</title><body>404: Not Found</body></html>`.
    ///
    /// ```no_run
    /// use waterspout_sdk::prelude::*;
    ///
    /// #[derive(Default)]
    /// struct Api;
    ///
    /// impl RequestHandler for Api {
    ///     fn write_error(&mut self, ctx: &mut Context, status: u16, reason: &str) {
    ///         ctx.write_json(&serde_json::json!({"status": status, "reason": reason}));
    ///     }
    /// }
    /// ```
    fn write_error(&mut self, ctx: &mut Context<'_>, status: u16, reason: &str) {
        ctx.write(error_page(status, reason));
    }

    /// Runs after the response was sent, for cleanup and logging; writing here
    /// has no effect.
    ///
    /// ```no_run
    /// use waterspout_sdk::prelude::*;
    /// use waterspout_sdk::log;
    ///
    /// #[derive(Default)]
    /// struct Audited;
    ///
    /// impl RequestHandler for Audited {
    ///     fn on_finish(&mut self, ctx: &mut Context) {
    ///         log::info!("served {} with {}", ctx.request().path(), ctx.get_status());
    ///     }
    /// }
    /// ```
    fn on_finish(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// Called when the client hung up while this handler waited on the host
    /// (a [`pubsub::wait`](crate::pubsub::wait) that ended with
    /// `PubsubError::Closed`), after the verb returned. Nothing more reaches
    /// the client; clean up here (Tornado's `on_connection_close`).
    fn on_connection_close(&mut self) {}
}

/// Tornado's default error page.
///
/// ```
/// assert_eq!(
///     waterspout_sdk::error_page(404, "Not Found"),
///     "<html><title>404: Not Found</title><body>404: Not Found</body></html>"
/// );
/// ```
pub fn error_page(status: u16, reason: &str) -> String {
    format!("<html><title>{status}: {reason}</title><body>{status}: {reason}</body></html>")
}

/// Exports a [`RequestHandler`] type as the component's `request-handler`.
///
/// Use it once per component, at the crate's top level, with a type that
/// implements `RequestHandler` (and so `Default`).
///
/// ```no_run
/// use waterspout_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct MainHandler;
///
/// impl RequestHandler for MainHandler {
///     fn get(&mut self, ctx: &mut Context) -> Result<()> {
///         ctx.write("Hello, world");
///         Ok(())
///     }
/// }
///
/// export_handler!(MainHandler);
/// ```
#[macro_export]
macro_rules! export_handler {
    ($handler:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            type __WaterspoutRequestHandler = $crate::__private::HandlerExport<$handler>;
            $crate::bindings::handler::export_handler_world!(
                __WaterspoutRequestHandler with_types_in $crate::bindings::handler
            );
        };
    };
}

use crate::slot::with_handler;

/// Runs `prepare` or a verb, then writes the error page `send_error` queued.
fn run_step<T: RequestHandler>(
    request: &raw_types::Request,
    step: impl FnOnce(&mut T, &mut Context<'_>) -> Result<()>,
) -> std::result::Result<(), raw_types::HttpError> {
    with_handler(|handler: &mut T| {
        let mut ctx = Context::new(request);
        let outcome = step(handler, &mut ctx);
        if crate::pubsub::take_client_closed() {
            // The client is gone: whatever the verb answered goes nowhere.
            handler.on_connection_close();
            return Ok(());
        }
        outcome.map_err(HttpError::into_raw)?;
        if let Some(error) = ctx.take_pending_error() {
            let mut ctx = ctx.for_error_page();
            handler.write_error(&mut ctx, error.status, &error.reason);
            ctx.finish();
        }
        Ok(())
    })
}

/// The `request-handler` export implemented for any [`RequestHandler`].
#[doc(hidden)]
pub struct HandlerExport<T>(PhantomData<T>);

impl<T: RequestHandler> raw_handler::Guest for HandlerExport<T> {
    fn initialize(settings: Vec<(String, String)>) {
        let settings = Settings::new(settings);
        let mut handler = T::default();
        handler.initialize(&settings);
        crate::slot::set(handler);
    }

    fn prepare(req: &raw_types::Request) -> std::result::Result<(), raw_types::HttpError> {
        run_step(req, T::prepare)
    }

    fn get(req: &raw_types::Request) -> std::result::Result<(), raw_types::HttpError> {
        run_step(req, T::get)
    }

    fn head(req: &raw_types::Request) -> std::result::Result<(), raw_types::HttpError> {
        run_step(req, T::head)
    }

    fn post(req: &raw_types::Request) -> std::result::Result<(), raw_types::HttpError> {
        run_step(req, T::post)
    }

    fn put(req: &raw_types::Request) -> std::result::Result<(), raw_types::HttpError> {
        run_step(req, T::put)
    }

    fn delete(req: &raw_types::Request) -> std::result::Result<(), raw_types::HttpError> {
        run_step(req, T::delete)
    }

    fn patch(req: &raw_types::Request) -> std::result::Result<(), raw_types::HttpError> {
        run_step(req, T::patch)
    }

    fn options(req: &raw_types::Request) -> std::result::Result<(), raw_types::HttpError> {
        run_step(req, T::options)
    }

    fn write_error(req: &raw_types::Request, status: u16, reason: String) {
        with_handler(|handler: &mut T| {
            let mut ctx = Context::new(req).for_error_page();
            handler.write_error(&mut ctx, status, &reason);
        });
    }

    fn on_finish(req: &raw_types::Request) {
        with_handler(|handler: &mut T| handler.on_finish(&mut Context::new(req)));
    }
}

/// The `dispatch` export: the whole lifecycle of a request in one call
/// (the host uses it instead of the four `request-handler` calls). An
/// `Err` goes back to the host before `write_error` and `on_finish`, which
/// the host then calls through `request-handler`, as on the four-call path.
impl<T: RequestHandler> raw_dispatch::Guest for HandlerExport<T> {
    fn handle(
        req: &raw_types::Request,
        settings: Vec<(String, String)>,
        method: raw_types::Method,
        _path_args: Vec<String>,
        _path_kwargs: Vec<(String, String)>,
    ) -> std::result::Result<(), raw_types::HttpError> {
        use raw_handler::Guest as _;
        use raw_types::Method;
        Self::initialize(settings);
        Self::prepare(req)?;
        if !raw_response::finished() {
            match method {
                Method::Get => Self::get(req)?,
                Method::Head => Self::head(req)?,
                Method::Post => Self::post(req)?,
                Method::Put => Self::put(req)?,
                Method::Delete => Self::delete(req)?,
                Method::Patch => Self::patch(req)?,
                Method::Options => Self::options(req)?,
                Method::Other => return Err(HttpError::new(405).into_raw()),
            }
        }
        if !raw_response::finished() {
            let _ = raw_response::finish();
        }
        Self::on_finish(req);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter {
        calls: u32,
    }

    impl RequestHandler for Counter {}

    #[test]
    fn error_page_matches_tornado() {
        assert_eq!(
            error_page(405, "Method Not Allowed"),
            "<html><title>405: Method Not Allowed</title>\
             <body>405: Method Not Allowed</body></html>"
        );
    }

    #[test]
    fn handler_state_persists_between_calls() {
        use raw_handler::Guest;
        HandlerExport::<Counter>::initialize(vec![]);
        with_handler(|h: &mut Counter| h.calls += 1);
        with_handler(|h: &mut Counter| h.calls += 1);
        assert_eq!(with_handler(|h: &mut Counter| h.calls), 2);
        HandlerExport::<Counter>::initialize(vec![]);
        assert_eq!(with_handler(|h: &mut Counter| h.calls), 0);
    }
}
