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
// node's fetch on the server's URL; websocketConnect(path) resolves to
// { writeMessage, readMessage, close } (readMessage: null once closed).
//
// The host binary is $WATERSPOUT_BIN, else `waterspout` on the PATH.

import { spawn, execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { connect } from "node:net";
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
    websocketConnect: (path) => websocketConnect("127.0.0.1", port, path),
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

/**
 * A client WebSocket (RFC 6455) over node:net, as Tornado's client:
 * writeMessage(message) (a string is text, a Uint8Array binary),
 * readMessage() → string, Uint8Array, or null once closed; close(code, reason).
 * Written here rather than node's WebSocket, which node 20 hides behind a flag.
 */
function websocketConnect(host, port, path) {
  return new Promise((ok, fail) => {
    const key = randomBytes(16).toString("base64");
    const expected = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    const socket = connect(port, host);
    socket.setTimeout(30_000, () => socket.destroy(new Error("WebSocket: no data within 30 s")));
    let buffer = Buffer.alloc(0);
    let open = false;
    let closed = false;
    let fragments = [];
    let kind = 1;
    const messages = [];
    const readers = [];
    const deliver = (message) => {
      const reader = readers.shift();
      if (reader) reader(message);
      else messages.push(message);
    };
    const send = (opcode, payload) => {
      const n = payload.length;
      const head = n < 126 ? Buffer.from([0x80 | opcode, 0x80 | n]) : Buffer.alloc(n < 65536 ? 4 : 10);
      if (n >= 126 && n < 65536) {
        head[0] = 0x80 | opcode;
        head[1] = 0x80 | 126;
        head.writeUInt16BE(n, 2);
      } else if (n >= 65536) {
        head[0] = 0x80 | opcode;
        head[1] = 0x80 | 127;
        head.writeBigUInt64BE(BigInt(n), 2);
      }
      const mask = randomBytes(4);
      const masked = Buffer.from(payload);
      for (let i = 0; i < masked.length; i++) masked[i] ^= mask[i % 4];
      socket.write(Buffer.concat([head, mask, masked]));
    };
    const finish = () => {
      closed = true;
      while (readers.length) readers.shift()(null);
    };
    const frames = () => {
      for (;;) {
        if (buffer.length < 2) return;
        const fin = buffer[0] & 0x80;
        const opcode = buffer[0] & 0x0f;
        let n = buffer[1] & 0x7f;
        let at = 2;
        if (n === 126) {
          if (buffer.length < 4) return;
          n = buffer.readUInt16BE(2);
          at = 4;
        } else if (n === 127) {
          if (buffer.length < 10) return;
          n = Number(buffer.readBigUInt64BE(2));
          at = 10;
        }
        if (buffer.length < at + n) return;
        const payload = buffer.subarray(at, at + n);
        buffer = buffer.subarray(at + n);
        if (opcode === 0x8) {
          if (!closed) send(0x8, payload.subarray(0, 2));
          socket.end();
          finish();
          return;
        }
        if (opcode === 0x9) {
          send(0xa, payload);
          continue;
        }
        if (opcode === 0xa) continue;
        if (opcode === 0x1 || opcode === 0x2) kind = opcode;
        fragments.push(Buffer.from(payload));
        if (fin) {
          const data = Buffer.concat(fragments);
          fragments = [];
          deliver(kind === 1 ? data.toString("utf8") : new Uint8Array(data));
        }
      }
    };
    socket.on("connect", () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!open) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString("latin1");
        buffer = buffer.subarray(end + 4);
        const status = head.split("\r\n", 1)[0];
        const accept = /^sec-websocket-accept:\s*(\S+)/im.exec(head)?.[1];
        if (!/ 101 /.test(`${status} `) || accept !== expected) {
          socket.destroy();
          return fail(new Error(`WebSocket ${path} refused: ${status}`));
        }
        open = true;
        ok({
          writeMessage: (message) => send(typeof message === "string" ? 0x1 : 0x2, Buffer.from(message)),
          readMessage: () =>
            messages.length
              ? Promise.resolve(messages.shift())
              : closed
                ? Promise.resolve(null)
                : new Promise((r) => readers.push(r)),
          close: (code = 1000, reason = "") => {
            if (closed) return;
            const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
            payload.writeUInt16BE(code, 0);
            payload.write(reason, 2);
            send(0x8, payload);
            closed = true;
            socket.end();
          },
        });
      }
      frames();
    });
    socket.on("error", (error) => {
      if (!open) fail(error);
      finish();
    });
    socket.on("close", finish);
  });
}
