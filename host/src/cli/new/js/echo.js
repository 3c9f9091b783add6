// Tornado's EchoWebSocket: every message comes back unchanged. A component of
// its own (the websocket world), built by its own `build` line.

import { WebSocketHandler } from "waterspout";

export class EchoWebSocket extends WebSocketHandler {
  onMessage(message) {
    this.writeMessage(message);
  }
}
