// {{ name }}: Tornado's MainHandler, as a Waterspout handler in JavaScript.
//
// `waterspout serve --build .` builds it (the `build` line of
// waterspout.toml, ~1 min) and serves it: `curl http://127.0.0.1:8888/`.

import { RequestHandler } from "waterspout";

export class MainHandler extends RequestHandler {
  get() {
    const name = this.getArgument("name", "world");
    this.write(`Hello, ${name}`);
  }
}
