// The app's key-value store (`kv`), in namespaces granted per handler in
// the manifest (`kv = ["chat"]`); the functions use the handler's first
// namespace, `kv.namespace("other")` another granted one.
//
//     import { kv } from "waterspout";
//     kv.set("greeting", "hello");               // strings stored as UTF-8
//     kv.getString("greeting");                  // "hello" (undefined: absent)
//     kv.increment("visits");                    // 1, 2, 3…
//     kv.set("session", "{}", { ttl: 3600 });    // seconds
//     kv.compareAndSwap("leader", undefined, "me");  // true only if absent
//     kv.listKeys("user:");                      // ["user:1", …]
//
// Errors throw `KvError` (`kind`: "denied", "invalid", "not-a-number", "backend").

import * as raw from "waterspout:handler/kv@0.1.0";

// `delete` is a reserved word: a binding generator may name it `delete$`.
const rawDelete = raw.delete ?? raw["delete$"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A kv call failed: `kind` says why, the message says what. */
export class KvError extends Error {
  constructor(kind, message) {
    super(`kv ${kind}: ${message}`);
    this.name = "KvError";
    this.kind = kind;
  }
}

function call(run) {
  try {
    return run();
  } catch (error) {
    const payload = error?.payload;
    if (payload && typeof payload === "object" && "tag" in payload) {
      throw new KvError(payload.tag, String(payload.val));
    }
    throw error;
  }
}

const bytes = (value) => (typeof value === "string" ? encoder.encode(value) : new Uint8Array(value));
const millis = (seconds) => (seconds === undefined || seconds === null ? undefined : BigInt(Math.max(0, Math.round(seconds * 1000))));

/** One granted namespace ("" is the handler's first). */
export class Namespace {
  constructor(name = "") {
    this.name = name;
  }

  /** The value as a Uint8Array, or undefined when absent or expired. */
  get(key) {
    return call(() => raw.get(this.name, key)) ?? undefined;
  }

  /** The value decoded as UTF-8, or undefined. */
  getString(key) {
    const value = this.get(key);
    return value === undefined ? undefined : decoder.decode(value);
  }

  /** Stores a string or bytes; `{ ttl }` in seconds makes it expire. */
  set(key, value, options = {}) {
    call(() => raw.set(this.name, key, bytes(value), millis(options.ttl)));
  }

  /** Removes the key; true when it was there. */
  delete(key) {
    return call(() => rawDelete(this.name, key));
  }

  /** Adds `delta` (default 1) to the integer under `key`; the new value. */
  increment(key, delta = 1) {
    return Number(call(() => raw.increment(this.name, key, BigInt(delta))));
  }

  /** Sets `value` only if the key holds `expected` (undefined: only if absent). */
  compareAndSwap(key, expected, value, options = {}) {
    const want = expected === undefined || expected === null ? undefined : bytes(expected);
    return call(() => raw.compareAndSwap(this.name, key, want, bytes(value), millis(options.ttl)));
  }

  /** The keys starting with `prefix`, sorted, at most `limit`. */
  listKeys(prefix = "", limit = undefined) {
    return call(() => raw.listKeys(this.name, prefix, limit));
  }
}

const fallback = new Namespace("");

/** The kv service: the handler's first namespace, and `namespace(name)`. */
export const kv = {
  namespace: (name) => new Namespace(name),
  get: (key) => fallback.get(key),
  getString: (key) => fallback.getString(key),
  set: (key, value, options) => fallback.set(key, value, options),
  delete: (key) => fallback.delete(key),
  increment: (key, delta) => fallback.increment(key, delta),
  compareAndSwap: (key, expected, value, options) => fallback.compareAndSwap(key, expected, value, options),
  listKeys: (prefix, limit) => fallback.listKeys(prefix, limit),
};
