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
            "waterspout:handler/web": crate::capabilities::bindings::handler::waterspout::handler::web,
            "waterspout:handler/pubsub": crate::capabilities::bindings::handler::waterspout::handler::pubsub,
            "waterspout:handler/groups": crate::capabilities::bindings::handler::waterspout::handler::groups,
            "waterspout:handler/http-client": crate::capabilities::bindings::handler::waterspout::handler::http_client,
            "waterspout:handler/queue": crate::capabilities::bindings::handler::waterspout::handler::queue,
        },
    });
}

/// World `worker`: a background worker's loop. Shares the `services`
/// interfaces with the handler world (each one listed in `with`).
pub mod worker {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "worker",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "waterspout:handler/types": crate::capabilities::bindings::handler::waterspout::handler::types,
            "waterspout:handler/log": crate::capabilities::bindings::handler::waterspout::handler::log,
            "waterspout:handler/queue": crate::capabilities::bindings::handler::waterspout::handler::queue,
            "waterspout:handler/kv": crate::capabilities::bindings::handler::waterspout::handler::kv,
            "waterspout:handler/timers": crate::capabilities::bindings::handler::waterspout::handler::timers,
            "waterspout:handler/web": crate::capabilities::bindings::handler::waterspout::handler::web,
            "waterspout:handler/pubsub": crate::capabilities::bindings::handler::waterspout::handler::pubsub,
            "waterspout:handler/groups": crate::capabilities::bindings::handler::waterspout::handler::groups,
            "waterspout:handler/http-client": crate::capabilities::bindings::handler::waterspout::handler::http_client,
        },
    });
}

pub use handler::exports::waterspout::handler::dispatch;
pub use handler::exports::waterspout::handler::request_handler::{
    Guest as RequestHandler, GuestIndices as RequestHandlerIndices, HttpError,
};
pub use handler::waterspout::handler::log::Level as LogLevel;
pub use handler::waterspout::handler::response::CookieOptions;
pub use handler::waterspout::handler::types::Method as WitMethod;
pub use handler::waterspout::handler::types::UploadedFile;
pub use handler::waterspout::handler::{
    groups, http_client, kv, log, pubsub, queue, response, timers, types, web,
};
pub use websocket::waterspout::handler::websocket_connection;
pub use websocket::waterspout::handler::websocket_connection::Message as WsMessage;
pub use websocket::{Websocket as WebsocketWorld, WebsocketPre};
pub use worker::{Worker as WorkerWorld, WorkerPre};
