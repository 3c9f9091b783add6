// The news feed's WebSocket side, in JavaScript: ws://HOST/socket joins the
// host's WebSocket group `news`; a message sent on it is broadcast to every
// member (this connection too), then the sender gets `reached N` (how many
// members took it). The host writes a broadcast to each member connection
// without calling their handlers.
//
// Run it from the repository root (after `make tools-js`):
//   cargo run -p waterspout -- serve --build examples/js/news

import { WebSocketHandler, groups } from "waterspout";

const GROUP = "news";

export class NewsSocket extends WebSocketHandler {
  open() {
    groups.join(GROUP);
  }

  onMessage(message) {
    const reached = groups.broadcast(GROUP, message);
    this.writeMessage(`reached ${reached}`);
  }
}
