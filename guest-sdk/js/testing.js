// Tornado's AsyncHTTPTestCase for Waterspout apps, for node's test runner
// (`node --test`): test handlers against the real host, over real sockets.
// This module runs in node, not in the component.
//
//   import { test, before, after } from "node:test";
//   import assert from "node:assert/strict";
//   import { serveApp } from "/path/to/waterspout/guest-sdk/js/testing.js";
//
//   let app;
//   before(async () => { app = await serveApp(import.meta.dirname); });
//   after(() => app.close());
//
//   test("hello", async () => {
//     const response = await app.fetch("/");
//     assert.equal(response.status, 200);
//     assert.equal(await response.text(), "Hello, world");
//   });
//
// serveApp(dir) builds the app once per process (`waterspout build DIR`: the
// `build` lines of its waterspout.toml), starts `waterspout serve` on
// 127.0.0.1 (a free port, a fresh version store) and resolves to
// { url, port, fetch, websocketConnect, log, close }. fetch(path, init) is
// node's fetch on the server's URL. websocketConnect(path) needs node's
// WebSocket (node >= 22, or `node --experimental-websocket` on 20).
//
// The host binary is $WATERSPOUT_BIN, else `waterspout` on the PATH.

import { spawn, execFile } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";

const START_TIMEOUT_MS = 180_000;

function waterspoutBin() {
  const given = process.env.WATERSPOUT_BIN;
  if (given) {
    if (!existsSync(given)) throw new Error(`WATERSPOUT_BIN=${given} does not exist`);
    return given;
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "waterspout");
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error(
    "cannot find the `waterspout` binary: set WATERSPOUT_BIN to it, or put it on the PATH " +
      "(`cargo install --path host` in the Waterspout checkout)",
  );
}

const builds = new Map();

/** Runs `waterspout build DIR` once per process; later calls share its result. */
export function buildApp(dir) {
  dir = resolve(dir);
  if (!builds.has(dir)) {
    builds.set(
      dir,
      new Promise((ok, fail) => {
        execFile(waterspoutBin(), ["build", dir], { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
          if (error) fail(new Error(`waterspout build ${dir} failed (${error.code}):\n${stdout}${stderr}`));
          else ok();
        });
      }),
    );
  }
  return builds.get(dir);
}

/** Builds (unless `{ build: false }`) and serves the app in `dir`. */
export async function serveApp(dir, { build = true } = {}) {
  dir = resolve(dir);
  if (build) await buildApp(dir);
  const scratch = mkdtempSync(join(tmpdir(), "waterspout-test-"));
  const portFile = join(scratch, "port");
  const logFile = join(scratch, "log");
  const logFd = openSync(logFile, "w");
  const env = { ...process.env };
  // No admin API: it would want port 8889 in every test.
  delete env.WATERSPOUT_ADMIN_TOKEN;
  const child = spawn(
    waterspoutBin(),
    ["serve", dir, "--listen", "127.0.0.1:0", "--port-file", portFile, "--store", join(scratch, "store")],
    { stdio: ["ignore", "ignore", logFd], env },
  );
  closeSync(logFd);
  let exited = null;
  child.on("exit", (code, signal) => {
    exited = signal ?? code;
  });
  const log = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  const cleanup = () => rmSync(scratch, { recursive: true, force: true });

  const started = Date.now();
  let port;
  for (;;) {
    if (existsSync(portFile)) {
      port = Number(readFileSync(portFile, "utf8").trim());
      if (port > 0) break;
    }
    if (exited !== null || Date.now() - started > START_TIMEOUT_MS) {
      const why = exited !== null ? `exited (${exited})` : `did not listen within ${START_TIMEOUT_MS} ms`;
      const text = log();
      child.kill("SIGKILL");
      cleanup();
      throw new Error(`waterspout serve ${dir} ${why}; its log:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    /** `GET url + path` (node's fetch; `init` as fetch's). */
    fetch: (path, init) => fetch(url + path, init),
    /** Opens a WebSocket to `path`: { writeMessage, readMessage, close }. */
    websocketConnect: (path) => websocketConnect(`ws://127.0.0.1:${port}${path}`),
    log,
    /** Stops the server (and waits for it). */
    close: () =>
      new Promise((ok) => {
        if (exited !== null) {
          cleanup();
          return ok();
        }
        child.once("exit", () => {
          cleanup();
          ok();
        });
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      }),
  };
}

/** A WebSocket as Tornado's client: writeMessage, readMessage (null once closed), close. */
function websocketConnect(wsUrl) {
  if (typeof WebSocket === "undefined") {
    throw new Error("websocketConnect needs node's WebSocket: node >= 22, or `node --experimental-websocket`");
  }
  const socket = new WebSocket(wsUrl);
  socket.binaryType = "arraybuffer";
  const messages = [];
  const readers = [];
  let closed = false;
  const deliver = (message) => {
    const reader = readers.shift();
    if (reader) reader(message);
    else messages.push(message);
  };
  socket.addEventListener("message", (event) =>
    deliver(typeof event.data === "string" ? event.data : new Uint8Array(event.data)),
  );
  socket.addEventListener("close", () => {
    closed = true;
    while (readers.length) readers.shift()(null);
  });
  return new Promise((ok, fail) => {
    socket.addEventListener("error", () => fail(new Error(`WebSocket ${wsUrl} failed`)), { once: true });
    socket.addEventListener(
      "open",
      () =>
        ok({
          writeMessage: (message) => socket.send(message),
          readMessage: () =>
            messages.length ? Promise.resolve(messages.shift()) : closed ? Promise.resolve(null) : new Promise((r) => readers.push(r)),
          close: (code = 1000, reason = "") => socket.close(code, reason),
        }),
      { once: true },
    );
  });
}
