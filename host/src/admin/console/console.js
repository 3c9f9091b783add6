// The Waterspout console: reads and changes the app through the admin API
// (the session cookie goes along; every change carries X-CSRF-Token) and
// follows /console/events (server-sent events) for the live numbers and
// the guest log. No framework, no build step; the charts are plain SVG.
"use strict";

const HISTORY = 120; // points kept per chart (seconds)
const CLASS_COLORS = ["#8c959f", "#2da44e", "#1f6feb", "#bf8700", "#cf222e"];
const state = { csrf: null, selected: null, handlers: [], history: {}, activeSeen: {}, logLines: 0 };

const $ = (sel) => document.querySelector(sel);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

// --- the admin API --------------------------------------------------------

async function api(method, path, body) {
  const headers = { "X-CSRF-Token": state.csrf };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) { location.assign("/console/login"); throw new Error("signed out"); }
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

// --- handlers table ---------------------------------------------------------

function fmtMs(v) { return v == null ? "–" : v < 1 ? v.toFixed(2) + " ms" : v.toFixed(1) + " ms"; }
function fmtRate(v) { return v == null ? "–" : v.toFixed(v < 10 ? 1 : 0); }
function fmtBytes(n) { return n < 1024 ? n + " B" : n < 1 << 20 ? (n / 1024).toFixed(1) + " KiB" : (n / 1048576).toFixed(2) + " MiB"; }

function renderHandlers() {
  const body = $("#handlers tbody");
  body.replaceChildren(...state.handlers.map((h) => {
    const w = h.window || {};
    const l = h.limits || {};
    const limits = `${l.timeout_ms} ms · ${l.memory_limit_mb} MiB · ≤${l.max_instances} inst.` + (l.reuse > 1 ? ` · reuse ${l.reuse}` : "");
    const row = el("tr", { "data-handler": h.name, class: h.name === state.selected ? "selected" : "" },
      el("td", {}, el("strong", {}, h.name)),
      el("td", { class: "version num" }, h.active_version),
      el("td", {}, h.world),
      el("td", { class: "language" }, h.language || "–"),
      el("td", {}, el("code", {}, (h.routes || []).join(" "))),
      el("td", { class: "instances num" }, h.instances),
      el("td", { class: "requests num" }, h.requests),
      el("td", { class: "rate num" }, fmtRate(w.requests_per_s)),
      el("td", { class: "num" }, fmtMs(w.p50_ms)),
      el("td", { class: "num" }, fmtMs(w.p99_ms)),
      el("td", { class: "num" }, h.traps),
      el("td", { class: "num" }, h.timeouts),
      el("td", { class: "limits" }, limits));
    row.addEventListener("click", () => select(h.name));
    return row;
  }));
  const filter = $("#log-filter");
  const names = state.handlers.map((h) => h.name);
  const have = [...filter.options].map((o) => o.value).filter((v) => v);
  if (names.join() !== have.join()) {
    const current = filter.value;
    filter.replaceChildren(el("option", { value: "" }, "all"), ...names.map((n) => el("option", { value: n }, n)));
    filter.value = names.includes(current) ? current : "";
  }
}

function select(name) {
  state.selected = name;
  for (const span of document.querySelectorAll(".selected-handler")) span.textContent = name || "";
  renderHandlers();
  renderCharts();
  loadVersions();
}

// --- charts (SVG by hand) -----------------------------------------------------

function record(stats) {
  for (const h of stats.handlers) {
    const w = h.window;
    if (!w) continue;
    const hist = state.history[h.name] || (state.history[h.name] = []);
    hist.push({ t: stats.time_ms, cls: w.by_class_per_s, p50: w.p50_ms, p99: w.p99_ms, traps: w.traps / w.seconds, timeouts: w.timeouts / w.seconds });
    if (hist.length > HISTORY) hist.shift();
  }
}

function drawChart(svg, legend, series, unit) {
  const W = 320, H = 140, top = 8, bottom = 14, left = 4;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v != null && v > max) max = v;
  max = max > 0 ? niceCeil(max) : 1;
  const ns = "http://www.w3.org/2000/svg";
  const nodes = [];
  for (let i = 0; i <= 4; i++) {
    const y = top + (H - top - bottom) * i / 4;
    const line = document.createElementNS(ns, "line");
    line.setAttribute("class", "grid");
    line.setAttribute("x1", 0); line.setAttribute("x2", W); line.setAttribute("y1", y); line.setAttribute("y2", y);
    nodes.push(line);
  }
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", left); label.setAttribute("y", top + 8);
  label.textContent = `${max} ${unit}`;
  nodes.push(label);
  const caption = document.createElementNS(ns, "text");
  caption.setAttribute("x", left); caption.setAttribute("y", H - 3);
  caption.textContent = `last ${HISTORY} s`;
  nodes.push(caption);
  for (const s of series) {
    const points = [];
    const n = s.values.length;
    s.values.forEach((v, i) => {
      if (v == null) return;
      const x = W - (n - 1 - i) * (W / (HISTORY - 1));
      const y = top + (H - top - bottom) * (1 - v / max);
      points.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("stroke", s.color);
    nodes.push(line);
  }
  svg.replaceChildren(...nodes);
  legend.replaceChildren(...series.map((s) => {
    const last = s.values.length ? s.values[s.values.length - 1] : null;
    const swatch = el("i"); swatch.style.background = s.color;
    return el("span", {}, swatch, `${s.name} ${last == null ? "–" : (+last).toFixed(last < 10 ? 2 : 0)}`);
  }));
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return +(m * p).toPrecision(3);
  return v;
}

function renderCharts() {
  const hist = state.history[state.selected] || [];
  const classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
  drawChart($("#chart-rate"), $("#legend-rate"),
    classes.map((c, i) => ({ name: c, color: CLASS_COLORS[i], values: hist.map((p) => p.cls[i]) }))
      .filter((s, i) => i === 1 || s.values.some((v) => v > 0)), "req/s");
  drawChart($("#chart-latency"), $("#legend-latency"), [
    { name: "p50", color: "#1f6feb", values: hist.map((p) => p.p50) },
    { name: "p99", color: "#8250df", values: hist.map((p) => p.p99) },
  ], "ms");
  drawChart($("#chart-faults"), $("#legend-faults"), [
    { name: "traps", color: "#cf222e", values: hist.map((p) => p.traps) },
    { name: "timeouts", color: "#bf8700", values: hist.map((p) => p.timeouts) },
  ], "/s");
}

// --- versions, activate, roll back, upload -------------------------------------

async function loadVersions() {
  const name = state.selected;
  if (!name) return;
  try {
    const data = await api("GET", `/handlers/${encodeURIComponent(name)}/versions`);
    if (name !== state.selected) return;
    $("#versions-error").textContent = "";
    $("#versions tbody").replaceChildren(...data.versions.slice().reverse().map((v) => {
      const action = v.active ? el("span", { class: "active-badge" }, "active")
        : el("button", { type: "button", class: "activate", "data-version": v.version, onclick: () => change(`/handlers/${encodeURIComponent(name)}/versions/${v.version}/activate`) }, "Activate");
      return el("tr", { "data-version": v.version, class: v.active ? "active" : "" },
        el("td", { class: "num" }, v.version),
        el("td", {}, v.uploaded_at),
        el("td", { class: "num" }, fmtBytes(v.size)),
        el("td", { class: "sha", title: v.sha256 }, v.sha256.slice(0, 16) + "…"),
        el("td", {}, v.source),
        el("td", {}, action));
    }));
  } catch (e) {
    $("#versions-error").textContent = e.message;
  }
}

async function change(path) {
  $("#versions-error").textContent = "";
  try {
    const info = await api("POST", path);
    $("#upload-status").textContent = `Version ${info.version} of ${info.handler} is active.`;
  } catch (e) {
    $("#versions-error").textContent = e.message;
  }
  await loadVersions();
}

function upload(file) {
  const name = state.selected;
  const status = $("#upload-status"), error = $("#upload-error"), bar = $("#upload-progress");
  if (!name || !file) return;
  error.textContent = "";
  status.textContent = `Uploading ${file.name} (${fmtBytes(file.size)}) to ${name}…`;
  bar.hidden = false; bar.value = 0;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/handlers/${encodeURIComponent(name)}/versions`);
  xhr.setRequestHeader("X-CSRF-Token", state.csrf);
  xhr.setRequestHeader("Content-Type", "application/wasm");
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
  xhr.onload = () => {
    bar.value = 100;
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status === 201 && data) {
      status.textContent = `Uploaded ${file.name}: version ${data.version} of ${data.handler} is active (sha256 ${data.sha256.slice(0, 12)}…).`;
    } else {
      status.textContent = "";
      error.textContent = `Refused (${xhr.status}): ${(data && data.error) || xhr.statusText}`;
    }
    bar.hidden = true;
    $("#upload-file").value = "";
    loadVersions();
  };
  xhr.onerror = () => { bar.hidden = true; status.textContent = ""; error.textContent = "The upload failed: the connection broke."; };
  xhr.send(file);
}

// --- guest log --------------------------------------------------------------

function appendLog(line) {
  const list = $("#log");
  const time = new Date(line.time_ms).toISOString().slice(11, 23);
  const item = el("li", { class: line.level, "data-handler": line.handler },
    el("span", { class: "meta" }, `${time} ${line.handler} v${line.version} #${line.request} ${line.stream} `), line.message);
  const filter = $("#log-filter").value;
  item.hidden = filter !== "" && filter !== line.handler;
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(item);
  while (list.children.length > 500) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function applyLogFilter() {
  const filter = $("#log-filter").value;
  for (const item of $("#log").children) item.hidden = filter !== "" && filter !== item.dataset.handler;
}

// --- routes -----------------------------------------------------------------

async function loadRoutes() {
  try {
    const data = await api("GET", "/routes");
    $("#routes tbody").replaceChildren(...data.routes.map((r) => el("tr", {},
      el("td", {}, el("code", {}, r.pattern)), el("td", {}, r.handler), el("td", {}, r.name || ""),
      el("td", {}, el("code", {}, Object.keys(r.settings || {}).length ? JSON.stringify(r.settings) : "")))));
    $("#routes-json").value = JSON.stringify(data.routes, null, 2);
  } catch (e) {
    $("#routes-error").textContent = e.message;
  }
}

async function saveRoutes() {
  $("#routes-error").textContent = ""; $("#routes-status").textContent = "";
  let routes;
  try { routes = JSON.parse($("#routes-json").value); } catch (e) {
    $("#routes-error").textContent = `Not JSON: ${e.message}`; return;
  }
  try {
    await api("PUT", "/routes", { routes });
    $("#routes-status").textContent = "Saved.";
    await loadRoutes();
  } catch (e) {
    $("#routes-error").textContent = e.message;
  }
}

// --- live feed --------------------------------------------------------------

function follow() {
  const feed = $("#feed");
  const source = new EventSource("/console/events");
  source.onopen = () => { feed.textContent = "live"; feed.classList.add("live"); };
  source.onerror = () => { feed.textContent = "reconnecting…"; feed.classList.remove("live"); };
  source.addEventListener("stats", (e) => {
    const stats = JSON.parse(e.data);
    state.handlers = stats.handlers;
    record(stats);
    if (!state.selected || !stats.handlers.some((h) => h.name === state.selected)) {
      const first = stats.handlers.find((h) => h.world !== "worker") || stats.handlers[0];
      if (first) select(first.name);
    }
    renderHandlers();
    renderCharts();
    for (const h of stats.handlers) {
      if (state.activeSeen[h.name] !== undefined && state.activeSeen[h.name] !== h.active_version && h.name === state.selected) loadVersions();
      state.activeSeen[h.name] = h.active_version;
    }
  });
  source.addEventListener("log", (e) => appendLog(JSON.parse(e.data)));
  source.addEventListener("skipped", (e) => { $("#log-note").textContent = `(${JSON.parse(e.data).lines} lines skipped: too many to show)`; });
  source.addEventListener("signed-out", () => { source.close(); location.assign("/console/login"); });
}

async function start() {
  const response = await fetch("/console/session", { credentials: "same-origin" });
  if (!response.ok) { location.assign("/console/login"); return; }
  state.csrf = (await response.json()).csrf_token;

  $("#logout").addEventListener("click", async () => {
    try { await api("POST", "/console/logout"); } finally { location.assign("/console/login"); }
  });
  $("#rollback").addEventListener("click", () => change(`/handlers/${encodeURIComponent(state.selected)}/rollback`));
  $("#upload-file").addEventListener("change", (e) => upload(e.target.files[0]));
  const zone = $("#dropzone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); upload(e.dataTransfer.files[0]); });
  $("#log-filter").addEventListener("change", applyLogFilter);
  $("#log-clear").addEventListener("click", () => $("#log").replaceChildren());
  $("#routes-save").addEventListener("click", saveRoutes);
  loadRoutes();
  follow();
}

document.addEventListener("DOMContentLoaded", start);
