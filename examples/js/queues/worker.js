// A background worker (Tornado's `async def worker(): async for item in q`):
// each job from queue `jobs` comes back on queue `results` as `JOB@js#N`.
import { Queue, Worker } from "waterspout";
const jobs = new Queue("jobs");
const results = new Queue("results");
export class Echo extends Worker {
  async run() {
    for await (const job of jobs) {
      try {
        await results.put(`${job}@js#${this.index}`);
      } finally {
        jobs.taskDone();
      }
    }
  }
}
