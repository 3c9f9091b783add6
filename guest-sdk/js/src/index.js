// Waterspout's JavaScript SDK: Tornado's `RequestHandler` and
// `WebSocketHandler`, with Tornado's names in JavaScript casing.
//
//     import { RequestHandler } from "waterspout";
//
//     export class MainHandler extends RequestHandler {
//       get() {
//         this.write("Hello, world");
//       }
//     }
//
// Build it with `guest-sdk/js/build app.js app.wasm` (see README.md). The
// build bundles this module with the app and exports the WIT world's
// functions from `./http.js` (world `handler`) or `./ws.js` (world
// `websocket`); those set `host` below, so this module imports only what
// both worlds provide (`log`).

import { log as hostLog } from "waterspout:handler/log@0.1.0";
import { reasonPhrase } from "./status.js";
import { SignedCookies, WebHelpers, authenticated, hooks as webHooks, mixin } from "./web.js";

export { reasonPhrase, authenticated };
export { pubsub, groups, PubsubError, StreamClosedError } from "./pubsub.js";
export { Queue, QueueEmpty, QueueFull, QueueTimeout, QueueNotGranted, QueueStopping, Worker } from "./queues.js";
// The host services: kv, the host's timer, Tornado's AsyncHTTPClient.
export { kv, KvError, Namespace } from "./kv.js";
export { sleep } from "./timers.js";
export { AsyncHTTPClient, FetchError, HTTPClientError, HTTPResponse } from "./httpclient.js";

/** The world-specific imports, set by `http.js` or `ws.js`. @internal */
export const host = { response: null, connection: null };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The host's log, tagged with the handler and the request id:
 * `log.info("message")`, `log.warn(...)`, `log.error(...)`, `log.debug`, `log.trace`.
 */
export const log = {
  trace: (message) => hostLog("trace", String(message)),
  debug: (message) => hostLog("debug", String(message)),
  info: (message) => hostLog("info", String(message)),
  warn: (message) => hostLog("warn", String(message)),
  error: (message) => hostLog("error", String(message)),
};

/**
 * Tornado's `HTTPError`: `throw new HTTPError(404)` sends the error page.
 * `logMessage` goes to the host's log only; `reason` replaces the standard
 * phrase in the status line and is passed to `writeError`.
 *
 *     throw new HTTPError(403, "user %s is not an admin", { reason: "Admins Only" });
 */
export class HTTPError extends Error {
  constructor(statusCode = 500, logMessage = undefined, options = {}) {
    const status = Number(statusCode);
    super(logMessage ?? `HTTP ${status}`);
    this.name = "HTTPError";
    this.statusCode = status;
    this.logMessage = logMessage ?? undefined;
    this.reason = options?.reason ?? undefined;
  }

  /** The reason a client sees: the custom one, else the standard phrase. */
  get displayReason() {
    return this.reason ?? reasonPhrase(this.statusCode);
  }
}

/** Tornado's `MissingArgumentError`: a 400 "Missing argument NAME". */
export class MissingArgumentError extends HTTPError {
  constructor(argName) {
    super(400, `Missing argument ${argName}`, { reason: `Missing argument ${argName}` });
    this.name = "MissingArgumentError";
    this.argName = argName;
  }
}

/** Tornado's `WebSocketClosedError`: writing to a closed connection. */
export class WebSocketClosedError extends Error {
  constructor(message = "the WebSocket is closed") {
    super(message);
    this.name = "WebSocketClosedError";
  }
}

/** Tornado's default error page. */
export function errorPage(status, reason) {
  return `<html><title>${status}: ${reason}</title><body>${status}: ${reason}</body></html>`;
}

// ---------------------------------------------------------------------------
// The request

/**
 * Request headers, as Tornado's `HTTPHeaders`: `get` is case-insensitive.
 */
export class HTTPHeaders {
  constructor(pairs) {
    /** @type {Array<[string, string]>} names in lower case, in order */
    this._pairs = pairs.map(([name, value]) => [name.toLowerCase(), value]);
  }
  /** The first value of `name`, or `defaultValue` (case-insensitive). */
  get(name, defaultValue = undefined) {
    const key = String(name).toLowerCase();
    const pair = this._pairs.find(([n]) => n === key);
    return pair ? pair[1] : defaultValue;
  }
  /** Every value of `name` (Tornado's `get_list`). */
  getList(name) {
    const key = String(name).toLowerCase();
    return this._pairs.filter(([n]) => n === key).map(([, v]) => v);
  }
  has(name) {
    return this.get(name) !== undefined;
  }
  keys() {
    return [...new Set(this._pairs.map(([n]) => n))];
  }
  /** Every `[name, value]` pair, in order (Tornado's `get_all`). */
  getAll() {
    return this._pairs.slice();
  }
  [Symbol.iterator]() {
    return this._pairs[Symbol.iterator]();
  }
}

/**
 * Tornado's `HTTPServerRequest`, read from the host. Values are fetched on
 * first use and kept for the rest of the call.
 */
export class Request {
  constructor(raw) {
    this._raw = raw;
    this._cache = new Map();
  }
  _get(key, fetch) {
    if (!this._cache.has(key)) {
      if (!this._raw) throw new Error(`request.${key} is not available here`);
      this._cache.set(key, fetch(this._raw));
    }
    return this._cache.get(key);
  }
  /** The method as sent: "GET", "POST", "PROPFIND". */
  get method() {
    return this._get("method", (r) => r.methodName());
  }
  /** Path and query, as sent. */
  get uri() {
    return this._get("uri", (r) => r.uri());
  }
  get path() {
    return this._get("path", (r) => r.path());
  }
  /** The query string without `?`. */
  get query() {
    return this._get("query", (r) => r.query());
  }
  /** "HTTP/1.1" or "HTTP/2.0". */
  get version() {
    return this._get("version", (r) => r.version());
  }
  get host() {
    return this._get("host", (r) => r.host());
  }
  get remoteIp() {
    return this._get("remoteIp", (r) => r.remoteIp());
  }
  /** "http" or "https". */
  get protocol() {
    return this._get("protocol", (r) => r.protocol());
  }
  /** Tornado's `full_url()`: protocol, host and uri. */
  fullUrl() {
    return `${this.protocol}://${this.host}${this.uri}`;
  }
  /** The headers, with a case-insensitive `get`. */
  get headers() {
    return this._get("headers", (r) => new HTTPHeaders(r.headers()));
  }
  /** The raw body (a `Uint8Array`). */
  get body() {
    return this._get("body", (r) => r.body());
  }
  /** The body decoded as UTF-8. */
  get bodyText() {
    return this._get("bodyText", () => decoder.decode(this.body));
  }
  /** `{name: [values]}` of query and body arguments (query values first). */
  get arguments() {
    return this._get("arguments", (r) => argumentMap(r, (name) => r.arguments(name)));
  }
  get queryArguments() {
    return this._get("queryArguments", (r) => argumentMap(r, (name) => r.queryArguments(name)));
  }
  get bodyArguments() {
    return this._get("bodyArguments", (r) => argumentMap(r, (name) => r.bodyArguments(name)));
  }
  /** `{field: [{filename, contentType, body}]}`, as Tornado's `request.files`. */
  get files() {
    return this._get("files", (r) => {
      const files = {};
      for (const file of r.files()) {
        (files[file.field] ??= []).push({
          filename: file.filename,
          contentType: file.contentType,
          body: file.body,
        });
      }
      return files;
    });
  }
  /** `{name: value}` of the request's cookies. */
  get cookies() {
    return this._get("cookies", (r) => Object.fromEntries(r.cookies()));
  }
  /** The route regex's positional groups, url-decoded. */
  get pathArgs() {
    return this._get("pathArgs", (r) => r.pathArgs());
  }
  /** The route regex's named groups, url-decoded, as `{name: value}`. */
  get pathKwargs() {
    return this._get("pathKwargs", (r) => Object.fromEntries(r.pathKwargs()));
  }
  /** Reads everything a WebSocket handler keeps after `open` returns. @internal */
  _detach() {
    for (const key of ["method", "uri", "path", "query", "version", "host", "remoteIp",
      "protocol", "headers", "cookies", "arguments", "queryArguments", "pathArgs", "pathKwargs"]) {
      void this[key];
    }
    this._raw = null;
  }
}

function argumentMap(raw, valuesOf) {
  const map = {};
  for (const name of raw.argumentNames()) {
    const values = valuesOf(name);
    if (values.length > 0) map[name] = values;
  }
  return map;
}

// Tornado's cleaning: control characters become spaces, then strip.
function cleanArgument(value, strip) {
  // eslint-disable-next-line no-control-regex
  const replaced = value.replace(/[\x00-\x08\x0e-\x1f]/g, " ");
  return strip ? replaced.trim() : replaced;
}

const ARG_DEFAULT = Symbol("no default");

function lastArgument(values, name, defaultValue, strip) {
  if (values.length === 0) {
    if (defaultValue === ARG_DEFAULT) throw new MissingArgumentError(name);
    return defaultValue;
  }
  return cleanArgument(values[values.length - 1], strip);
}

function settingsObject(pairs) {
  return Object.fromEntries(pairs);
}

// ---------------------------------------------------------------------------
// RequestHandler

function toBytes(chunk) {
  if (typeof chunk === "string") return encoder.encode(chunk);
  if (chunk instanceof Uint8Array) return chunk;
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return null;
}

/** JSON as Tornado's `json_encode`: `</` escaped so it is safe inside HTML. */
export function jsonEncode(value) {
  return JSON.stringify(value).replace(/<\//g, "<\\/");
}

function isPlainObject(value) {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// The host's response functions return nothing on success and throw a
// `ComponentError` (whose `payload` is the WIT error string) on failure.
function hostCall(fn, what) {
  try {
    return fn();
  } catch (error) {
    const detail = error?.payload ?? error?.message ?? error;
    throw new Error(`${what}: ${detail}`);
  }
}

/**
 * Tornado's `RequestHandler`. Subclass it, export the class from your app,
 * and implement the verbs the route serves; each defaults to 405.
 *
 * One instance serves one request: `initialize(settings)`, `prepare()`, the
 * verb, then `onFinish()`. Any method may be `async`.
 */
export class RequestHandler {
  constructor() {
    /** The route's settings (`[route.settings]`), as `{name: value}`. */
    this.settings = {};
    /** @type {Request} the current request */
    this.request = new Request(null);
    this._pendingError = null;
    this._writingError = false;
  }

  /** Receives the route's settings (Tornado's `initialize(**kwargs)`). */
  // eslint-disable-next-line no-unused-vars
  initialize(settings) {}

  /** Runs before the verb; finishing the response here skips the verb. */
  prepare() {}

  get() {
    throw new HTTPError(405);
  }
  head() {
    throw new HTTPError(405);
  }
  post() {
    throw new HTTPError(405);
  }
  put() {
    throw new HTTPError(405);
  }
  delete() {
    throw new HTTPError(405);
  }
  patch() {
    throw new HTTPError(405);
  }
  options() {
    throw new HTTPError(405);
  }

  /**
   * Writes the error page; the response is already cleared and its status
   * set. `info.reason` is the reason phrase; `info.error` the exception, when
   * one caused the page. The default writes Tornado's HTML page.
   */
  writeError(statusCode, info = {}) {
    this.write(errorPage(statusCode, info.reason ?? reasonPhrase(statusCode)));
  }

  /** Runs after the response is sent (cleanup, logging). */
  onFinish() {}

  /**
   * Runs when the client hung up while this handler waited on the host
   * (`pubsub.wait` threw `StreamClosedError`), after the verb returned;
   * nothing more reaches the client (Tornado's `on_connection_close`).
   */
  onConnectionClose() {}

  // --- input -------------------------------------------------------------

  /** The route's positional groups (what the verb receives). */
  get pathArgs() {
    return this.request.pathArgs;
  }
  /** The route's named groups, `{name: value}`. */
  get pathKwargs() {
    return this.request.pathKwargs;
  }

  /**
   * The last value of a query or body argument, stripped. Without a default,
   * a missing argument is a 400 `Missing argument NAME`.
   */
  getArgument(name, defaultValue = ARG_DEFAULT, strip = true) {
    return lastArgument(this.request._raw.arguments(name), name, defaultValue, strip);
  }
  /** Every value of an argument, query values first. */
  getArguments(name, strip = true) {
    return this.request._raw.arguments(name).map((v) => cleanArgument(v, strip));
  }
  getQueryArgument(name, defaultValue = ARG_DEFAULT, strip = true) {
    return lastArgument(this.request._raw.queryArguments(name), name, defaultValue, strip);
  }
  getQueryArguments(name, strip = true) {
    return this.request._raw.queryArguments(name).map((v) => cleanArgument(v, strip));
  }
  getBodyArgument(name, defaultValue = ARG_DEFAULT, strip = true) {
    return lastArgument(this.request._raw.bodyArguments(name), name, defaultValue, strip);
  }
  getBodyArguments(name, strip = true) {
    return this.request._raw.bodyArguments(name).map((v) => cleanArgument(v, strip));
  }
  /** A request cookie's value, or `defaultValue`. */
  getCookie(name, defaultValue = undefined) {
    return this.request._raw.cookie(name) ?? defaultValue;
  }

  // --- output ------------------------------------------------------------

  /** Sets the status; `reason` replaces the standard phrase. */
  setStatus(statusCode, reason = undefined) {
    hostCall(() => host.response.setStatus(statusCode, reason ?? undefined), `setStatus(${statusCode})`);
  }
  getStatus() {
    return host.response.getStatus();
  }
  /** Replaces a response header. */
  setHeader(name, value) {
    hostCall(() => host.response.setHeader(String(name), String(value)), `setHeader(${name})`);
  }
  /** Adds a value to a (repeatable) response header. */
  addHeader(name, value) {
    hostCall(() => host.response.addHeader(String(name), String(value)), `addHeader(${name})`);
  }
  clearHeader(name) {
    host.response.clearHeader(String(name));
  }
  /** Resets the status, headers and body written so far. */
  clear() {
    try {
      host.response.clear();
    } catch (error) {
      log.warn(`clear() ignored: ${error?.payload ?? error}`);
    }
  }

  /**
   * Appends to the body: a string (UTF-8), bytes (`Uint8Array`), or a plain
   * object, sent as JSON with `Content-Type: application/json`.
   */
  write(chunk) {
    if (this._errorQueued()) return;
    let bytes = toBytes(chunk);
    if (bytes === null) {
      if (!isPlainObject(chunk)) {
        throw new TypeError(
          "write() only accepts a string, a Uint8Array, or a plain object (Tornado refuses lists: wrap them in an object)",
        );
      }
      this.setHeader("Content-Type", "application/json; charset=UTF-8");
      bytes = encoder.encode(jsonEncode(chunk));
    }
    try {
      host.response.write(bytes);
    } catch (error) {
      log.warn(`write() ignored: ${error?.payload ?? error}`);
    }
  }

  /** Sends the headers (first time) and the body so far as one chunk. */
  flush() {
    if (this._errorQueued()) return;
    try {
      host.response.flush();
    } catch (error) {
      log.warn(`flush() ignored: ${error?.payload ?? error}`);
    }
  }

  /** Ends the response (writing `chunk` first, if given). */
  finish(chunk = undefined) {
    if (this._errorQueued()) return;
    if (chunk !== undefined) this.write(chunk);
    try {
      host.response.finish();
    } catch {
      // Finishing twice is harmless.
    }
  }

  /** Whether the response is finished (by `finish`, `redirect` or `sendError`). */
  get finished() {
    return this._errorQueued() || host.response.finished();
  }

  /** Redirects (302, or 301 when `permanent`, or `status`) and finishes. */
  redirect(url, permanent = false, status = undefined) {
    if (this._errorQueued()) return;
    const code = status ?? (permanent ? 301 : 302);
    hostCall(() => host.response.redirect(String(url), code), `redirect(${url})`);
  }

  /**
   * Sets a cookie (Tornado's defaults: `Path=/`, a session cookie). Options:
   * `domain`, `path`, `expiresDays`, `maxAge` (seconds), `secure`,
   * `httpOnly`, `sameSite`.
   */
  setCookie(name, value, options = {}) {
    let maxAge = options.maxAge ?? options.max_age;
    if (maxAge === undefined && options.expiresDays !== undefined) {
      maxAge = Math.round(options.expiresDays * 86400);
    }
    const raw = {
      domain: options.domain ?? undefined,
      path: options.path ?? "/",
      maxAge: maxAge === undefined || maxAge === null ? undefined : BigInt(Math.trunc(Number(maxAge))),
      secure: Boolean(options.secure),
      httpOnly: Boolean(options.httpOnly ?? options.httponly),
      sameSite: options.sameSite ?? options.samesite ?? undefined,
    };
    hostCall(() => host.response.setCookie(String(name), String(value), raw), `setCookie(${name})`);
  }

  /** Deletes a cookie by sending it expired (at `path`, default `/`). */
  clearCookie(name, options = {}) {
    host.response.clearCookie(String(name), options.path ?? "/", options.domain ?? undefined);
  }

  /**
   * Replaces the response with an error page (Tornado's `send_error`): the
   * response is cleared now, and `writeError` runs once the current method
   * returns. Until then, writes are dropped.
   */
  sendError(statusCode = 500, options = {}) {
    if (this._pendingError || this._writingError) return;
    try {
      host.response.clear();
    } catch {
      log.error(`cannot send error ${statusCode} after headers were flushed; finishing the response`);
      try {
        host.response.finish();
      } catch {
        // already finished
      }
      return;
    }
    const reason = options.reason ?? reasonPhrase(statusCode);
    this.setStatus(statusCode, options.reason);
    this._pendingError = { status: statusCode, reason, error: options.error };
  }

  _errorQueued() {
    return this._pendingError !== null && !this._writingError;
  }
}

// ---------------------------------------------------------------------------
// WebSocketHandler

/**
 * Tornado's `WebSocketHandler`. One instance serves one connection for its
 * whole life, so state kept in `this` lasts as long as the connection.
 */
export class WebSocketHandler {
  constructor() {
    this.settings = {};
    /** @type {Request} the upgrade request (kept after `open`) */
    this.request = new Request(null);
    /** The client's close code and reason, once it closed. */
    this.closeCode = undefined;
    this.closeReason = undefined;
  }

  // eslint-disable-next-line no-unused-vars
  initialize(settings) {}

  /**
   * Picks one of the client's subprotocols; return `undefined` (the default)
   * for none.
   */
  // eslint-disable-next-line no-unused-vars
  selectSubprotocol(subprotocols) {
    return undefined;
  }

  /** Called once the handshake is accepted; throw `HTTPError` to refuse it. */
  open() {}

  /** A message from the client: a string (text) or a `Uint8Array` (binary). */
  // eslint-disable-next-line no-unused-vars
  onMessage(message) {}

  /** The connection closed; `this.closeCode` and `this.closeReason` are set. */
  onClose() {}

  get pathArgs() {
    return this.request.pathArgs;
  }
  get pathKwargs() {
    return this.request.pathKwargs;
  }

  /**
   * Sends a message: a string as text (or binary when `binary`), a
   * `Uint8Array` as binary, a plain object as JSON text. Throws
   * `WebSocketClosedError` once the connection is closing.
   */
  writeMessage(message, binary = false) {
    let wire;
    if (typeof message === "string") {
      wire = binary ? { tag: "binary", val: encoder.encode(message) } : { tag: "text", val: message };
    } else {
      const bytes = toBytes(message);
      if (bytes !== null) {
        wire = { tag: "binary", val: bytes };
      } else if (isPlainObject(message)) {
        wire = { tag: "text", val: jsonEncode(message) };
      } else {
        throw new TypeError("writeMessage() accepts a string, a Uint8Array, or a plain object");
      }
    }
    try {
      host.connection.writeMessage(wire);
    } catch (error) {
      throw new WebSocketClosedError(`writeMessage: ${error?.payload ?? error}`);
    }
  }

  /** Starts the close handshake (code 1000 when none is given). */
  close(code = undefined, reason = undefined) {
    host.connection.close(code ?? undefined, reason ?? undefined);
  }

  /** Sends a ping with up to 125 bytes of data. */
  ping(data = new Uint8Array()) {
    const bytes = toBytes(data) ?? new Uint8Array();
    try {
      host.connection.ping(bytes);
    } catch (error) {
      throw new WebSocketClosedError(`ping: ${error?.payload ?? error}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Picking the class a route asked for

/** The setting the host passes a route's `class = "Name"` in. */
export const CLASS_SETTING = "waterspout:class";

/**
 * The handler class for `settings` among the app module's exports: the one
 * named by `waterspout:class`, else the only exported subclass of `base`.
 * Throws (with the names it knows) when that is not one class. @internal
 */
export function pickClass(app, base, settings) {
  // The answer depends only on the app module (fixed for the component's
  // life), the base class and the name asked for: found once, then cached,
  // so a reused instance does not scan the app's exports per request.
  const wanted = settings[CLASS_SETTING];
  let byName = classCache.get(app)?.get(base);
  if (!byName) {
    if (!classCache.has(app)) classCache.set(app, new Map());
    byName = new Map();
    classCache.get(app).set(base, byName);
  }
  let found = byName.get(wanted);
  if (!found) {
    try {
      found = { cls: findClass(app, base, wanted) };
    } catch (error) {
      found = { error };
    }
    byName.set(wanted, found);
  }
  if (found.error) throw found.error;
  return found.cls;
}

/** app module → base class → class name asked for → `{cls}` or `{error}`. */
const classCache = new WeakMap();

function findClass(app, base, wanted) {
  const classes = new Map();
  for (const [exportName, value] of Object.entries(app)) {
    if (typeof value === "function" && value.prototype instanceof base) {
      classes.set(exportName, value);
      if (value.name && !classes.has(value.name)) classes.set(value.name, value);
    }
  }
  const distinct = [...new Set(classes.values())];
  const names = [...new Set(distinct.map((c) => c.name))].join(", ") || "none";
  if (wanted !== undefined) {
    const cls = classes.get(wanted);
    if (!cls) {
      throw new Error(`the route asks for class "${wanted}", but the app exports no ${base.name} of that name (it exports: ${names})`);
    }
    return cls;
  }
  if (distinct.length === 1) return distinct[0];
  if (distinct.length === 0) {
    throw new Error(`the app exports no subclass of ${base.name}: export your handler class`);
  }
  throw new Error(`the app exports several ${base.name} classes (${names}): give the route \`class = "Name"\``);
}

/** A settings list from the host as an object. @internal */
export { settingsObject };

/** Logs an exception with its stack (never sent to the client). @internal */
export function logException(where, error) {
  const detail = error instanceof Error ? (error.stack ? `${error}\n${error.stack}` : String(error)) : String(error);
  log.error(`uncaught exception in ${where}: ${detail}`);
}

/** Whether `value` is a promise (or thenable). @internal */
export function isThenable(value) {
  return value !== null && (typeof value === "object" || typeof value === "function") && typeof value.then === "function";
}

// Tornado's web helpers (guest-sdk/js/src/web.js): signed cookies, XSRF,
// templates, URLs, currentUser.
mixin(RequestHandler, WebHelpers);
mixin(WebSocketHandler, SignedCookies);
webHooks.HTTPError = HTTPError;
