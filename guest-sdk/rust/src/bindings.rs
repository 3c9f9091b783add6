//! The raw bindings generated from `wit/`, one module per world.
//!
//! Everything here is an implementation detail of the SDK: the public API wraps
//! it, and the `export_*!` macros reach it through `$crate`. The websocket world
//! reuses the handler world's `types` and `log` bindings so that both share one
//! `Request` type.

/// Bindings of the `handler` world (request handlers).
pub mod handler {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "handler",
        pub_export_macro: true,
        export_macro_name: "export_handler_world",
        default_bindings_module: "waterspout_sdk::bindings::handler",
    });
}

/// Bindings of the `websocket` world (WebSocket handlers).
pub mod websocket {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "websocket",
        pub_export_macro: true,
        export_macro_name: "export_websocket_world",
        default_bindings_module: "waterspout_sdk::bindings::websocket",
        with: {
            "waterspout:handler/types@0.1.0": crate::bindings::handler::waterspout::handler::types,
            "waterspout:handler/log@0.1.0": crate::bindings::handler::waterspout::handler::log,
            "waterspout:handler/kv@0.1.0": crate::bindings::handler::waterspout::handler::kv,
            "waterspout:handler/timers@0.1.0": crate::bindings::handler::waterspout::handler::timers,
            "waterspout:handler/pubsub@0.1.0": crate::bindings::handler::waterspout::handler::pubsub,
            "waterspout:handler/groups@0.1.0": crate::bindings::handler::waterspout::handler::groups,
            "waterspout:handler/http-client@0.1.0": crate::bindings::handler::waterspout::handler::http_client,
            "waterspout:handler/queue@0.1.0": crate::bindings::handler::waterspout::handler::queue,
        },
    });
}

/// Bindings of the `worker` world (background workers).
pub mod worker {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "worker",
        pub_export_macro: true,
        export_macro_name: "export_worker_world",
        default_bindings_module: "waterspout_sdk::bindings::worker",
        with: {
            "waterspout:handler/types@0.1.0": crate::bindings::handler::waterspout::handler::types,
            "waterspout:handler/log@0.1.0": crate::bindings::handler::waterspout::handler::log,
            "waterspout:handler/queue@0.1.0": crate::bindings::handler::waterspout::handler::queue,
            "waterspout:handler/kv@0.1.0": crate::bindings::handler::waterspout::handler::kv,
            "waterspout:handler/timers@0.1.0": crate::bindings::handler::waterspout::handler::timers,
            "waterspout:handler/pubsub@0.1.0": crate::bindings::handler::waterspout::handler::pubsub,
            "waterspout:handler/groups@0.1.0": crate::bindings::handler::waterspout::handler::groups,
            "waterspout:handler/http-client@0.1.0": crate::bindings::handler::waterspout::handler::http_client,
        },
    });
}

pub(crate) use handler::exports::waterspout::handler::dispatch as raw_dispatch;
pub(crate) use handler::exports::waterspout::handler::request_handler as raw_handler;
pub(crate) use handler::waterspout::handler::groups as raw_groups;
pub(crate) use handler::waterspout::handler::http_client as raw_http_client;
pub(crate) use handler::waterspout::handler::kv as raw_kv;
pub(crate) use handler::waterspout::handler::log as raw_log;
pub(crate) use handler::waterspout::handler::pubsub as raw_pubsub;
pub(crate) use handler::waterspout::handler::queue as raw_queue;
pub(crate) use handler::waterspout::handler::response as raw_response;
pub(crate) use handler::waterspout::handler::timers as raw_timers;
pub(crate) use handler::waterspout::handler::types as raw_types;
pub(crate) use websocket::exports::waterspout::handler::websocket_handler as raw_websocket_handler;
pub(crate) use websocket::waterspout::handler::websocket_connection as raw_connection;
pub(crate) use worker::exports::waterspout::handler::background_worker as raw_worker;
