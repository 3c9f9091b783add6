// A tour of the request and response API, one handler class per route (the
// same routes and answers as examples/requests; waterspout.toml lists them).
//
// Run it: `cargo run -p waterspout -- serve --build examples/js/requests`
// from the repository root, then try the routes with curl.
//
// One component holds every class, as one Tornado Application holds several
// handlers: each route's `class = "..."` picks one. They share `ApiHandler`:
// JSON error pages, `X-Prepared: 1` on every response, a log line at the end.

import { RequestHandler, HTTPError, log } from "waterspout";

/** The most chunks `/stream` sends, so a request cannot ask for an endless one. */
const MAX_CHUNKS = 1000;

/** The base of this app's handlers (not exported: no route serves it alone). */
class ApiHandler extends RequestHandler {
  /** Runs before every verb: marks the response so a client can see it ran. */
  prepare() {
    this.setHeader("X-Prepared", 1);
  }

  /** This app's error pages are JSON: `{"status": 418, "reason": "..."}`. */
  writeError(statusCode, { reason }) {
    this.write({ status: statusCode, reason });
  }

  /** Runs after the response is sent: a line in the host's log. */
  onFinish() {
    log.info(`${this.request.method} ${this.request.path} finished with ${this.getStatus()}`);
  }
}

/** GET /greet?name=Ann → "Hello, Ann"; without `name`, a 400. */
export class GreetHandler extends ApiHandler {
  get() {
    const name = this.getArgument("name");
    this.write(`Hello, ${name}`);
  }
}

/** POST /json with a JSON object → the same object plus `"echoed": true`. */
export class JsonHandler extends ApiHandler {
  post() {
    let object;
    try {
      object = JSON.parse(this.request.bodyText);
    } catch (error) {
      throw new HTTPError(400, `invalid JSON: ${error.message}`, { reason: "Body Is Not JSON" });
    }
    if (object === null || typeof object !== "object" || Array.isArray(object)) {
      throw new HTTPError(400, "the body is not a JSON object", { reason: "Body Is Not A JSON Object" });
    }
    object.echoed = true;
    this.write(object);
  }
}

/** GET /items/42 → "item 42" (a positional regex group). */
export class ItemHandler extends ApiHandler {
  get(id) {
    this.write(`item ${id}`);
  }
}

/** GET /users/ann → "user ann" (a named regex group: the verb gets `{name}`). */
export class UserHandler extends ApiHandler {
  get({ name }) {
    this.write(`user ${name}`);
  }
}

/** GET /old → 302 to /new. */
export class OldHandler extends ApiHandler {
  get() {
    this.redirect("/new");
  }
}

/** GET /new → "This is the new page". */
export class NewHandler extends ApiHandler {
  get() {
    this.write("This is the new page");
  }
}

/** GET /cookie/set?value=mint sets the cookie `flavor=mint`. */
export class SetFlavorHandler extends ApiHandler {
  get() {
    const value = this.getArgument("value");
    this.setCookie("flavor", value);
    this.write(`flavor set to ${value}`);
  }
}

/** GET /cookie/get → "flavor: mint", or "no flavor" without the cookie. */
export class GetFlavorHandler extends ApiHandler {
  get() {
    const flavor = this.getCookie("flavor");
    this.write(flavor === undefined ? "no flavor" : `flavor: ${flavor}`);
  }
}

/** GET /fail → 418 Teapot Refuses Coffee, with the JSON error page. */
export class FailHandler extends ApiHandler {
  get() {
    throw new HTTPError(418, "/fail always fails", { reason: "Teapot Refuses Coffee" });
  }
}

/** GET /stream?n=3 → "chunk 0\n", "chunk 1\n", "chunk 2\n", each flushed. */
export class StreamHandler extends ApiHandler {
  get() {
    const n = Number(this.getArgument("n", "3"));
    if (!Number.isInteger(n) || n < 0) {
      throw new HTTPError(400, undefined, { reason: "n must be a whole number" });
    }
    for (let i = 0; i < Math.min(n, MAX_CHUNKS); i++) {
      this.write(`chunk ${i}\n`);
      this.flush();
    }
  }
}

/**
 * POST /form (urlencoded or multipart) → its fields and files as JSON:
 * `{"fields": {"name": "Ann"}, "files": [{"field", "filename", "content_type", "size"}]}`.
 */
export class FormHandler extends ApiHandler {
  post() {
    const fields = {};
    for (const name of Object.keys(this.request.bodyArguments).sort()) {
      const values = this.getBodyArguments(name);
      fields[name] = values[values.length - 1];
    }
    const files = [];
    for (const [field, uploads] of Object.entries(this.request.files)) {
      for (const file of uploads) {
        files.push({ field, filename: file.filename, content_type: file.contentType, size: file.body.length });
      }
    }
    this.write({ fields, files });
  }
}
