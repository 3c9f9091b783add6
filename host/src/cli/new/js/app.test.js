// {{ name }}'s tests, as Tornado's AsyncHTTPTestCase, for node's test runner:
// `node --test` (or `npm test`) in this directory. serveApp builds the app
// (the `build` lines of waterspout.toml), starts the real `waterspout serve`
// on 127.0.0.1:0 and close() stops it. The host binary is $WATERSPOUT_BIN,
// else `waterspout` on the PATH.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

// The test harness comes with the SDK, in the Waterspout checkout.
const { serveApp } = await import(
  process.env.WATERSPOUT_JS_SDK
    ? `${process.env.WATERSPOUT_JS_SDK}/testing.js`
    : "{{ sdk }}/guest-sdk/js/testing.js"
);

let app;
before(async () => {
  app = await serveApp(dirname(fileURLToPath(import.meta.url)));
});
after(() => app?.close());

test("hello", async () => {
  const response = await app.fetch("/");
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "Hello, world");
});

test("hello by name", async () => {
  const response = await app.fetch("/?name=Ann");
  assert.equal(await response.text(), "Hello, Ann");
});

test("an unknown path is 404", async () => {
  const response = await app.fetch("/nowhere");
  assert.equal(response.status, 404);
});
{%- if websocket %}

test("echo", async () => {
  const ws = await app.websocketConnect("/echo");
  ws.writeMessage("hi");
  assert.equal(await ws.readMessage(), "hi");
  ws.close();
});
{%- endif %}
