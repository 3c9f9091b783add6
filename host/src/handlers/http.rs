//! Our handler world, in Tornado's order: method supported? → body parsed
//! (malformed → 400) → prepare (may finish) → verb → automatic finish →
//! on-finish. An `http-error` from prepare or the verb goes to the guest's
//! `write-error`; a fault (trap, timeout, full pool) becomes a generic
//! 500 / 503 page that never shows the trap's text.
//!
//! A component that exports `dispatch` (every SDK's since it exists) runs
//! initialize → prepare → verb → finish → on-finish in one export call,
//! `dispatch.handle`; an older one gets the four calls. Either way the
//! error path (write-error, finish, on-finish) and the refusals before
//! prepare are the host's, as below.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime::component::Resource;

use super::Target;
use crate::app::App;
use crate::body::{Body, error_page};
use crate::capabilities::bindings::{HttpError, RequestHandler};
use crate::capabilities::pubsub::{Parked, Woke};
use crate::capabilities::queue::QueueCtx;
use crate::capabilities::request::RequestData;
use crate::capabilities::response::{ResponseCtx, ResponseState};
use crate::capabilities::waiting::{Hangup, Waiting};
use crate::capabilities::wasi::Wasi;
use crate::capabilities::web::WebCtx;
use crate::runtime::{Fault, Guest, HandlerInstance, HandlerPre, HandlerVersion, HostState, Warm};
use crate::services::broker::{BrokerError, TopicMessage};
use crate::services::web::{UnsafeRequest, Web};
use crate::text::sanitize;

/// Serves one request; never fails (every failure is a response).
pub(super) async fn serve(
    app: Arc<App>,
    target: Target,
    pre: HandlerPre,
    parts: http::request::Parts,
    body: Bytes,
    remote: SocketAddr,
) -> http::Response<Body> {
    let start = Instant::now();
    let Target {
        slot,
        version,
        settings,
        path_args,
        path_kwargs,
    } = target;
    let mut data = RequestData::new(parts, body, remote.ip(), path_args, path_kwargs);
    // A handler that may wait on pub/sub (long polls) gets its request in
    // bytes of its own at once. Otherwise a waiting request keeps hyper's
    // read buffer (its head is a slice of it), and hyper, reading on to
    // notice a hang-up, makes a second one: two 8 KiB buffers a poll.
    if !slot.limits.pubsub_topics.is_empty() {
        data.detach();
    }
    let web = web_ctx(&app, &data.headers);
    let (head_tx, mut head_rx) = oneshot::channel();
    let request_id = app.next_request_id();
    let (hangup, closed) = Hangup::new();
    // The guest runs inside this request's future (no task hand-off, no
    // cross-thread wake-up). If it flushes, the head must reach hyper while
    // the guest keeps running: then the rest of the run moves to its own task.
    let run = Box::pin(async move {
        let park = slot.limits.park_waits;
        let (mut data, mut head_tx, mut web) = (data, head_tx, web);
        // What a parked wait got (for the next run), and how long it waited.
        let (mut woke, mut parked_for) = (None, Duration::ZERO);
        loop {
            let admitted = Guest::admit_reusing(&slot, version.clone(), request_id).await;
            let (mut guest, reused) = match admitted {
                Ok(admitted) => admitted,
                Err(fault) => return super::refuse(head_tx, &version, &fault, start),
            };
            let is_head = data.method == Method::HEAD;
            guest.ctx().response = ResponseCtx::new(ResponseState::new(head_tx, is_head));
            super::services::grant(&app, &slot.limits, guest.ctx(), None);
            if park {
                guest.ctx().pubsub.allow_parking(woke.take());
                // Time parked counts against the request's wait budget.
                guest.ctx().waiting = Waiting::new(slot.limits.wait_timeout().saturating_sub(parked_for));
            }
            guest.ctx().waiting.watch_hangup(closed.clone());
            guest.ctx().web = web;
            if let Some(dir) = &slot.limits.data_dir {
                guest.ctx().wasi = Wasi::with_data_dir(app.dir().join(dir));
            }
            let checks = app.web().clone();
            guest.ctx().queue = QueueCtx::new(app.services().queues.clone(), &slot.limits.queues);
            // A request that may park keeps its data to run again.
            let rerun = park.then(|| data.clone());
            // Boxed: a parked request's future then holds none of the call's state.
            let outcome = Box::pin(guest.call("request", async |store| {
                let instance = match reused {
                    Some(Warm::Handler(instance)) => instance,
                    _ => pre.instantiate_async(&mut *store).await?,
                };
                lifecycle(store, &instance, &settings, data, &checks).await?;
                Ok(instance)
            }))
            .await;
            // A wait parked the request: by trapping (`wait`: the instance
            // is gone) or by the guest returning (`wait-or-park`: the
            // instance may serve again).
            // (A guest that went on after `none` and flushed is answered.)
            let unsent = guest.ctx().response.get().is_some_and(|r| !r.headers_sent());
            let parked = match (outcome, guest.ctx().pubsub.take_parked()) {
                (Err(Fault::Parked(parked)), _) => Err((parked, None)),
                (Ok(instance), Some(parked)) if unsent => Err((parked, Some(instance))),
                (outcome, _) => Ok(outcome),
            };
            let response = guest.ctx().response.get().expect("http instance has a response");
            let outcome = match parked {
                Ok(outcome) => outcome,
                Err((parked, instance)) => {
                    // Nothing was sent (a wait parks only then): the next run answers.
                    head_tx = response
                        .take_unsent_head()
                        .expect("a request parks before its head is sent");
                    match instance {
                        Some(instance) => guest.recycle(instance, slot.limits.reuse),
                        None => drop(guest),
                    }
                    let began = Instant::now();
                    let Some(outcome) = wait_parked(&app, &version, &parked, closed.clone()).await else {
                        // The client hung up: nobody to answer.
                        return;
                    };
                    parked_for += began.elapsed();
                    woke = Some(Woke {
                        topic: parked.topic,
                        after: parked.after,
                        outcome,
                    });
                    data = rerun.expect("a parking request keeps its data");
                    web = web_ctx(&app, &data.headers);
                    continue;
                }
            };
            let (status, instance) = match outcome {
                Ok(instance) => (response.status(), Some(instance)),
                Err(fault) => match response.take_unsent_head() {
                    Some(head_tx) => {
                        let _ = head_tx.send(error_page(fault.status()));
                        (fault.status().as_u16(), None)
                    }
                    None => {
                        response.abort().await;
                        (response.status(), None)
                    }
                },
            };
            version.metrics.request_done(status, start.elapsed());
            // A fault drops the instance with the guest; a clean one may serve again.
            if let Some(instance) = instance {
                guest.recycle(instance, slot.limits.reuse);
            }
            return;
        }
    });
    let mut run = Unanswered {
        run: Some(run),
        hangup,
    };
    let head = tokio::select! {
        biased;
        head = &mut head_rx => {
            tokio::spawn(run.run.take().expect("the run is pending"));
            head
        }
        () = run.run.as_mut().expect("the run is pending") => {
            run.run = None;
            head_rx.await
        }
    };
    // Without a head the run already logged why.
    head.unwrap_or_else(|_| error_page(StatusCode::INTERNAL_SERVER_ERROR))
}

/// The web capability's context of a request with `headers` (its cookies).
fn web_ctx(app: &App, headers: &http::HeaderMap) -> WebCtx {
    let cookies = headers.get_all(http::header::COOKIE).iter().cloned().collect();
    WebCtx::new(
        app.web().clone(),
        Arc::clone(&app.deployer().router()),
        app.statics().cloned(),
        cookies,
    )
}

/// A parked request waits here, holding no instance (counted as parked):
/// the broker's answer for the wait it parked on, or `None` when the client
/// hangs up first.
async fn wait_parked(
    app: &App,
    version: &HandlerVersion,
    parked: &Parked,
    mut closed: tokio::sync::watch::Receiver<bool>,
) -> Option<Result<Vec<TopicMessage>, BrokerError>> {
    let _parked = version.metrics.request_parked();
    let broker = app.services().broker.clone();
    tokio::select! {
        biased;
        _ = closed.wait_for(|closed| *closed) => None,
        outcome = broker.wait(&parked.topic, parked.after, parked.timeout) => Some(outcome),
    }
}

/// How long a guest whose client hung up may go on (to run
/// `on_connection_close` and return) before its instance is dropped.
const HANGUP_GRACE: Duration = Duration::from_secs(1);

/// A guest run whose head has not gone to hyper yet. hyper drops the
/// request's future when the client hangs up (HTTP/1 notices the EOF while
/// the handler runs; HTTP/2 a reset stream); then the run goes on in a task
/// of its own with the hang-up raised, so a guest waiting on the host hears
/// `closed` at once, and is dropped after [`HANGUP_GRACE`] at the latest.
struct Unanswered<F: Future<Output = ()> + Send + 'static> {
    run: Option<Pin<Box<F>>>,
    hangup: Hangup,
}

impl<F: Future<Output = ()> + Send + 'static> Drop for Unanswered<F> {
    fn drop(&mut self) {
        let Some(run) = self.run.take() else { return };
        self.hangup.raise();
        // Outside a runtime (shutting down) the run is simply dropped.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(HANGUP_GRACE, run).await;
            });
        }
    }
}

async fn lifecycle(
    store: &mut Store<HostState>,
    instance: &HandlerInstance,
    settings: &[(String, String)],
    mut data: RequestData,
    web: &Web,
) -> wasmtime::Result<()> {
    let body_error = data.parse_body().await.err();
    let method = data.method.clone();
    let refused = refusal(body_error, &method, unsafe_request_refused(web, &data));
    // One call (`dispatch.handle`) when the component has it: it gets the
    // route's groups with the call, not through two more host calls.
    let dispatched = refused.is_none() && instance.dispatches();
    let groups = if dispatched {
        (data.path_args.clone(), data.path_kwargs.clone())
    } else {
        Default::default()
    };
    let req: Resource<RequestData> = store.data_mut().ctx.table.push(data)?;
    let borrow = || Resource::<RequestData>::new_borrow(req.rep());

    let outcome: Result<(), HttpError> = if let Some(error) = refused {
        let handler = instance.handler(store)?;
        handler.call_initialize(&mut *store, settings).await?;
        Err(error)
    } else if dispatched {
        let (path_args, path_kwargs) = groups;
        let handled = instance
            .dispatch(
                store,
                borrow(),
                settings,
                crate::capabilities::request::wit_method(&method),
                &path_args,
                &path_kwargs,
            )
            .await?
            .expect("the component exports dispatch");
        if store.data().ctx.pubsub.is_parked() {
            // The guest returned at a parked wait: the next run answers.
            store.data_mut().ctx.table.delete(req)?;
            return Ok(());
        }
        if handled.is_ok() {
            // prepare, the verb, finish and on-finish ran in the guest.
            let response = response(store);
            if !response.is_finished() {
                let _ = response.finish().await;
            }
            store.data_mut().ctx.table.delete(req)?;
            return Ok(());
        }
        handled
    } else {
        let handler = instance.handler(store)?;
        handler.call_initialize(&mut *store, settings).await?;
        match handler.call_prepare(&mut *store, borrow()).await? {
            Err(e) => Err(e),
            Ok(()) if response(store).is_finished() => Ok(()),
            Ok(()) => {
                let call = match method {
                    Method::GET => handler.call_get(&mut *store, borrow()).await,
                    Method::HEAD => handler.call_head(&mut *store, borrow()).await,
                    Method::POST => handler.call_post(&mut *store, borrow()).await,
                    Method::PUT => handler.call_put(&mut *store, borrow()).await,
                    Method::DELETE => handler.call_delete(&mut *store, borrow()).await,
                    Method::PATCH => handler.call_patch(&mut *store, borrow()).await,
                    _ => handler.call_options(&mut *store, borrow()).await,
                };
                call?
            }
        }
    };

    if store.data().ctx.pubsub.is_parked() {
        store.data_mut().ctx.table.delete(req)?;
        return Ok(());
    }
    let handler = instance.handler(store)?;
    if let Err(error) = outcome {
        send_error(store, handler, req.rep(), error).await?;
    }
    let response = response(store);
    if !response.is_finished() {
        let _ = response.finish().await;
    }
    handler.call_on_finish(&mut *store, borrow()).await?;
    // The guest only ever borrowed the request: nothing of it stays behind
    // in an instance that serves again.
    store.data_mut().ctx.table.delete(req)?;
    Ok(())
}

/// The error a request gets before `prepare` runs, if any: a malformed body
/// (400), a method Tornado does not support (405), an unsafe request refused
/// by the XSRF or cross-origin check (403, `why`).
fn refusal(
    body_error: Option<crate::capabilities::request::BodyError>,
    method: &Method,
    why: Option<String>,
) -> Option<HttpError> {
    let error = |status, log_message| HttpError {
        status,
        reason: None,
        log_message,
    };
    if let Some(e) = body_error {
        Some(error(400, Some(e.to_string())))
    } else if !is_supported(method) {
        Some(error(405, None))
    } else {
        // Tornado's `_cross_origin_protection`: before prepare, the page from
        // the handler's own `write_error`.
        why.map(|why| error(403, Some(why)))
    }
}

/// Tornado's `send_error`: reset the response, set the status, let the guest
/// write the page. Once headers are out, all that is left is to finish.
async fn send_error(
    store: &mut Store<HostState>,
    handler: &RequestHandler,
    req: u32,
    error: HttpError,
) -> wasmtime::Result<()> {
    if let Some(message) = &error.log_message {
        let request = store
            .data()
            .ctx
            .table
            .get(&Resource::<RequestData>::new_borrow(req))?;
        tracing::warn!(target: "waterspout::access", "{} {} {} ({}): {}", error.status, request.method,
            sanitize(request.target()), request.remote_ip, sanitize(message));
    }
    let response = response(store);
    if response.headers_sent() {
        tracing::error!("cannot send error response after headers written");
        if !response.is_finished() {
            let _ = response.finish().await;
        }
        return Ok(());
    }
    response.clear().ok();
    let (status, reason) = match response.set_status(error.status, error.reason.clone()) {
        Ok(()) => (error.status, error.reason),
        Err(_) => {
            tracing::error!(
                status = error.status,
                "handler returned an invalid HTTP status; sending 500"
            );
            response.set_status(500, None).ok();
            (500, None)
        }
    };
    let reason = reason.unwrap_or_else(|| {
        StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Unknown")
            .to_owned()
    });
    handler
        .call_write_error(&mut *store, Resource::new_borrow(req), status, &reason)
        .await
}

fn response(store: &mut Store<HostState>) -> &mut ResponseState {
    store
        .data_mut()
        .ctx
        .response
        .get()
        .expect("http instance has a response")
}

/// Why an unsafe request (not GET, HEAD or OPTIONS) is refused before the
/// guest's `prepare`: a missing or wrong XSRF token (`xsrf_cookies`), or a
/// cross-origin request (`cross_origin_protection`). `None` lets it through.
fn unsafe_request_refused(web: &Web, data: &RequestData) -> Option<String> {
    if !web.checks_unsafe_requests() || matches!(data.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let header = |name: &str| data.headers.get(name).and_then(|v| v.to_str().ok());
    let cookie = data.cookie(&web.xsrf.cookie_name);
    let host = data.host();
    // Tornado's `get_argument("_xsrf")`: the last value.
    let argument = data.argument_values("_xsrf").pop().filter(|v| !v.is_empty());
    let presented = argument
        .as_deref()
        .or_else(|| header("x-xsrftoken").filter(|v| !v.is_empty()))
        .or_else(|| header("x-csrftoken"));
    web.check_unsafe_request(&UnsafeRequest {
        xsrf_cookie: cookie.as_deref(),
        xsrf_presented: presented,
        sec_fetch_site: header("sec-fetch-site"),
        origin: header("origin"),
        host: Some(&host),
    })
    .err()
}

/// Tornado's `SUPPORTED_METHODS`.
fn is_supported(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::PATCH
            | Method::OPTIONS
    )
}
