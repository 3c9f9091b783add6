//! A handler component of the shape every one had before the WIT gained
//! `dispatch`: raw bindings of a world that exports only `request-handler`
//! (as components built by older SDKs, kept in users' version stores). The
//! host must serve it with the four calls. Each response names the calls
//! this request made so far; `/finished` counts the `on-finish` calls this
//! instance has seen (reuse keeps the instance).
//!
//! - `GET /`: `initialize prepare get`
//! - `GET /error`: the verb returns 418 "Teapot"; `write-error` writes the page
//! - `GET /in-prepare`: `prepare` finishes the response; the verb is skipped
//! - `GET /finished`: how many requests reached `on-finish` before this one

use std::cell::RefCell;

wit_bindgen::generate!({
    path: "../../../wit",
    inline: "
        package test:four-calls;

        world four-calls {
            include waterspout:handler/services@0.1.0;
            import waterspout:handler/response@0.1.0;
            export waterspout:handler/request-handler@0.1.0;
        }
    ",
    world: "test:four-calls/four-calls",
    generate_all,
});

use exports::waterspout::handler::request_handler::{Guest, HttpError, Request};
use waterspout::handler::response;

thread_local! {
    static CALLS: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
    static FINISHED: RefCell<u32> = const { RefCell::new(0) };
}

fn called(name: &'static str) -> String {
    CALLS.with_borrow_mut(|calls| {
        calls.push(name);
        calls.join(" ")
    })
}

fn write(text: &str) {
    let _ = response::write(text.as_bytes());
}

struct FourCalls;

impl Guest for FourCalls {
    fn initialize(_settings: Vec<(String, String)>) {
        CALLS.with_borrow_mut(Vec::clear);
        called("initialize");
    }

    fn prepare(req: &Request) -> Result<(), HttpError> {
        let calls = called("prepare");
        if req.path() == "/in-prepare" {
            write(&calls);
            let _ = response::finish();
        }
        Ok(())
    }

    fn get(req: &Request) -> Result<(), HttpError> {
        let calls = called("get");
        match req.path().as_str() {
            "/error" => Err(HttpError {
                status: 418,
                reason: Some("Teapot".into()),
                log_message: Some("four-calls: 418 on purpose".into()),
            }),
            "/finished" => {
                write(&FINISHED.with_borrow(|n| n.to_string()));
                Ok(())
            }
            _ => {
                write(&calls);
                Ok(())
            }
        }
    }

    fn head(_: &Request) -> Result<(), HttpError> {
        Err(not_allowed())
    }
    fn post(_: &Request) -> Result<(), HttpError> {
        Err(not_allowed())
    }
    fn put(_: &Request) -> Result<(), HttpError> {
        Err(not_allowed())
    }
    fn delete(_: &Request) -> Result<(), HttpError> {
        Err(not_allowed())
    }
    fn patch(_: &Request) -> Result<(), HttpError> {
        Err(not_allowed())
    }
    fn options(_: &Request) -> Result<(), HttpError> {
        Err(not_allowed())
    }

    fn write_error(_: &Request, status: u16, reason: String) {
        let calls = called("write-error");
        write(&format!("{status} {reason} after: {calls}"));
    }

    fn on_finish(_: &Request) {
        called("on-finish");
        FINISHED.with_borrow_mut(|n| *n += 1);
    }
}

fn not_allowed() -> HttpError {
    HttpError {
        status: 405,
        reason: None,
        log_message: None,
    }
}

export!(FourCalls);
