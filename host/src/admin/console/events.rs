//! `GET /console/events`: server-sent events for the live page. Every
//! second a `stats` event (every handler: what `/handlers` says, its
//! limits, requests per second by status class, p50/p99 latency over that
//! second, traps, timeouts, live instances); between them a `log` event per
//! guest log line (the recent ones first). A reader too slow for the log
//! gets a `skipped` event saying how many lines it missed.
//!
//! The stream ends when the session signs out or expires (`signed-out`
//! event), when the client goes away, or when the admin listener stops.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Body, Console, Sessions};
use crate::app::App;
use crate::deploy::Source;
use crate::manifest::HandlerSpec;
use crate::metrics::{HandlerTotals, latency_quantile};

/// Who watches: a console session (the stream ends with it) or the token.
pub enum Watcher {
    Session([u8; 32]),
    Token,
}

/// How often the charts get a point.
const TICK: Duration = Duration::from_secs(1);

/// Starts the stream for `watcher`.
pub fn stream(app: Arc<App>, console: &Console, watcher: Watcher) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(run(
        app,
        console.sessions.clone(),
        watcher,
        console.stop.clone(),
        tx,
    ));
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    super::secure_headers(headers);
    response
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

async fn run(
    app: Arc<App>,
    sessions: Arc<Sessions>,
    watcher: Watcher,
    stop: CancellationToken,
    tx: mpsc::Sender<Bytes>,
) {
    let (recent, mut logs) = crate::logtail::subscribe();
    let mut names = handler_names(&app);
    if tx.send(Bytes::from_static(b"retry: 2000\n\n")).await.is_err() {
        return;
    }
    for line in recent.iter().filter(|l| names.contains(&*l.handler)) {
        if tx.send(event("log", &json!(&**line))).await.is_err() {
            return;
        }
    }
    let mut previous = (Instant::now(), crate::metrics::snapshot());
    if tx
        .send(event("stats", &stats(&app, None, &previous.1)))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tx.closed() => return,
            _ = tick.tick() => {
                if let Watcher::Session(id) = &watcher
                    && !sessions.is_live(id)
                {
                    let _ = tx.send(event("signed-out", &json!({}))).await;
                    return;
                }
                names = handler_names(&app);
                let now = (Instant::now(), crate::metrics::snapshot());
                let seconds = now.0.duration_since(previous.0).as_secs_f64();
                let data = stats(&app, Some((&previous.1, seconds)), &now.1);
                previous = now;
                event("stats", &data)
            }
            line = logs.recv() => match line {
                Ok(line) if names.contains(&*line.handler) => event("log", &json!(&*line)),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => event("skipped", &json!({ "lines": n })),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if tx.send(message).await.is_err() {
            return;
        }
    }
}

fn handler_names(app: &App) -> HashSet<String> {
    app.deployer().registry().names().into_iter().collect()
}

/// The `stats` event: every handler of this app, with rates over the last
/// `seconds` when there is a `previous` snapshot.
fn stats(
    app: &App,
    previous: Option<(&HashMap<String, HandlerTotals>, f64)>,
    now: &HashMap<String, HandlerTotals>,
) -> Value {
    let deployer = app.deployer();
    let empty = HandlerTotals::default();
    let handlers: Vec<Value> = deployer
        .handler_infos()
        .into_iter()
        .map(|info| {
            let totals = now.get(&info.name).unwrap_or(&empty);
            let spec = deployer.manifest().handler(&info.name);
            let language = (info.source == Some(Source::Manifest))
                .then(|| spec.and_then(language))
                .flatten();
            let limits = deployer.registry().get(&info.name).map(|slot| {
                let l = &slot.limits;
                json!({
                    "timeout_ms": l.timeout_ms,
                    "memory_limit_mb": l.memory_limit_mb,
                    "max_instances": l.max_instances,
                    "reuse": l.reuse,
                    "concurrency": l.concurrency,
                })
            });
            let mut value = serde_json::to_value(&info).unwrap_or_else(|_| json!({}));
            let live = json!({
                "language": language,
                "limits": limits,
                "requests": totals.requests(),
                "by_class": totals.by_class,
                "traps": totals.traps,
                "timeouts": totals.timeouts,
                "instances": totals.instances.max(0),
                "window": previous.map(|(before, seconds)| window(before.get(&info.name).unwrap_or(&empty), totals, seconds)),
            });
            if let (Value::Object(map), Value::Object(extra)) = (&mut value, live) {
                map.extend(extra);
            }
            value
        })
        .collect();
    json!({ "time_ms": crate::logtail::now_ms(), "handlers": handlers })
}

/// Rates and latency quantiles between two snapshots of one handler.
fn window(before: &HandlerTotals, now: &HandlerTotals, seconds: f64) -> Value {
    let seconds = seconds.max(1e-3);
    let rate = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / seconds;
    let by_class: Vec<f64> = (0..5)
        .map(|i| rate(before.by_class[i], now.by_class[i]))
        .collect();
    let latency: Vec<u64> = now
        .latency
        .iter()
        .enumerate()
        .map(|(i, n)| n.saturating_sub(before.latency.get(i).copied().unwrap_or(0)))
        .collect();
    let ms = |q| latency_quantile(&latency, q).map(|s| (s * 1e6).round() / 1e3);
    json!({
        "seconds": seconds,
        "requests_per_s": by_class.iter().sum::<f64>(),
        "by_class_per_s": by_class,
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
        "traps": now.traps.saturating_sub(before.traps),
        "timeouts": now.timeouts.saturating_sub(before.timeouts),
    })
}

/// The guest's language, as far as the manifest's build line tells.
fn language(spec: &HandlerSpec) -> Option<&'static str> {
    let build = spec.build.as_deref().unwrap_or("");
    let wasm = spec.wasm.to_string_lossy();
    let says = |needle: &str| build.contains(needle) || wasm.contains(needle);
    if says("componentize-py") || says("python/build") || says("/python/") {
        Some("Python")
    } else if says("componentize-js") || says("jco") || says("js/build") || says("/js/") {
        Some("JavaScript")
    } else if says("c/build") || says("clang") || says("/c/") {
        Some("C")
    } else if says("cargo") || says("wasm32-wasip2/") {
        Some("Rust")
    } else {
        None
    }
}
