// WebSocket rooms: what examples/js/echo does not show — path arguments in
// `open` (an async one), refusing a handshake with HTTPError,
// `selectSubprotocol`, JSON messages, `this.request` after `open`, and ping.
//
// Run it: `cargo run -p waterspout -- serve --build examples/js/rooms`, then
// connect to ws://127.0.0.1:8888/rooms/lobby (subprotocol `rooms.v1` if you like).

import { WebSocketHandler, HTTPError } from "waterspout";

export class RoomSocket extends WebSocketHandler {
  /** Picks `rooms.v1` when the client offers it. */
  selectSubprotocol(subprotocols) {
    return subprotocols.includes("rooms.v1") ? "rooms.v1" : undefined;
  }

  /** /rooms/NAME: the room `secret` is refused with a 403. */
  async open(room) {
    await null;
    if (room === "secret") throw new HTTPError(403, "nobody enters the secret room");
    this.room = room;
  }

  /** "ping" → a ping carrying [1, 2]; anything else → a JSON description of it. */
  onMessage(message) {
    if (message === "ping") {
      this.ping(new Uint8Array([1, 2]));
      return;
    }
    this.writeMessage({
      room: this.room,
      kind: typeof message === "string" ? "text" : "binary",
      size: message.length,
      path: this.request.path,
      agent: this.request.headers.get("User-Agent") ?? null,
    });
  }
}
