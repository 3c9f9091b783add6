// A WebSocket echo server, as Tornado's `EchoWebSocket` (the same protocol
// as examples/echo):
// - a text or binary message comes back unchanged, of the same kind;
// - the text `count` is answered with how many messages this connection has
//   sent, counting this one (one instance serves one connection, so the count
//   lives in the handler);
// - the text `close` makes the server close with code 1000 and reason `bye`.
//
// Run it: `cargo run -p waterspout -- serve --build examples/js/echo`, then
// connect to ws://127.0.0.1:8888/echo.

import { WebSocketHandler, log } from "waterspout";

export class EchoWebSocket extends WebSocketHandler {
  received = 0;

  open() {
    log.info(`echo: connection from ${this.request.remoteIp}`);
  }

  onMessage(message) {
    this.received += 1;
    if (message === "count") {
      this.writeMessage(String(this.received));
    } else if (message === "close") {
      this.close(1000, "bye");
    } else {
      this.writeMessage(message);
    }
  }

  onClose() {
    log.info(`echo: closed after ${this.received} messages (code ${this.closeCode}, reason ${this.closeReason})`);
  }
}
