// Corral's web UI: plain JavaScript, no build step, no external assets.
//
// Everything comes from the gateway's REST routes. The task list and the
// nodes follow /v1/events (Server-Sent Events, read with fetch so a bearer
// token can travel in the Authorization header, which EventSource cannot
// send); logs follow /v1/tasks/{id}/logs?follow=true the same way. When the
// manager runs with ACLs the first 401 asks for a token once (kept in
// localStorage); what the token's role may do is learnt by asking the
// gateway things that change nothing (an empty batch submit, a drain of a
// node that does not exist) and the UI hides what would be refused.
"use strict";

const TOKEN_KEY = "corral.token";
const STATES = ["PENDING", "SCHEDULED", "RUNNING", "COMPLETED", "FAILED", "STOPPED", "LOST", "SKIPPED"];
const ACTIVE = new Set(["PENDING", "SCHEDULED", "RUNNING"]);
const SECRET_KEY = /secret|password|passwd|token|api[_-]?key|credential/i;

const store = {
  tasks: new Map(),        // id -> task (proto3 JSON)
  events: new Map(),       // task id -> [event], newest last (seen since the page opened)
  nodes: new Map(),        // id -> node
  lastIndex: 0,            // last event index seen: the stream resumes after it
  caps: { read: true, submit: true, operate: true },
  filter: "ALL",
  search: "",
};
let view = null;           // the current view: {render(), onEvent(e), close()}

// -- helpers ---------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const short = (s, prefix) => (s || "").replace(prefix, "");
const stateOf = (t) => short(t.status && t.status.state, "TASK_STATE_") || "PENDING";
const nodeStatus = (n) => short(n.status, "NODE_STATUS_") || "READY";
const badge = (s, testid) => h("span", { class: `badge s-${s}`, "data-testid": testid }, s);
const when = (ts) => (ts ? new Date(ts).toLocaleString() : "");

function ago(ts) {
  if (!ts) return "never";
  const s = Math.max(0, (Date.now() - new Date(ts).getTime()) / 1000);
  if (s < 60) return `${s.toFixed(1)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

function size(n) {
  n = Number(n || 0);
  for (const [unit, scale] of [["Gi", 2 ** 30], ["Mi", 2 ** 20], ["Ki", 2 ** 10]]) {
    if (n >= scale) return `${(n / scale).toFixed(1)}${unit}`;
  }
  return `${n}B`;
}

function pairs(text, field) {
  const out = {};
  for (const line of (text || "").split(/[\n,]/)) {
    const t = line.trim();
    if (!t) continue;
    const i = t.indexOf("=");
    if (i <= 0) throw new Error(`${field}: "${t}" is not KEY=VALUE`);
    out[t.slice(0, i).trim()] = t.slice(i + 1).trim();
  }
  return out;
}

// A command line as argv: whitespace separates, quotes group, backslash escapes.
function argv(line) {
  const out = [];
  let cur = null, quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c; cur = cur || "";
    } else if (c === "\\" && i + 1 < line.length) {
      cur = (cur || "") + line[++i];
    } else if (/\s/.test(c)) {
      if (cur !== null) { out.push(cur); cur = null; }
    } else cur = (cur || "") + c;
  }
  if (quote) throw new Error(`command: unclosed ${quote} quote`);
  if (cur !== null) out.push(cur);
  return out;
}

// A response body for people: JSON indented, other text as it came, bytes decoded.
function bodyText(result) {
  const text = rawBody(result);
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (err) { return text; }
}

function rawBody(result) {
  if (result.bodyText) return result.bodyText;
  if (!result.body) return "";
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(result.body), (c) => c.charCodeAt(0)));
  } catch (err) {
    return `(${result.body.length} bytes of base64)`;
  }
}

function banner(message) {
  const el = document.getElementById("banner");
  el.textContent = message || "";
  el.hidden = !message;
}

// -- the API -----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function headers(extra) {
  const out = Object.assign({}, extra);
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) out.Authorization = `Bearer ${token}`;
  return out;
}

async function request(method, path, body, signal) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const reply = await fetch(path, init);
  if (reply.status === 401) {
    askToken(localStorage.getItem(TOKEN_KEY) ? "That token was refused (unknown or revoked)." : "");
  }
  return reply;
}

async function api(method, path, body) {
  const reply = await request(method, path, body);
  const text = await reply.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (err) { data = { message: text }; }
  if (!reply.ok) throw new ApiError(reply.status, data.message || `${reply.status} ${reply.statusText}`);
  return data;
}

// Read a streaming response chunk by chunk until it ends or ``signal`` aborts.
async function readStream(path, onText, signal, onOpen) {
  const reply = await request("GET", path, undefined, signal);
  if (!reply.ok) {
    let message = `${reply.status}`;
    try { message = (await reply.json()).message || message; } catch (err) { /* not JSON */ }
    throw new ApiError(reply.status, message);
  }
  if (onOpen) onOpen();
  const reader = reply.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    onText(decoder.decode(value, { stream: true }));
  }
}

// -- the event stream -------------------------------------------------------------

let streamAbort = null;

async function followEvents() {
  const live = document.getElementById("live");
  let backoff = 500;
  for (;;) {
    streamAbort = new AbortController();
    let buffer = "";
    try {
      const from = store.lastIndex ? `?from_index=${store.lastIndex + 1}` : "";
      const opened = () => {
        live.className = "live on"; live.textContent = "live"; backoff = 500;
        // Changes made before the stream opened are read once more, then it keeps up.
        if (!from) loadTasks().then(() => view && view.reload && view.reload()).catch(() => {});
      };
      await readStream(`/v1/events${from}`, (text) => {
        buffer += text;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data && !block.startsWith("event: error")) onEvent(JSON.parse(data).event);
        }
      }, streamAbort.signal, opened);
    } catch (err) {
      if (err.name === "AbortError") return;
      // A manager that restarted with other history refuses our index: start over from now.
      if (err.status === 400) store.lastIndex = 0;
    }
    live.className = "live off"; live.textContent = "reconnecting";
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 5000);
  }
}

function onEvent(event) {
  store.lastIndex = Math.max(store.lastIndex, Number(event.index || 0));
  if (event.task) {
    store.tasks.set(event.task.id, event.task);
    const list = store.events.get(event.task.id) || [];
    list.push(event);
    if (list.length > 200) list.shift();
    store.events.set(event.task.id, list);
  }
  if (event.node) store.nodes.set(event.node.id, event.node);
  if (view && view.onEvent) view.onEvent(event);
}

// -- tokens and what they may do ---------------------------------------------------------

let asking = false;
function askToken(message) {
  const dialog = document.getElementById("token-dialog");
  document.getElementById("token-error").textContent = message;
  if (!asking) { asking = true; dialog.showModal(); }
}

document.getElementById("token-form").addEventListener("submit", () => {
  localStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
  asking = false;
  start();
});
document.getElementById("signout").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  location.reload();
});

// Ask what the token may do with calls that change nothing: an empty batch is
// refused as invalid (400) when submitting is allowed, and a drain of a node
// that does not exist is a 404 when operating is.
async function learnCaps() {
  const denied = async (method, path, body) => (await request(method, path, body)).status === 403;
  store.caps.submit = !(await denied("POST", "/v1/tasks:batch", { tasks: [] }));
  store.caps.operate = !(await denied("POST", "/v1/nodes/~corral-ui-probe:drain", {}));
  for (const el of document.querySelectorAll("[data-needs]")) {
    el.hidden = !store.caps[el.dataset.needs];
  }
}

// -- views ---------------------------------------------------------------------

function tasksView(main) {
  const chips = h("div", { class: "toolbar", "data-testid": "state-filters" },
    ["ALL", ...STATES].map((s) => h("button", {
      class: `chip ${store.filter === s ? "on" : ""}`, "data-state": s,
      onclick: () => { store.filter = s; render(); },
    }, s)),
    h("input", {
      type: "search", placeholder: "search name, id, label", value: store.search,
      "data-testid": "task-search",
      oninput: (e) => { store.search = e.target.value; renderRows(); },
    }));
  const body = h("tbody");
  const table = h("table", { "data-testid": "tasks" },
    h("thead", {}, h("tr", {}, ["Name", "State", "Node", "Created", "Message"].map((t) => h("th", {}, t)))),
    body);
  main.append(h("h1", {}, "Tasks"), chips, table);

  function matches(t) {
    if (store.filter !== "ALL" && stateOf(t) !== store.filter) return false;
    const q = store.search.trim().toLowerCase();
    if (!q) return true;
    const labels = Object.entries(t.spec.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    return `${t.spec.name} ${t.id} ${labels}`.toLowerCase().includes(q);
  }
  function renderRows() {
    const nodes = store.nodes;
    const rows = [...store.tasks.values()].filter(matches)
      .sort((a, b) => (b.status.createdAt || "").localeCompare(a.status.createdAt || ""))
      .slice(0, 500)
      .map((t) => h("tr", { class: "clickable", "data-task": t.spec.name, onclick: () => { location.hash = `#/tasks/${t.id}`; } },
        h("td", {}, h("a", { href: `#/tasks/${t.id}` }, t.spec.name)),
        h("td", {}, badge(stateOf(t), "task-state")),
        h("td", { class: "muted" }, (nodes.get(t.status.nodeId) || {}).name || t.status.nodeId || ""),
        h("td", { class: "muted" }, when(t.status.createdAt)),
        h("td", {}, t.status.message || "")));
    body.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "no tasks"))]));
  }
  let pending = false;
  renderRows();
  return {
    reload: renderRows,
    onEvent(e) {
      if (!e.task || pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; renderRows(); });
    },
  };
}

// The later of two versions of a task (events and replies can cross).
function newer(a, b) {
  if (!a) return b;
  if (!b) return a;
  const key = (t) => [Number(t.status.generation || 0), Date.parse(t.status.updatedAt || 0) || 0];
  const [ga, ua] = key(a), [gb, ub] = key(b);
  return gb > ga || (gb === ga && ub > ua) ? b : a;
}

function secretSafe(spec) {
  const copy = JSON.parse(JSON.stringify(spec));
  for (const field of ["secretEnv", "secret_env"]) {
    if (copy[field]) for (const k of Object.keys(copy[field])) copy[field][k] = "••••••";
  }
  for (const k of Object.keys(copy.env || {})) if (SECRET_KEY.test(k)) copy.env[k] = "••••••";
  return copy;
}

function taskView(main, id) {
  const abort = new AbortController();
  const head = h("h1", {});
  const status = h("dl", { class: "kv", "data-testid": "task-status" });
  const spec = h("pre", { class: "light", "data-testid": "task-spec" });
  const attempts = h("ul", { class: "timeline", "data-testid": "attempts" });
  const why = h("div", { "data-testid": "explain" });
  const events = h("ul", { class: "timeline", "data-testid": "task-events" });
  const logs = h("pre", { "data-testid": "logs" }, "");
  main.append(head,
    h("div", { class: "cols" },
      h("div", {}, h("div", { class: "card" }, h("h2", {}, "Status"), status),
        h("div", { class: "card", "data-testid": "explain-card" }, h("h2", {}, "Placement"), why),
        h("div", { class: "card" }, h("h2", {}, "Attempts"), attempts)),
      h("div", {}, h("div", { class: "card" }, h("h2", {}, "Logs"), logs),
        h("div", { class: "card" }, h("h2", {}, "Events"), events),
        h("div", { class: "card" }, h("h2", {}, "Spec"), spec))));

  let task = null, logGeneration = null, logsRunning = false;

  function renderTask() {
    const s = stateOf(task);
    const stop = store.caps.submit && ACTIVE.has(s)
      ? h("button", { class: "danger", "data-testid": "stop-task", onclick: stopTask }, "Stop") : null;
    head.replaceChildren(...[task.spec.name, badge(s, "detail-state"), stop].filter(Boolean));
    const st = task.status;
    const rows = [["id", task.id], ["state", s], ["message", st.message], ["node", (store.nodes.get(st.nodeId) || {}).name || st.nodeId],
      ["generation", st.generation], ["attempts", st.attempts], ["restarts", st.restartCount], ["exit code", st.exitCode],
      ["health", short(st.health, "HEALTH_").replace("UNSPECIFIED", "")], ["created", when(st.createdAt)], ["started", when(st.startedAt)], ["finished", when(st.finishedAt)]];
    status.replaceChildren(...rows.filter(([, v]) => v !== undefined && v !== "" && v !== null)
      .flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, String(v))]));
    spec.textContent = JSON.stringify(secretSafe(task.spec), null, 2);
    const seen = store.events.get(task.id) || [];
    events.replaceChildren(...(seen.length ? seen : []).slice(-50).map((e) => h("li", {},
      h("span", { class: "muted" }, new Date(e.time).toLocaleTimeString()), " ", e.kind, " ",
      e.task ? badge(stateOf(e.task)) : "", " ", e.message || (e.task && e.task.status.message) || "")));
    if (!seen.length) events.replaceChildren(h("li", { class: "muted" }, "no events since this page opened"));
  }

  async function stopTask() {
    try {
      await api("POST", `/v1/tasks/${id}:stop`, { reason: "stopped from the web UI" });
    } catch (err) { banner(err.message); }
  }

  async function loadAttempts() {
    try {
      const data = await api("GET", `/v1/tasks/${id}/attempts`);
      const list = data.attempts || [];
      attempts.replaceChildren(...(list.length ? list.map((a) => h("li", {},
        h("b", {}, `#${a.generation} `), badge(short(a.state, "TASK_STATE_")), " on ",
        (store.nodes.get(a.nodeId) || {}).name || a.nodeId, h("div", { class: "muted" },
          `${when(a.createdAt)} → ${a.finishedAt ? when(a.finishedAt) : "now"}`,
          a.exitCode !== undefined ? ` · exit ${a.exitCode}` : "", a.message ? ` · ${a.message}` : ""))) :
        [h("li", { class: "muted" }, "not placed yet")]));
    } catch (err) { attempts.replaceChildren(h("li", { class: "error" }, err.message)); }
  }

  async function loadExplain() {
    try {
      const data = await api("GET", `/v1/tasks/${id}:explain`);
      const rows = (data.nodes || []).map((n) => h("tr", { "data-node": n.nodeName },
        h("td", {}, n.nodeName, n.nodeId === data.chosenNodeId ? " (would be chosen)" : ""),
        h("td", {}, badge(short(n.status, "NODE_STATUS_"))),
        h("td", {}, n.fits ? "yes" : "no"),
        h("td", { "data-testid": "reasons" }, (n.reasons || []).map((r) => h("div", { "data-kind": r.kind }, r.message)))));
      why.replaceChildren(h("p", { "data-testid": "explain-summary" }, data.summary || ""),
        h("table", {}, h("thead", {}, h("tr", {}, ["Node", "Status", "Fits", "Why not"].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows)));
    } catch (err) { why.replaceChildren(h("p", { class: "error" }, err.message)); }
  }

  async function followLogs() {
    const generation = Number(task.status.generation || 0);
    if (!generation && !logs.textContent) logs.textContent = "(not placed yet: no output)";
    if (!generation || logsRunning || generation === logGeneration) return;
    logGeneration = generation; logsRunning = true;
    logs.textContent = "";
    try {
      await readStream(`/v1/tasks/${id}/logs?follow=true&generation=${generation}`, (text) => {
        const atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
        logs.textContent += text;
        if (atEnd) logs.scrollTop = logs.scrollHeight;
      }, abort.signal);
    } catch (err) {
      if (err.name !== "AbortError") logs.textContent += `\n[${err.message}]`;
    } finally {
      logsRunning = false;
    }
    if (!abort.signal.aborted && Number(task.status.generation) !== generation) followLogs();
  }

  function refresh() {
    renderTask();
    loadAttempts();
    if (stateOf(task) === "PENDING") loadExplain();
    else {
      const node = (store.nodes.get(task.status.nodeId) || {}).name || task.status.nodeId;
      why.replaceChildren(h("p", { class: "muted" }, node ? `placed on ${node}` : "not pending"));
    }
    followLogs();
  }

  // The reply may be older than an event that arrived while it travelled: keep the newer.
  api("GET", `/v1/tasks/${id}`).then((t) => { task = newer(task, t); store.tasks.set(t.id, task); refresh(); })
    .catch((err) => head.replaceChildren(h("span", { class: "error" }, err.message)));

  return {
    onEvent(e) {
      if (!e.task || e.task.id !== id) return;
      task = newer(task, e.task);
      refresh();
    },
    close() { abort.abort(); },
  };
}

function nodesView(main) {
  const body = h("tbody");
  main.append(h("h1", {}, "Nodes"), h("table", { "data-testid": "nodes" },
    h("thead", {}, h("tr", {}, ["Name", "Status", "CPU allocated", "Memory allocated", "Tasks", "Heartbeat", "Runtimes", "Labels", ""].map((t) => h("th", {}, t)))),
    body));
  const bar = (used, cap) => {
    const share = cap > 0 ? Math.min(1, used / cap) : 0;
    return h("div", { class: "bar", title: `${Math.round(share * 100)}%` }, h("span", { style: `width:${share * 100}%` }));
  };
  async function act(node, verb) {
    try { await api("POST", `/v1/nodes/${node.id}:${verb}`, {}); await load(); } catch (err) { banner(err.message); }
  }
  function renderRows() {
    body.replaceChildren(...[...store.nodes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((n) => {
      const s = nodeStatus(n), cap = n.capacity || {}, used = n.allocated || {};
      const button = !store.caps.operate ? null : s === "DRAINING"
        ? h("button", { class: "secondary", "data-testid": "undrain", onclick: () => act(n, "undrain") }, "Undrain")
        : s === "READY" ? h("button", { class: "secondary", "data-testid": "drain", onclick: () => act(n, "drain") }, "Drain") : null;
      return h("tr", { "data-node": n.name },
        h("td", {}, n.name, h("div", { class: "muted mono" }, n.address)),
        h("td", {}, badge(s, "node-status")),
        h("td", {}, bar(used.cpu || 0, cap.cpu || 0), h("span", { class: "muted" }, `${(used.cpu || 0).toFixed(2)} / ${cap.cpu || 0} cores`)),
        h("td", {}, bar(Number(used.memoryBytes || 0), Number(cap.memoryBytes || 0)), h("span", { class: "muted" }, `${size(used.memoryBytes)} / ${size(cap.memoryBytes)}`)),
        h("td", {}, n.taskCount || 0),
        h("td", { "data-testid": "heartbeat" }, ago(n.lastHeartbeat)),
        h("td", { class: "muted" }, (n.runtimes || []).join(", ")),
        h("td", { class: "muted" }, Object.entries(n.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ")),
        h("td", {}, button));
    }));
  }
  async function load() {
    try {
      const data = await api("GET", "/v1/nodes");
      for (const n of data.nodes || []) store.nodes.set(n.id, n);
      renderRows();
    } catch (err) { banner(err.message); }
  }
  load();
  // Heartbeats are not events: the age and the stats are read again every second.
  const timer = setInterval(load, 1000);
  return { onEvent(e) { if (e.node) renderRows(); }, close() { clearInterval(timer); } };
}

function jobsView(main) {
  const body = h("tbody");
  const form = h("form", { class: "grid", "data-needs": "submit", "data-testid": "job-form" },
    h("label", { for: "job-cmd" }, "Command"), h("input", { id: "job-cmd", name: "cmd", placeholder: "echo hello; sleep 2; echo done", required: true }),
    h("label", { for: "job-name" }, "Name (optional)"), h("input", { id: "job-name", name: "name" }),
    h("span"), h("button", { type: "submit" }, "Run job"));
  form.hidden = !store.caps.submit;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const job = await api("POST", "/v1/jobs", { cmd: form.cmd.value, name: form.name.value || undefined });
      location.hash = `#/tasks/${job.taskId}`;
    } catch (err) { banner(err.message); }
  });
  main.append(h("h1", {}, "Jobs"), h("div", { class: "card" }, h("h2", {}, "Run a job"), form),
    h("table", { "data-testid": "jobs" }, h("thead", {}, h("tr", {}, ["Name", "Command", "State", "Created"].map((t) => h("th", {}, t)))), body));
  async function load() {
    try {
      const data = await api("GET", "/v1/jobs");
      body.replaceChildren(...(data.jobs || []).map((j) => h("tr", { class: "clickable", onclick: () => { location.hash = `#/tasks/${j.taskId}`; } },
        h("td", {}, j.name), h("td", { class: "mono" }, j.cmd), h("td", {}, badge(short(j.state, "TASK_STATE_"))), h("td", { class: "muted" }, when(j.createdAt)))));
    } catch (err) { body.replaceChildren(h("tr", {}, h("td", { class: "error", colspan: 4 }, err.message))); }
  }
  load();
  return { onEvent(e) { if (e.task && e.kind === "task.state") load(); } };
}

function schedulesView(main) {
  const list = h("div", { "data-testid": "schedules" });
  main.append(h("h1", {}, "Schedules"), list);
  async function act(name, verb) {
    try { await api("POST", `/v1/schedules/${name}:${verb}`, {}); await load(); } catch (err) { banner(err.message); }
  }
  async function runs(name, into) {
    try {
      const data = await api("GET", `/v1/schedules/${name}/runs`);
      into.replaceChildren(...(data.runs || []).map((r) => h("div", { class: "card" },
        h("div", {}, badge(short(r.outcome, "RUN_OUTCOME_")), " ", r.trigger, " · ", when(r.startedAt), r.finishedAt ? ` → ${when(r.finishedAt)}` : ""),
        (r.results || []).map((res) => h("div", {},
          h("p", {}, h("b", {}, res.name), ` · ${res.ok ? "ok" : "not ok"} · status ${res.statusCode || "-"} · ${(res.latencyMs || 0).toFixed(0)} ms`, res.error ? ` · ${res.error}` : ""),
          h("pre", { class: "light", "data-testid": "run-body" }, bodyText(res) + (res.bodyTruncated ? "\n[truncated]" : "")))))));
      if (!(data.runs || []).length) into.replaceChildren(h("p", { class: "muted" }, "no runs yet"));
    } catch (err) { into.replaceChildren(h("p", { class: "error" }, err.message)); }
  }
  async function load() {
    try {
      const data = await api("GET", "/v1/schedules");
      list.replaceChildren(...(data.schedules || []).map((s) => {
        const into = h("div");
        const trigger = s.cron ? `cron ${s.cron.expression || JSON.stringify(s.cron)}` : `every ${s.interval}`;
        const card = h("div", { class: "card", "data-schedule": s.name },
          h("h2", {}, s.name, " ", badge(short(s.status && s.status.state, "SCHEDULE_STATE_"))),
          h("p", { class: "muted" }, trigger, s.status && s.status.nextRunAt ? ` · next ${when(s.status.nextRunAt)}` : ""),
          h("div", { class: "toolbar" },
            h("button", { class: "secondary", "data-needs": "operate", onclick: () => act(s.name, "start") }, "Start"),
            h("button", { class: "secondary", "data-needs": "operate", onclick: () => act(s.name, "stop") }, "Stop"),
            h("button", { class: "secondary", "data-needs": "submit", onclick: () => act(s.name, "run").then(() => runs(s.name, into)) }, "Run once")),
          into);
        runs(s.name, into);
        return card;
      }));
      if (!(data.schedules || []).length) list.replaceChildren(h("p", { class: "muted" }, "no schedules"));
      learnVisibility(list);
    } catch (err) { list.replaceChildren(h("p", { class: "error" }, err.message)); }
  }
  load();
  return {};
}

function environmentsView(main) {
  const body = h("tbody");
  main.append(h("h1", {}, "Environments"), h("table", { "data-testid": "environments" },
    h("thead", {}, h("tr", {}, ["replId", "Language", "Runtime", "State", "Host", "Ports", "Created"].map((t) => h("th", {}, t)))), body));
  async function load() {
    try {
      const data = await api("GET", "/v1/environments");
      body.replaceChildren(...(data.environments || []).map((e) => h("tr", { class: "clickable", "data-env": e.replId, onclick: () => { if (e.taskId) location.hash = `#/tasks/${e.taskId}`; } },
        h("td", {}, e.replId), h("td", {}, e.language), h("td", {}, e.runtime), h("td", {}, badge(short(e.state, "TASK_STATE_")), " ", h("span", { class: "muted" }, e.message || "")),
        h("td", { class: "mono" }, e.host || ""), h("td", { class: "mono" }, (e.ports || []).map((p) => `${p.hostPort}→${p.containerPort}`).join(", ")),
        h("td", { class: "muted" }, when(e.createdAt)))));
      if (!(data.environments || []).length) body.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "no environments")));
    } catch (err) { body.replaceChildren(h("tr", {}, h("td", { class: "error", colspan: 7 }, err.message))); }
  }
  load();
  return { onEvent(e) { if (e.task && e.kind === "task.state") load(); } };
}

function submitView(main) {
  const field = (label, input) => [h("label", { for: input.id }, label), input];
  const form = h("form", { class: "grid", "data-testid": "task-form" },
    field("Name", h("input", { id: "f-name", name: "name", required: true, placeholder: "hello" })),
    field("Runtime", h("select", { id: "f-runtime", name: "runtime" }, ["process", "docker", "kubernetes", "http", "fake"].map((r) => h("option", { value: r }, r)))),
    field("Command", h("input", { id: "f-command", name: "command", placeholder: "sh -c 'echo hello'" })),
    field("Image", h("input", { id: "f-image", name: "image", placeholder: "for docker and kubernetes" })),
    field("Environment", h("textarea", { id: "f-env", name: "env", placeholder: "KEY=value, one per line" })),
    field("CPU (cores)", h("input", { id: "f-cpu", name: "cpu", type: "number", step: "0.1", min: "0" })),
    field("Memory (MiB)", h("input", { id: "f-memory", name: "memory", type: "number", min: "0" })),
    field("Labels", h("input", { id: "f-labels", name: "labels", placeholder: "team=web, tier=batch" })),
    field("Constraints", h("input", { id: "f-constraints", name: "constraints", placeholder: "node labels: zone=a" })),
    field("Restart", h("select", { id: "f-restart", name: "restart" },
      [["never", "RESTART_MODE_NEVER"], ["on failure", "RESTART_MODE_ON_FAILURE"], ["always", "RESTART_MODE_ALWAYS"]].map(([t, v]) => h("option", { value: v }, t)))),
    h("span"), h("button", { type: "submit", "data-testid": "submit-task" }, "Submit task"),
    h("span"), h("p", { class: "error", id: "f-error", "data-testid": "form-error" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = form.querySelector("#f-error");
    error.textContent = "";
    try {
      const spec = { name: form.name.value.trim(), runtime: form.runtime.value };
      const command = argv(form.command.value);
      if (command.length) spec.command = command;
      if (form.image.value.trim()) spec.image = form.image.value.trim();
      const env = pairs(form.env.value, "env");
      if (Object.keys(env).length) spec.env = env;
      const resources = {};
      if (form.cpu.value) resources.cpu = Number(form.cpu.value);
      if (form.memory.value) resources.memoryBytes = String(Math.round(Number(form.memory.value) * 2 ** 20));
      if (Object.keys(resources).length) spec.resources = resources;
      const labels = pairs(form.labels.value, "labels");
      const constraints = pairs(form.constraints.value, "constraints");
      if (Object.keys(labels).length) spec.labels = labels;
      if (Object.keys(constraints).length) spec.constraints = constraints;
      spec.restartPolicy = { mode: form.restart.value };
      const task = await api("POST", "/v1/tasks", { spec });
      store.tasks.set(task.id, task);
      location.hash = `#/tasks/${task.id}`;
    } catch (err) { error.textContent = err.message; }
  });
  main.append(h("h1", {}, "Submit a task"), h("div", { class: "card" }, form));
  return {};
}

function learnVisibility(root) {
  for (const el of root.querySelectorAll("[data-needs]")) el.hidden = !store.caps[el.dataset.needs];
}

// -- routing ---------------------------------------------------------------------

const ROUTES = {
  tasks: tasksView, nodes: nodesView, jobs: jobsView, schedules: schedulesView,
  environments: environmentsView, submit: submitView,
};

function render() {
  if (view && view.close) view.close();
  banner("");
  const main = document.getElementById("view");
  main.replaceChildren();
  const [, page = "tasks", id] = location.hash.split("/");
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === page);
  if (page === "tasks" && id) view = taskView(main, decodeURIComponent(id));
  else view = (ROUTES[page] || tasksView)(main);
  learnVisibility(main);
}

async function loadTasks() {
  const data = await api("GET", "/v1/tasks?page_size=500");
  for (const t of data.tasks || []) store.tasks.set(t.id, newer(store.tasks.get(t.id), t));
}

async function start() {
  try {
    await loadTasks();
    const nodes = await api("GET", "/v1/nodes");
    for (const n of nodes.nodes || []) store.nodes.set(n.id, n);
  } catch (err) {
    if (err.status === 401) return;  // the token dialog is open; start() runs again after it
    if (err.status === 403) { askToken("This token may not read tasks."); return; }
    banner(err.message);
  }
  document.getElementById("signout").hidden = !localStorage.getItem(TOKEN_KEY);
  await learnCaps();
  render();
  if (streamAbort) streamAbort.abort();
  followEvents();
}

window.addEventListener("hashchange", render);
start();
