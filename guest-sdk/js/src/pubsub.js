// Pub/sub with long polling, and WebSocket groups, kept by the host.
//
//     import { RequestHandler, pubsub } from "waterspout";
//
//     export class Updates extends RequestHandler {
//       post() {
//         const cursor = Number(this.getArgument("cursor", "0"));
//         // Suspends this handler in the host until a publish or the timeout.
//         const messages = pubsub.wait("chat", cursor, 60);
//         this.write({ messages: messages.map((m) => m.data) });
//       }
//       onConnectionClose() {} // the client hung up during the wait
//     }
//
// Topics and groups must be granted in waterspout.toml (`pubsub_topics`,
// `groups`). When the client hangs up during `wait`, it throws
// `StreamClosedError`; the SDK then calls the handler's `onConnectionClose()`.

import * as rawPubsub from "waterspout:handler/pubsub@0.1.0";
import * as rawGroups from "waterspout:handler/groups@0.1.0";

/** A pub/sub or group call failed (a bad name, a message too large, the backend down). */
export class PubsubError extends Error {
  constructor(message, kind) {
    super(message);
    this.name = "PubsubError";
    /** "denied", "invalid", "unavailable", "not-a-connection" */
    this.kind = kind;
  }
}

/** The client hung up while this handler waited (as Tornado's `StreamClosedError`). */
export class StreamClosedError extends PubsubError {
  constructor() {
    super("the client closed the connection", "closed");
    this.name = "StreamClosedError";
  }
}

/** Set when a wait saw the client hang up; read (and cleared) by the glue. @internal */
export const clientClosed = { value: false };

function rethrow(error) {
  const payload = error?.payload;
  if (payload && typeof payload === "object" && "tag" in payload) {
    if (payload.tag === "closed") {
      clientClosed.value = true;
      throw new StreamClosedError();
    }
    const detail = payload.val ?? "only a WebSocket connection can join or leave a group";
    throw new PubsubError(String(detail), payload.tag);
  }
  throw error;
}

function call(fn) {
  try {
    return fn();
  } catch (error) {
    return rethrow(error);
  }
}

function millis(seconds) {
  if (seconds === undefined || seconds === null) return 0xffffffff;
  return Math.max(0, Math.min(Math.floor(seconds * 1000), 0xffffffff));
}

export const pubsub = {
  /** Appends `data` (a string) to `topic`, waking its waiters; returns its cursor. */
  publish(topic, data) {
    return Number(call(() => rawPubsub.publish(topic, String(data))));
  },
  /**
   * The kept messages of `topic` after cursor `after` (0: all kept) as
   * `{cursor, data}`; when there are none yet, waits up to `timeout` seconds
   * (bounded by the handler's `wait_timeout_ms`) and returns `[]` then.
   */
  wait(topic, after = 0, timeout = undefined) {
    const messages = call(() => rawPubsub.wait(topic, BigInt(after), millis(timeout)));
    return messages.map((m) => ({ cursor: Number(m.cursor), data: m.data }));
  },
  /** The newest cursor of `topic` (0 before the first publish). */
  latest(topic) {
    return Number(call(() => rawPubsub.latest(topic)));
  },
};

export const groups = {
  /** Adds this WebSocket connection to `group` (until it leaves or closes). */
  join(group) {
    call(() => rawGroups.join(group));
  },
  /** Takes this connection out of `group`. */
  leave(group) {
    call(() => rawGroups.leave(group));
  },
  /**
   * Sends `message` (a string, a Uint8Array, or an object sent as JSON) to
   * every member connection of `group`; returns how many it reached. The
   * members' handlers are not called.
   */
  broadcast(group, message) {
    let raw;
    if (message instanceof Uint8Array) raw = { tag: "binary", val: message };
    else if (typeof message === "object" && message !== null) raw = { tag: "text", val: JSON.stringify(message) };
    else raw = { tag: "text", val: String(message) };
    return call(() => rawGroups.broadcast(group, raw));
  },
};
