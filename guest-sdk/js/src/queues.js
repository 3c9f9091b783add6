// Tornado's `tornado.queues.Queue` over the app's named queues, and the
// `Worker` base class of background workers.
//
//     import { Queue } from "waterspout";
//     const q = new Queue("urls");          // [queue.urls] in waterspout.toml
//     await q.put("https://example.com/");  // waits while the queue is full
//     const url = await q.get();            // waits while it is empty
//     q.taskDone();
//     await q.join({ timeout: 30 });        // seconds
//
// Items are JSON values (strings, numbers, arrays, objects); a Uint8Array
// goes as it is, and an item that is not JSON comes back as a Uint8Array.

import * as raw from "waterspout:handler/queue@0.1.0";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `getNowait` on an empty queue (Tornado's `QueueEmpty`). */
export class QueueEmpty extends Error {}
/** `putNowait` on a full queue (Tornado's `QueueFull`). */
export class QueueFull extends Error {}
/** A wait ran out (Tornado's `TimeoutError`). */
export class QueueTimeout extends Error {}
/** The queue is not declared in the manifest or not granted to this handler. */
export class QueueNotGranted extends Error {}
/** A background worker must stop (new version or shutdown); `for await` ends on it. */
export class QueueStopping extends Error {}

function millis(timeout) {
  if (timeout === undefined || timeout === null) return undefined;
  if (timeout <= 0) return 0;
  // 0 means "do not wait" to the host: a positive timeout waits at least 1 ms.
  return Math.min(Math.max(1, Math.round(timeout * 1000)), 2 ** 32 - 1);
}

function rethrow(error, name) {
  const payload = error?.payload;
  switch (payload?.tag) {
    case "timeout":
      return new QueueTimeout(`queue "${name}": timed out`);
    case "full":
      return new QueueFull(`queue "${name}" is full`);
    case "empty":
      return new QueueEmpty(`queue "${name}" is empty`);
    case "too-many-task-done":
      return new Error("taskDone() called too many times");
    case "too-large":
      return new Error(`queue "${name}": the item is larger than its max_item_size of ${payload.val} bytes`);
    case "stopping":
      return new QueueStopping("the worker must stop");
    case "not-granted":
      return new QueueNotGranted(
        `queue "${payload.val}" is not granted to this handler (declare [queue.${payload.val}] and list it in the handler's queues = [...])`,
      );
    default:
      return error;
  }
}

function encode(item) {
  if (item instanceof Uint8Array) return item;
  return encoder.encode(JSON.stringify(item));
}

function decode(bytes) {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    return bytes;
  }
}

/** A named queue of the app (Tornado's `Queue`; its bound is the manifest's `max_size`). */
export class Queue {
  constructor(name) {
    this.name = name;
  }

  _call(fn, ...args) {
    try {
      return fn(this.name, ...args);
    } catch (error) {
      throw rethrow(error, this.name);
    }
  }

  /** Items allowed in the queue (0: unbounded). */
  get maxsize() {
    return this._call(raw.maxsize);
  }

  qsize() {
    return this._call(raw.qsize);
  }

  empty() {
    return this.qsize() === 0;
  }

  full() {
    const max = this.maxsize;
    return max > 0 && this.qsize() >= max;
  }

  /** Puts an item, waiting while the queue is full (`{timeout}` in seconds). */
  async put(item, { timeout } = {}) {
    this._call(raw.put, encode(item), millis(timeout));
  }

  putNowait(item) {
    this._call(raw.put, encode(item), 0);
  }

  /** Removes and returns an item, waiting while the queue is empty. */
  async get({ timeout } = {}) {
    return decode(this._call(raw.get, millis(timeout)));
  }

  getNowait() {
    return decode(this._call(raw.get, 0));
  }

  /** The item last taken is processed (counts down `join`). */
  taskDone() {
    this._call(raw.taskDone);
  }

  /** Waits until every item put has been processed. */
  async join({ timeout } = {}) {
    this._call(raw.join, millis(timeout));
  }

  /** `for await (const item of q)`: ends when a worker must stop. */
  async *[Symbol.asyncIterator]() {
    while (true) {
      try {
        yield await this.get();
      } catch (error) {
        if (error instanceof QueueStopping) return;
        throw error;
      }
    }
  }
}

/**
 * A background worker: `export class Jobs extends Worker { async run() { … } }`,
 * run by the manifest's `[worker.NAME]` section. `this.settings` holds the
 * section's settings plus `waterspout:worker` and `waterspout:worker-index`.
 */
export class Worker {
  initialize(settings) {}

  run() {
    throw new Error("a Worker subclass must define run()");
  }

  /** Which of the `concurrency` instances this is (0-based). */
  get index() {
    return Number(this.settings?.["waterspout:worker-index"] ?? 0);
  }
}
