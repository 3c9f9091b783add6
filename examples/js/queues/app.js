// Queue calls over HTTP (Tornado's queues in a handler): the protocol the
// queue tests speak to every language. GET /put?q=NAME&item=X, /get?q=NAME,
// /task_done?q=NAME, /join?q=NAME, /qsize?q=NAME, each with an optional
// `timeout` in ms (0: the nowait form). Answers `ok`, `item:X`, `size:N` or
// `error:KIND`.
import {
  RequestHandler,
  HTTPError,
  Queue,
  QueueEmpty,
  QueueFull,
  QueueTimeout,
  QueueNotGranted,
} from "waterspout";

function kind(error) {
  if (error instanceof QueueNotGranted) return "not-granted";
  if (error instanceof QueueFull) return "full";
  if (error instanceof QueueEmpty) return "empty";
  if (error instanceof QueueTimeout) return "timeout";
  if (String(error.message).includes("too many")) return "too-many-task-done";
  throw error;
}

export class QueueHandler extends RequestHandler {
  async get(op) {
    const q = new Queue(this.getArgument("q"));
    const raw = this.getArgument("timeout", null);
    const timeout = raw === null ? undefined : Number(raw) / 1000;
    let answer;
    try {
      if (op === "put") {
        const item = this.getArgument("item");
        if (timeout === 0) q.putNowait(item);
        else await q.put(item, { timeout });
        answer = "ok";
      } else if (op === "get") {
        const item = timeout === 0 ? q.getNowait() : await q.get({ timeout });
        answer = `item:${item}`;
      } else if (op === "task_done") {
        q.taskDone();
        answer = "ok";
      } else if (op === "join") {
        await q.join({ timeout });
        answer = "ok";
      } else if (op === "qsize") {
        answer = `size:${q.qsize()}`;
      } else {
        throw new HTTPError(404);
      }
    } catch (error) {
      if (error instanceof HTTPError) throw error;
      answer = `error:${kind(error)}`;
    }
    this.write(answer);
  }
}
