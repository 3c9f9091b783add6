// A news feed over the host's pub/sub, in JavaScript: publish, and long-poll
// for what is new (the chat example's protocol, reduced).
//
//   POST /publish (form `data`)      → the message's cursor
//   GET  /wait?after=N&timeout_ms=M  → {"messages": [[cursor, "data"], ...]},
//                                      waiting up to M ms for one after N
//   GET  /topic-not-granted          → 403 with the error text
//
// A client that hangs up during the wait makes `pubsub.wait` throw
// StreamClosedError; the SDK then calls `onConnectionClose()` (which
// publishes "closed" so a test can see it).
//
// Run it from the repository root (after `make tools-js`):
//   cargo run -p waterspout -- serve --build examples/js/news

import { HTTPError, PubsubError, RequestHandler, pubsub } from "waterspout";

const TOPIC = "news";

function failed(error) {
  if (error instanceof PubsubError && error.kind !== "closed") {
    return new HTTPError(error.kind === "denied" ? 403 : 400, error.message, { reason: error.message });
  }
  return error;
}

export class PublishHandler extends RequestHandler {
  post() {
    try {
      this.write(String(pubsub.publish(TOPIC, this.getArgument("data"))));
    } catch (error) {
      throw failed(error);
    }
  }
}

export class WaitHandler extends RequestHandler {
  get() {
    const after = Number(this.getArgument("after", "0"));
    const timeout = Number(this.getArgument("timeout_ms", "10000")) / 1000;
    const messages = pubsub.wait(TOPIC, after, timeout);
    this.write({ messages: messages.map((m) => [m.cursor, m.data]) });
  }

  onConnectionClose() {
    pubsub.publish(TOPIC, "closed");
  }
}

export class DeniedHandler extends RequestHandler {
  get() {
    try {
      pubsub.publish("secret", "x");
    } catch (error) {
      throw failed(error);
    }
  }
}
