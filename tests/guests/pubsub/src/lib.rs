//! Pub/sub and groups from an HTTP handler, for the integration tests:
//!
//! - `POST /publish?topic=T&data=D` → the cursor
//! - `GET /wait?topic=T&after=N&timeout_ms=M` → `{"messages": [[cursor, data]…]}`
//! - `GET /latest?topic=T` → the newest cursor
//! - `POST /broadcast?group=G&data=D` → how many members it reached
//!
//! A pub/sub error answers 403 (denied) or 400 (invalid) with its text. When
//! the client hangs up during a wait, `on_connection_close` publishes
//! `closed:<topic>` on topic `closed`, so a test can see that it ran.

use std::time::Duration;

use waterspout_sdk::groups::{self, GroupError};
use waterspout_sdk::prelude::*;
use waterspout_sdk::pubsub::{self, PubsubError};

#[derive(Default)]
struct Pubsub {
    waiting_on: Option<String>,
}

fn pubsub_error(error: PubsubError) -> HttpError {
    match error {
        PubsubError::Denied(m) => HttpError::new(403).with_reason(m),
        PubsubError::Invalid(m) => HttpError::new(400).with_reason(m),
        other => HttpError::from(other),
    }
}

fn group_error(error: GroupError) -> HttpError {
    match error {
        GroupError::Denied(m) => HttpError::new(403).with_reason(m),
        other => HttpError::new(400).with_reason(other.to_string()),
    }
}

impl RequestHandler for Pubsub {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        let topic = ctx.get_argument("topic")?;
        let path = ctx.request().path();
        match path.rsplit('/').next().unwrap_or_default() {
            "wait" => {
                let after = ctx.get_argument_or("after", "0").parse().unwrap_or(0);
                let timeout = ctx
                    .get_argument_or("timeout_ms", "10000")
                    .parse()
                    .unwrap_or(10_000);
                self.waiting_on = Some(topic.clone());
                let messages =
                    pubsub::wait(&topic, after, Duration::from_millis(timeout)).map_err(pubsub_error)?;
                let list: Vec<(u64, String)> = messages.into_iter().map(|m| (m.cursor, m.data)).collect();
                ctx.write_json(&serde_json::json!({ "messages": list }));
            }
            "latest" => {
                let latest = pubsub::latest(&topic).map_err(pubsub_error)?;
                ctx.write(latest.to_string());
            }
            _ => return Err(HttpError::new(404)),
        }
        Ok(())
    }

    fn post(&mut self, ctx: &mut Context) -> Result<()> {
        let data = ctx.get_argument("data")?;
        let path = ctx.request().path();
        match path.rsplit('/').next().unwrap_or_default() {
            "publish" => {
                let topic = ctx.get_argument("topic")?;
                let cursor = pubsub::publish(&topic, &data).map_err(pubsub_error)?;
                ctx.write(cursor.to_string());
            }
            "broadcast" => {
                let group = ctx.get_argument("group")?;
                let reached = groups::broadcast(&group, data).map_err(group_error)?;
                ctx.write(reached.to_string());
            }
            _ => return Err(HttpError::new(404)),
        }
        Ok(())
    }

    fn on_connection_close(&mut self) {
        let topic = self.waiting_on.take().unwrap_or_default();
        let _ = pubsub::publish("closed", &format!("closed:{topic}"));
    }
}

export_handler!(Pubsub);
