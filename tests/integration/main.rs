//! The integration tests: the real server on 127.0.0.1:0, real clients, real
//! guests. One test binary for all of them, one module per area.

mod admin;
mod c;
mod console;
mod console_browser;
mod core;
mod engines;
mod examples;
mod hot_swap;
mod js;
mod one_call;
mod pubsub;
mod python;
mod queues;
mod reuse;
mod sdk_reuse;
mod services;
mod spider;
mod wasi_http;
mod wasi_http3;
mod web;
mod web_layers;
mod websocket;
mod workers;
