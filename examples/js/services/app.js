// The host services from JavaScript: `kv`, `sleep` (the host's timer) and
// Tornado's `AsyncHTTPClient` (`fetchAll` for several fetches at once).
//
// Run it: `cargo run -p waterspout -- serve --build examples/js/services`, then
//   curl 'http://127.0.0.1:8888/kv?op=incr&key=visits'

import { RequestHandler, kv, KvError, sleep, AsyncHTTPClient, HTTPClientError } from "waterspout";

/** GET /kv?op=set&key=k&value=v (op: get, set, incr, cas, delete, list). */
export class KvHandler extends RequestHandler {
  get() {
    const op = this.getArgument("op");
    const key = this.getArgument("key", "");
    const ns = kv.namespace(this.getArgument("ns", ""));
    try {
      switch (op) {
        case "get": this.write(ns.getString(key) ?? "NONE"); break;
        case "set": ns.set(key, this.getArgument("value")); this.write("OK"); break;
        case "incr": this.write(String(ns.increment(key, Number(this.getArgument("delta", "1"))))); break;
        case "cas": this.write(ns.compareAndSwap(key, this.getArgument("expected", null), this.getArgument("value")) ? "won" : "lost"); break;
        case "delete": this.write(String(ns.delete(key))); break;
        case "list": this.write(ns.listKeys(this.getArgument("prefix", "")).join(",")); break;
        default: this.write("unknown op");
      }
    } catch (error) {
      if (!(error instanceof KvError)) throw error;
      this.write(`ERR ${error.kind}: ${error.message}`);
    }
  }
}

/** GET /sleep?s=0.2 → "slept 0.2" after the host's timer. */
export class SleepHandler extends RequestHandler {
  async get() {
    const seconds = Number(this.getArgument("s", "0.1"));
    await sleep(seconds);
    this.write(`slept ${seconds}`);
  }
}

/** GET /fetch?url=U → {code, body, effectiveUrl}, or {error, code, kind}. */
export class FetchHandler extends RequestHandler {
  async get() {
    try {
      const response = await new AsyncHTTPClient().fetch(this.getArgument("url"));
      this.write({ code: response.code, body: response.text, effectiveUrl: response.effectiveUrl });
    } catch (error) {
      if (!(error instanceof HTTPClientError)) throw error;
      this.write({ error: error.message, code: error.code, kind: error.kind ?? null });
    }
  }
}

/** GET /fetch-all?url=A&url=B → ["body A", "body B"]. */
export class FetchAllHandler extends RequestHandler {
  async get() {
    const responses = await new AsyncHTTPClient().fetchAll(this.getArguments("url"));
    this.write(JSON.stringify(responses.map((r) => r.text)));
  }
}
