// Tornado's "Hello, world", as a Waterspout handler in JavaScript.
//
// Run it from the repository root (after `make tools-js`):
//   cargo run -p waterspout -- serve --build examples/js/hello
// then `curl http://127.0.0.1:8888/`.
//
// The Tornado original:
//
//   class MainHandler(tornado.web.RequestHandler):
//       def get(self):
//           self.write("Hello, world")

import { RequestHandler } from "waterspout";

export class MainHandler extends RequestHandler {
  get() {
    this.write("Hello, world");
  }
}
