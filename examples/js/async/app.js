// Asynchronous handlers and errors, in JavaScript.
//
// Any handler method may be `async`: the SDK returns its promise to
// componentize-js, which runs the component's event loop (promise jobs,
// timers, fetch) until it settles, inside the host's call. Exceptions never
// reach the client: an `HTTPError` picks the status and reason, anything else
// is a 500 whose stack goes to the host's log.
//
// Run it: `cargo run -p waterspout -- serve --build examples/js/async`, then
//   curl 'http://127.0.0.1:8888/sleep?ms=20'
//   curl 'http://127.0.0.1:8888/fetch?url=http://example.com/'   (denied: no allowlist)

import { RequestHandler, HTTPError } from "waterspout";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** GET /sleep?ms=20 → {"slept": 20, "path": "/sleep"} after awaiting a timer. */
export class SleepHandler extends RequestHandler {
  async get() {
    const ms = Number(this.getArgument("ms", "10"));
    const started = Date.now();
    await sleep(ms);
    const value = await Promise.resolve(ms);
    this.write({ slept: value, path: this.request.path, waited: Date.now() - started >= ms });
  }
}

/**
 * GET /fetch?url=URL → "fetched STATUS", or "error: ..." when the request
 * fails: outbound requests are denied unless the handler's
 * `allowed_outbound_hosts` lists the host.
 */
export class FetchHandler extends RequestHandler {
  async get() {
    const url = this.getArgument("url");
    try {
      const response = await fetch(url);
      this.write(`fetched ${response.status}`);
    } catch (error) {
      this.write(`error: ${error.message}`);
    }
  }
}

/** GET and POST /conflict → 409 "Already There" (thrown after an await). */
export class ConflictHandler extends RequestHandler {
  async get() {
    await sleep(1);
    throw new HTTPError(409, "the thing is already there", { reason: "Already There" });
  }
  post() {
    throw new HTTPError(409, "the thing is already there", { reason: "Already There" });
  }
}

/** GET /boom and POST /boom → 500; the message and stack only in the log. */
export class BoomHandler extends RequestHandler {
  get() {
    throw new Error("secret detail: the database password is hunter2");
  }
  async post() {
    await null;
    throw new Error("secret detail from an async method");
  }
}

/** GET /maintenance → 503 "Down For Maintenance" via sendError; later writes are dropped. */
export class MaintenanceHandler extends RequestHandler {
  get() {
    this.write("this is dropped");
    this.sendError(503, { reason: "Down For Maintenance" });
    this.write("and so is this");
  }
}
