//! Queue calls over HTTP, for the queue tests: `GET /put?q=NAME&item=X`,
//! `/get?q=NAME`, `/task_done?q=NAME`, `/join?q=NAME`, `/qsize?q=NAME`,
//! `/maxsize?q=NAME`, each with an optional `timeout` in ms (`0`: the
//! `_nowait` form; absent: wait). Answers `ok`, `item:ITEM`, `size:N` or
//! `error:KIND`.

use std::time::Duration;

use waterspout_sdk::prelude::*;

#[derive(Default)]
struct Queues;

fn kind(error: &QueueError) -> String {
    match error {
        QueueError::NotGranted(name) => format!("not-granted:{name}"),
        QueueError::Timeout => "timeout".into(),
        QueueError::Full => "full".into(),
        QueueError::Empty => "empty".into(),
        QueueError::TooManyTaskDone => "too-many-task-done".into(),
        QueueError::TooLarge(max) => format!("too-large:{max}"),
        QueueError::Stopping => "stopping".into(),
        QueueError::Json(e) => format!("json:{e}"),
    }
}

impl RequestHandler for Queues {
    fn get(&mut self, ctx: &mut Context) -> Result<()> {
        let q = Queue::new(ctx.get_argument("q")?);
        let timeout = ctx.get_argument_or("timeout", "");
        let timeout: Option<u64> = if timeout.is_empty() {
            None
        } else {
            Some(timeout.parse().map_err(|_| HttpError::new(400))?)
        };
        let path = ctx.request().path();
        let answer = match path.as_str() {
            "/put" => {
                let item = ctx.get_argument("item")?;
                let size: usize = ctx.get_argument_or("size", "0").parse().unwrap_or(0);
                let item = if size > 0 { "x".repeat(size) } else { item };
                match timeout {
                    None => q.put(item),
                    Some(0) => q.put_nowait(item),
                    Some(ms) => q.put_timeout(item, Duration::from_millis(ms)),
                }
                .map(|()| "ok".to_owned())
            }
            "/get" => match timeout {
                None => q.get(),
                Some(0) => q.get_nowait(),
                Some(ms) => q.get_timeout(Duration::from_millis(ms)),
            }
            .map(|item| format!("item:{}", String::from_utf8_lossy(&item))),
            "/task_done" => q.task_done().map(|()| "ok".to_owned()),
            "/join" => match timeout {
                None => q.join(),
                Some(ms) => q.join_timeout(Duration::from_millis(ms)),
            }
            .map(|()| "ok".to_owned()),
            "/qsize" => q.qsize().map(|n| format!("size:{n}")),
            "/maxsize" => q.maxsize().map(|n| format!("size:{n}")),
            _ => return Err(HttpError::new(404)),
        };
        ctx.write(answer.unwrap_or_else(|e| format!("error:{}", kind(&e))));
        Ok(())
    }
}

export_handler!(Queues);
