// The echo worker's code, shared by queue-worker and queue-worker-b.

use waterspout_sdk::prelude::*;

const NAME: &str = env!("CARGO_PKG_NAME");

#[derive(Default)]
struct Echo;

impl Worker for Echo {
    fn run(&mut self, settings: &Settings) -> std::result::Result<(), String> {
        let index = settings.get("waterspout:worker-index").unwrap_or("?").to_owned();
        let jobs = Queue::new("jobs");
        let results = Queue::new("results");
        waterspout_sdk::log::info!("worker {NAME}#{index} started");
        for job in jobs.items() {
            let job = String::from_utf8(job.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            jobs.task_done().map_err(|e| e.to_string())?;
            if let Some(text) = job.strip_prefix("echo:") {
                results.put(format!("{text}@{NAME}#{index}")).map_err(|e| e.to_string())?;
            } else if job == "trap" {
                panic!("job asked for a trap");
            } else if job == "spin" {
                #[allow(clippy::empty_loop)]
                loop {}
            } else if let Some(ms) = job.strip_prefix("slow:") {
                let ms: u128 = ms.parse().map_err(|_| "bad slow job".to_owned())?;
                let start = std::time::Instant::now();
                while start.elapsed().as_millis() < ms {
                    std::hint::black_box(0);
                }
                results.put(format!("slow@{NAME}")).map_err(|e| e.to_string())?;
            } else if job == "fail" {
                return Err("job asked to fail".into());
            }
        }
        waterspout_sdk::log::info!("worker {NAME}#{index} stopping");
        Ok(())
    }
}

export_worker!(Echo);
