// Builds a Waterspout JavaScript app (an ES module exporting handler
// classes) into a WebAssembly component:
//
//   guest-sdk/js/build APP.js OUT.wasm [--world handler|websocket|worker] [-d FEATURE ...]
//
// 1. esbuild bundles the app with this SDK (`import ... from "waterspout"`)
//    into one ES module whose entry exports the world's interface:
//    `requestHandler` and `dispatch` (world `handler`) or `websocketHandler` (world `websocket`).
// 2. componentize-js turns that module into a component against the WIT in
//    the repository's `wit/` folder (never a copy).
//
// The world is `websocket` when the app extends only `WebSocketHandler`, else
// `handler`; `--world` overrides. `-d FEATURE` passes componentize-js's
// `--disable` (stdio, random, clocks, http, fetch-event); by default none is
// disabled, and the component imports wasi:http, which the host links (outbound
// requests are denied unless the handler's allowlist grants them).

import { existsSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";

const sdkDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(sdkDir, "../..");
const witDir = join(root, "wit");
const tools = join(root, ".tools/js/node_modules");

function fail(message) {
  console.error(`waterspout js build: ${message}`);
  process.exit(1);
}

function usage() {
  fail("usage: guest-sdk/js/build APP.js OUT.wasm [--world handler|websocket|worker] [-d FEATURE ...]");
}

const args = process.argv.slice(2);
const positional = [];
let world = null;
const disable = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === "--world" || arg === "-n") world = args[++i];
  else if (arg === "-d" || arg === "--disable") disable.push(args[++i]);
  else if (arg === "-h" || arg === "--help") usage();
  else positional.push(arg);
}
if (positional.length !== 2) usage();
const app = resolve(positional[0]);
const out = resolve(positional[1]);
if (!existsSync(app)) fail(`${positional[0]}: no such file`);

for (const [pkg, what] of [
  ["@bytecodealliance/componentize-js/package.json", "componentize-js"],
  ["esbuild/package.json", "esbuild"],
]) {
  if (!existsSync(join(tools, pkg))) {
    fail(`${what} is not installed in ${join(root, ".tools/js")}; run \`make tools-js\` at the repository root`);
  }
}

const source = readFileSync(app, "utf8");
if (world === null) {
  const ws = /extends\s+WebSocketHandler\b/.test(source);
  const worker = /extends\s+Worker\b/.test(source);
  const http = /extends\s+RequestHandler\b/.test(source);
  if (ws && http) fail(`${positional[0]} has both RequestHandler and WebSocketHandler classes: pass --world handler or --world websocket (one component serves one world)`);
  world = ws ? "websocket" : worker && !http ? "worker" : "handler";
}
if (!["handler", "websocket", "worker"].includes(world)) fail(`unknown world ${world} (handler, websocket or worker)`);

const started = Date.now();
const work = mkdtempSync(join(tmpdir(), "waterspout-js-"));
try {
  // The entry: the app's classes behind the world's export.
  const glue = {
    handler: { module: "http.js", fn: "serveRequests", name: "{ requestHandler, dispatch }" },
    websocket: { module: "ws.js", fn: "serveWebSockets", name: "websocketHandler" },
    worker: { module: "worker.js", fn: "serveWorkers", name: "backgroundWorker" },
  }[world];
  const entry = join(work, "entry.js");
  writeFileSync(
    entry,
    `import * as app from ${JSON.stringify(app)};\n` +
      `import { ${glue.fn} } from ${JSON.stringify(join(sdkDir, "src", glue.module))};\n` +
      `export const ${glue.name} = ${glue.fn}(app);\n`,
  );

  const esbuild = await import(pathToFileURL(join(tools, "esbuild/lib/main.js")).href);
  const bundle = join(work, "bundle.js");
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    outfile: bundle,
    external: ["waterspout:*", "wasi:*"],
    alias: { waterspout: join(sdkDir, "src/index.js") },
    logLevel: "warning",
    keepNames: true,
  });

  const { componentize } = await import(
    pathToFileURL(join(tools, "@bytecodealliance/componentize-js/src/componentize.js")).href
  );
  const { component } = await componentize({
    sourcePath: bundle,
    witPath: witDir,
    worldName: world,
    disableFeatures: disable,
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, component);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const megabytes = (statSync(out).size / 1e6).toFixed(1);
  console.log(`waterspout js build: ${positional[1]} (world ${world}, ${megabytes} MB) in ${seconds} s`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
