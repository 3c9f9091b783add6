//! The one place where WIT becomes Rust: `bindgen!` for each world, sealed
//! here. The generated host traits are what the capability modules beside
//! this file implement; the runtime and the handler drivers call the
//! generated export wrappers. Everything else imports the few names
//! re-exported below.

/// World `handler`: a Tornado `RequestHandler`.
pub mod handler {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "handler",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "waterspout:handler/types.request": crate::capabilities::request::RequestData,
        },
    });
}

/// World `websocket`: a Tornado `WebSocketHandler`. Shares the `services`
/// interfaces (`types`, `log`) with the handler world.
pub mod websocket {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "websocket",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "waterspout:handler/types": crate::capabilities::bindings::handler::waterspout::handler::types,
            "waterspout:handler/log": crate::capabilities::bindings::handler::waterspout::handler::log,
            "waterspout:handler/kv": crate::capabilities::bindings::handler::waterspout::handler::kv,
            "waterspout:handler/timers": crate::capabilities::bindings::handler::waterspout::handler::timers,
            "waterspout:handler/http-client": crate::capabilities::bindings::handler::waterspout::handler::http_client,
        },
    });
}

pub use handler::exports::waterspout::handler::request_handler::{Guest as RequestHandler, HttpError};
pub use handler::waterspout::handler::log::Level as LogLevel;
pub use handler::waterspout::handler::response::CookieOptions;
pub use handler::waterspout::handler::types::Method as WitMethod;
pub use handler::waterspout::handler::types::UploadedFile;
pub use handler::waterspout::handler::{http_client, kv, log, response, timers, types};
pub use handler::{Handler as HandlerWorld, HandlerPre};
pub use websocket::waterspout::handler::websocket_connection;
pub use websocket::waterspout::handler::websocket_connection::Message as WsMessage;
pub use websocket::{Websocket as WebsocketWorld, WebsocketPre};
