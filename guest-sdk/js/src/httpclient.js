// Outbound HTTP, as Tornado's `AsyncHTTPClient`, through the host (the
// handler's `allowed_outbound_hosts`, none by default):
//
//     import { AsyncHTTPClient } from "waterspout";
//     const response = await new AsyncHTTPClient().fetch("http://api.example/x",
//       { method: "POST", body: "…", headers: { "Content-Type": "text/plain" } });
//     response.code; response.body (Uint8Array); response.text; response.json();
//
// A response outside 200-299 rejects with `HTTPClientError` unless
// `raiseError: false`; no response at all rejects with `FetchError`
// (`code` 599, `kind`: "denied", "bad-url", "dns", "connect", "timeout",
// "too-large", "other"). `fetchAll([...])` runs several at once in the host.
// Times are seconds, as Tornado's.

import * as raw from "waterspout:handler/http-client@0.1.0";
import { reasonPhrase } from "./status.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Tornado's `HTTPClientError`: `code`, `message`, `response`. */
export class HTTPClientError extends Error {
  constructor(code, message = undefined, response = undefined) {
    super(`HTTP ${code}: ${message ?? reasonPhrase(code)}`);
    this.name = "HTTPClientError";
    this.code = code;
    this.response = response;
  }
}

/** No response at all (code 599); `kind` says why. */
export class FetchError extends HTTPClientError {
  constructor(kind, message) {
    super(599, `${kind}: ${message}`);
    this.name = "FetchError";
    this.kind = kind;
  }
}

/** Tornado's `HTTPResponse`. */
export class HTTPResponse {
  constructor(request, r) {
    this.request = request;
    this.code = r.status;
    this.reason = r.reason;
    this.headers = {};
    for (const [name, value] of r.headers) {
      this.headers[name] = name in this.headers ? `${this.headers[name]},${value}` : value;
    }
    this.body = r.body;
    this.effectiveUrl = r.effectiveUrl;
    this.requestTime = Number(r.requestTimeMs) / 1000;
    this.error = this.code < 200 || this.code >= 300 ? new HTTPClientError(this.code, this.reason, this) : undefined;
  }

  get text() {
    return decoder.decode(this.body);
  }

  json() {
    return JSON.parse(this.text);
  }

  rethrow() {
    if (this.error) throw this.error;
  }
}

const millis = (seconds) => (seconds === undefined || seconds === null ? undefined : BigInt(Math.max(0, Math.round(seconds * 1000))));

function rawRequest(url, options = {}) {
  const headers = [];
  for (const [name, value] of Object.entries(options.headers ?? {})) headers.push([name, String(value)]);
  const body = options.body === undefined || options.body === null
    ? undefined
    : typeof options.body === "string" ? encoder.encode(options.body) : new Uint8Array(options.body);
  return {
    method: (options.method ?? "GET").toUpperCase(),
    url: String(url),
    headers,
    body,
    connectTimeoutMs: millis(options.connectTimeout),
    requestTimeoutMs: millis(options.requestTimeout),
    followRedirects: options.followRedirects,
    maxRedirects: options.maxRedirects,
    maxResponseSize: options.maxBodySize === undefined ? undefined : BigInt(options.maxBodySize),
  };
}

function fetchError(payload) {
  if (payload?.tag === "too-large") return new FetchError("too-large", `the response body is larger than ${payload.val} bytes`);
  return new FetchError(payload?.tag ?? "other", String(payload?.val ?? payload));
}

function finish(request, result, raiseError) {
  const response = new HTTPResponse(request, result);
  if (response.error && raiseError) throw response.error;
  return response;
}

/** Tornado's `AsyncHTTPClient`; `defaults` apply to every fetch. */
export class AsyncHTTPClient {
  constructor(defaults = {}) {
    this.defaults = defaults;
  }

  /** `fetch(url, { method, headers, body, connectTimeout, requestTimeout,
   * followRedirects, maxRedirects, maxBodySize, raiseError = true })` → a
   * promise of the `HTTPResponse`. */
  fetch(url, options = {}) {
    const merged = { ...this.defaults, ...options };
    const request = rawRequest(url, merged);
    try {
      let result;
      try {
        result = raw.fetch(request);
      } catch (error) {
        if (error?.payload !== undefined) throw fetchError(error.payload);
        throw error;
      }
      return Promise.resolve(finish(request, result, merged.raiseError ?? true));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Several fetches at once: `[[url, options], …]` or URLs → a promise of
   * the responses in order (rejecting with the first error). */
  fetchAll(requests) {
    const items = requests.map((r) => (Array.isArray(r) ? r : [r, {}]));
    const raws = items.map(([url, options]) => rawRequest(url, { ...this.defaults, ...options }));
    try {
      const results = raw.fetchAll(raws);
      return Promise.resolve(results.map((result, i) => {
        if (result.tag === "err") throw fetchError(result.val);
        return finish(raws[i], result.val, items[i][1].raiseError ?? this.defaults.raiseError ?? true);
      }));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
