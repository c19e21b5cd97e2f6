// The pages of modelyard's web UI. Plain DOM building: every value from the workspace (names,
// tags, parameters, log lines) goes into the page as text (textContent / text nodes), never as
// HTML, so a run named <img src=x onerror=alert(1)> shows as those characters.
"use strict";

const POLL_MS = 1000;
const FINAL = new Set(["Completed", "Failed", "Canceled"]);
const STATUSES = ["NotStarted", "Queued", "Preparing", "Provisioning", "Starting", "Running",
  "Finalizing", "CancelRequested", "NotResponding", "Completed", "Failed", "Canceled"];
// Where the UI is served: "/" by `modelyard ui`, "/ui/<workspace>/" by a server. Paths in
// this file are written from "/" and put below it.
const BASE = (document.querySelector('meta[name="modelyard-base"]') || {}).content || "/";
const url = (path) => (path.startsWith("/") ? BASE + path.slice(1) : path);
const COLORS = ["#2e62d9", "#d9482e", "#1f9d55", "#9b51e0", "#e0a100", "#0fa5b5", "#c2185b", "#5d6d7e"];

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "href" || key === "src") node.setAttribute(key, url(String(value)));
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

async function api(path) {
  const response = await fetch(url(path), { credentials: "same-origin" });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response.json();
}

const q = encodeURIComponent;
const runLink = (run) => el("a", { href: `/runs/${q(run.id)}`, text: run.displayName || run.id });
const badge = (status) => el("span", { class: `badge status-${status}`, text: status });
const errorBox = (error) => el("div", { class: "error", role: "alert", text: String(error.message || error) });

function fmtTime(t) {
  if (t === null || t === undefined) return "–";
  const d = new Date(t * 1000);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}
function fmtDuration(run) {
  if (!run.startedAt) return "–";
  const seconds = (run.endedAt || Date.now() / 1000) - run.startedAt;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
function fmtValue(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : Number(v.toPrecision(6)).toString();
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function keyValueTable(values, empty) {
  const entries = Object.entries(values || {});
  if (!entries.length) return el("p", { class: "muted", text: empty });
  return el("table", { class: "kv" }, el("tbody", {},
    entries.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: fmtValue(v) })))));
}

function table(headers, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, headers.map((h) => (h instanceof Node ? h : el("th", { text: h }))))),
    el("tbody", {}, rows));
}

// -- charts --------------------------------------------------------------------------------

function lineChart(container, title, xs, series, opts) {
  const width = (opts && opts.width) || 560;
  const options = {
    title, width, height: (opts && opts.height) || 260,
    scales: { x: { time: Boolean(opts && opts.time) } },
    series: [{ label: (opts && opts.xLabel) || "step" },
      ...series.map((s, i) => ({ label: s.label, stroke: COLORS[(s.color ?? i) % COLORS.length], width: 1.5, spanGaps: true,
        points: { show: xs.length < 60 },
        ...(opts && opts.steps ? { paths: uPlot.paths.stepped({ align: 1 }) } : {}) }))],
    legend: { live: true },
  };
  // Steps are whole numbers: no tick between two of them.
  if (!(opts && opts.time)) options.axes = [{ values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t.toLocaleString() : "")) }, {}];
  return new uPlot(options, [xs, ...series.map((s) => s.values)], container);
}

function metricChart(runId, metric) {
  const box = el("div", { class: "chart", dataset: { metric: metric.name, points: "0" } });
  const head = el("div", { class: "title" }, el("span", { text: metric.name }),
    el("a", { href: `/api/runs/${q(runId)}/series.csv?name=${q(metric.name)}`, text: "CSV", download: "" }));
  const note = el("div", { class: "muted note" });
  const area = el("div");
  box.append(head, area, note);
  let plot = null;
  let count = -1;
  async function refresh(newCount) {
    if (newCount === count) return;
    const data = await api(`/api/runs/${q(runId)}/series?name=${q(metric.name)}`);
    count = data.count;
    if (!plot) plot = lineChart(area, null, data.steps, [{ label: metric.name, values: data.values }]);
    else plot.setData([data.steps, data.values]);
    box.dataset.points = String(data.count);
    box.dataset.shown = String(data.steps.length);
    note.textContent = data.downsampled
      ? `${data.count.toLocaleString()} points, ${data.steps.length.toLocaleString()} shown (extremes kept)`
      : `${data.count.toLocaleString()} points`;
  }
  return { node: box, refresh };
}

// -- pages ---------------------------------------------------------------------------------

async function experimentsPage(main) {
  const list = await api("/api/experiments");
  main.append(el("h1", { text: "Experiments" }));
  if (!list.length) { main.append(el("p", { class: "muted", text: "No experiments yet: a run makes its experiment." })); return; }
  main.append(table(["experiment", "runs", "last run", "last run created", "runs by status"],
    list.map((e) => el("tr", {},
      el("td", {}, el("a", { href: `/experiments/${q(e.name)}`, text: e.name })),
      el("td", { class: "num", text: e.runs }),
      el("td", {}, e.lastRun ? [runLink(e.lastRun), " ", badge(e.lastRun.status)] : "–"),
      el("td", { text: e.lastRun ? fmtTime(e.lastRun.createdAt) : "–" }),
      el("td", {}, Object.entries(e.statusCounts).map(([s, n]) => el("span", { class: `badge status-${s}`, text: `${s} ${n}` }))))),
    { id: "experiments" }));
}

function runsColumns(data) {
  return [
    { key: "number", label: "#", get: (r) => r.number, num: true },
    { key: "name", label: "run", get: (r) => r.displayName || r.id, cell: (r) => runLink(r) },
    { key: "status", label: "status", get: (r) => r.status, cell: (r) => badge(r.status) },
    { key: "created", label: "created", get: (r) => r.createdAt, show: fmtTime, cls: "time" },
    { key: "duration", label: "duration", get: (r) => (r.startedAt ? (r.endedAt || Date.now() / 1000) - r.startedAt : null), cell: (r) => fmtDuration(r), num: true },
    { key: "tags", label: "tags", get: (r) => Object.entries(r.tags).map(([k, v]) => `${k}=${v}`).join(", ") },
    ...data.parameterNames.map((p) => ({ key: `p:${p}`, label: p, optional: "parameter", get: (r) => r.parameters[p], num: true })),
    ...data.metricNames.map((m) => ({ key: `m:${m}`, label: m, optional: "metric", get: (r) => r.metrics[m], num: true })),
  ];
}

function compareValues(a, b) {
  const missing = (v) => v === undefined || v === null || v === "";
  if (missing(a) && missing(b)) return 0;
  if (missing(a)) return 1;
  if (missing(b)) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  const na = Number(a), nb = Number(b);
  if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
  return String(a).localeCompare(String(b));
}

async function experimentPage(main, name) {
  const params = new URLSearchParams(location.search);
  main.append(el("h1", {}, "Runs of ", el("span", { text: name })));
  const status = el("select", { name: "status", id: "filter-status" },
    el("option", { value: "", text: "any status" }), STATUSES.map((s) => el("option", { value: s, text: s })));
  status.value = params.get("status") || "";
  const tag = el("input", { name: "tag", id: "filter-tag", placeholder: "key or key=value", value: params.get("tag") || "" });
  const prop = el("input", { name: "property", id: "filter-property", placeholder: "key or key=value", value: params.get("property") || "" });
  const metric = el("input", { name: "metric", id: "filter-metric", class: "wide", placeholder: "validation_acc > 0.9 and loss < 0.2", value: params.get("metric") || "" });
  const form = el("form", { class: "filters", id: "filters" },
    el("label", {}, "status", status), el("label", {}, "tag", tag), el("label", {}, "property", prop),
    el("label", {}, "metric expression", metric), el("button", { type: "submit", text: "Filter" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [k, input] of [["status", status], ["tag", tag], ["property", prop], ["metric", metric]]) {
      if (input.value.trim()) next.set(k, input.value.trim());
    }
    location.search = next.toString();
  });
  main.append(form);
  const query = new URLSearchParams();
  for (const k of ["status", "tag", "property", "metric"]) if (params.get(k)) query.set(k, params.get(k));
  let data;
  try { data = await api(`/api/experiments/${q(name)}/runs?${query}`); } catch (error) { main.append(errorBox(error)); return; }

  const columns = runsColumns(data);
  const shown = new Set(columns.filter((c) => !c.optional || c.optional === "metric").map((c) => c.key));
  for (const c of columns) if (c.optional === "parameter" && data.parameterNames.length <= 6) shown.add(c.key);
  let sort = { key: "number", desc: true };
  const selected = new Set();
  const chooser = el("div", { class: "columns", id: "columns" }, el("span", { class: "muted", text: "Columns: " }),
    columns.filter((c) => c.optional).map((c) => {
      const box = el("input", { type: "checkbox", dataset: { column: c.key } });
      box.checked = shown.has(c.key);
      box.addEventListener("change", () => { if (box.checked) shown.add(c.key); else shown.delete(c.key); draw(); });
      return el("label", {}, box, ` ${c.optional === "metric" ? "metric" : "param"} `, el("span", { text: c.label }));
    }));
  const compare = el("button", { id: "compare", text: "Compare selected", disabled: true });
  compare.addEventListener("click", () => {
    location.href = url(`/compare?${[...selected].map((id) => `run=${q(id)}`).join("&")}`);
  });
  const holder = el("div");
  main.append(chooser, el("p", {}, compare, " ", el("span", { class: "muted", id: "run-count", text: `${data.runs.length} run(s)` })), holder);

  function draw() {
    const visible = columns.filter((c) => shown.has(c.key));
    const column = columns.find((c) => c.key === sort.key) || columns[0];
    const rows = [...data.runs].sort((a, b) => compareValues(column.get(a), column.get(b)) * (sort.desc ? -1 : 1));
    const headers = [el("th", {}), ...visible.map((c) => {
      const th = el("th", { class: `sortable${c.key === sort.key ? (sort.desc ? " sorted-desc" : " sorted-asc") : ""}`, dataset: { sort: c.key }, text: c.label });
      th.addEventListener("click", () => { sort = { key: c.key, desc: sort.key === c.key ? !sort.desc : false }; draw(); });
      return th;
    })];
    const body = rows.map((r) => {
      const pick = el("input", { type: "checkbox", dataset: { run: r.id } });
      pick.checked = selected.has(r.id);
      pick.addEventListener("change", () => { if (pick.checked) selected.add(r.id); else selected.delete(r.id); compare.disabled = selected.size < 2; });
      return el("tr", { dataset: { run: r.id } }, el("td", {}, pick), visible.map((c) => {
        const value = c.get(r);
        const content = c.cell ? c.cell(r) : c.show ? c.show(value) : fmtValue(value);
        return el("td", { class: c.num ? "num" : c.cls || "" }, content);
      }));
    });
    holder.replaceChildren(data.runs.length ? table(headers, body, { id: "runs" }) : el("p", { class: "muted", id: "runs-empty", text: "No runs match." }));
  }
  draw();
}

function timelineView(run) {
  return el("div", { class: "timeline", id: "timeline" }, run.timeline.map((step) =>
    el("div", { class: "step" }, badge(step.status), " ", el("span", { class: "muted", text: step.at ? fmtTime(step.at) : "now" }))));
}

function logsView(run, isFinal) {
  const box = el("section", { id: "logs" }, el("h2", { text: "Logs" }));
  const none = el("p", { class: "muted", text: "No logs yet." });
  const choice = el("select", { id: "log-file" });
  const pre = el("pre", { class: "log", id: "log-text", hidden: true });
  box.append(none, el("p", {}, choice), pre);
  let files = null;
  // Before the run writes its first log there is no file to choose: std_log.txt is followed.
  let name = "user_logs/std_log.txt", offset = 0, generation = 0, chosen = false;
  function update(names) {
    if (files !== null && names.join("\n") === files.join("\n")) return;
    files = names;
    none.hidden = files.length > 0;
    choice.hidden = files.length === 0;
    choice.replaceChildren(...files.map((f) => el("option", { value: f, text: f })));
    if (!chosen) {
      const preferred = files.find((f) => f.startsWith("user_logs/std_log")) || files[0];
      if (preferred && preferred !== name) { name = preferred; restart(); }
    }
    choice.value = name;
  }
  function restart() { offset = 0; pre.replaceChildren(); generation += 1; follow(generation); }
  async function follow(mine) {
    while (mine === generation) {
      let data;
      try { data = await api(`/api/runs/${q(run.id)}/logs?name=${q(name)}&offset=${offset}`); } catch (e) { pre.hidden = false; pre.append(`\n[${e.message}]`); return; }
      if (mine !== generation) return;
      if (data.text) {
        pre.hidden = false;
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(document.createTextNode(data.text));
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      }
      offset = data.offset;
      if (data.more) continue;
      if (isFinal() && (data.exists || !(files || []).length)) return;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  choice.addEventListener("change", () => { name = choice.value; chosen = true; restart(); });
  update(run.logFiles);  // may start following a log it prefers
  if (generation === 0) restart();
  return { node: box, update };
}

function tableMetricView(runId, metric, data) {
  const box = el("div", { class: "chart", dataset: { metric: metric.name } }, el("div", { class: "title" }, el("span", { text: metric.name })));
  if (metric.kind === "image") {
    box.append(el("div", { class: "images" }, data.values.map((name) =>
      el("img", { src: `/api/runs/${q(runId)}/file?name=${q(name)}&inline=1`, alt: name, title: name }))));
    return box;
  }
  let rows = [];
  if (metric.kind === "row") rows = data.values;
  else if (metric.kind === "table") {
    for (const t of data.values) {
      const cols = Object.keys(t); const n = Math.max(0, ...cols.map((c) => (t[c] || []).length));
      for (let i = 0; i < n; i++) rows.push(Object.fromEntries(cols.map((c) => [c, t[c][i]])));
    }
  } else rows = data.values.map((v, i) => ({ index: i, value: v }));
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  box.append(table(cols, rows.map((r) => el("tr", {}, cols.map((c) => el("td", { class: "num", text: fmtValue(r[c]) }))))));
  return box;
}

async function runPage(main, runId) {
  let run = await api(`/api/runs/${q(runId)}`);
  document.title = `${run.displayName} · modelyard`;
  const status = el("span", { id: "run-status" }, badge(run.status));
  main.append(el("h1", {}, el("span", { id: "run-name", text: run.displayName }), " ", status));
  const info = el("dl", { class: "grid", id: "run-info" });
  const fields = () => [
    ["run id", run.id], ["experiment", el("a", { href: `/experiments/${q(run.experiment)}`, text: run.experiment })],
    ["number", run.number], ["type", run.runType],
    ["parent", run.parentId ? el("a", { href: `/runs/${q(run.parentId)}`, text: run.parentId }) : "–"],
    ["target", run.target || "–"], ["script", run.script || "–"], ["arguments", run.arguments.join(" ") || "–"],
    ["created", fmtTime(run.createdAt)], ["started", fmtTime(run.startedAt)], ["ended", fmtTime(run.endedAt)],
    ["duration", fmtDuration(run)], ["error", run.error || "–"],
  ];
  const drawInfo = () => info.replaceChildren(...fields().flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
  drawInfo();
  const timelineBox = el("div", {}, timelineView(run));
  main.append(info, el("h2", { text: "Status" }), timelineBox);
  main.append(el("div", { class: "row" },
    el("section", { id: "parameters" }, el("h2", { text: "Parameters" }), keyValueTable(run.parameters, "No parameters.")),
    el("section", { id: "tags" }, el("h2", { text: "Tags" }), keyValueTable(run.tags, "No tags.")),
    el("section", { id: "properties" }, el("h2", { text: "Properties" }), keyValueTable(run.properties, "No properties."))));

  const charts = el("div", { class: "charts", id: "charts" });
  const others = el("div", { class: "charts", id: "tables" });
  main.append(el("h2", { text: "Metrics" }), charts, others);
  const chartOf = new Map();
  async function drawMetrics() {
    for (const metric of run.metrics) {
      if (metric.kind === "scalar") {
        if (!chartOf.has(metric.name)) { const c = metricChart(run.id, metric); chartOf.set(metric.name, c); charts.append(c.node); }
        await chartOf.get(metric.name).refresh(metric.count);
      } else if (!chartOf.has(metric.name) || chartOf.get(metric.name).count !== metric.count) {
        const data = await api(`/api/runs/${q(run.id)}/series?name=${q(metric.name)}`);
        const view = tableMetricView(run.id, metric, data);
        const old = chartOf.get(metric.name);
        if (old) old.node.replaceWith(view); else others.append(view);
        chartOf.set(metric.name, { node: view, count: metric.count });
      }
    }
    if (!run.metrics.length && !charts.childElementCount) charts.replaceChildren(el("p", { class: "muted", text: "No metrics yet." }));
    else charts.querySelector(":scope > p")?.remove();
  }
  await drawMetrics();

  if (run.runType === "hyperdrive") main.append(await hyperdriveView(run));
  const logs = logsView(run, () => run.final);
  main.append(logs.node);

  const childrenBox = el("section", { id: "children" });
  const drawChildren = () => childrenBox.replaceChildren(el("h2", { text: `Child runs (${run.children.length})` }),
    run.children.length ? table(["#", "run", "status", "started", "duration"], run.children.map((c) => el("tr", {},
      el("td", { class: "num", text: c.number }), el("td", {}, runLink(c)), el("td", {}, badge(c.status)),
      el("td", { text: fmtTime(c.startedAt) }), el("td", { text: fmtDuration(c) })))) : el("p", { class: "muted", text: "None." }));
  drawChildren();
  const filesBox = el("section", { id: "files" });
  const drawFiles = () => filesBox.replaceChildren(el("h2", { text: `Files (${run.files.length})` }),
    run.files.length ? table(["name", "size"], run.files.map((f) => el("tr", {},
      el("td", {}, el("a", { href: `/api/runs/${q(run.id)}/file?name=${q(f.path)}`, download: "", text: f.path })),
      el("td", { class: "num", text: fmtSize(f.size) })))) : el("p", { class: "muted", text: "None." }));
  drawFiles();
  main.append(childrenBox, filesBox);
  if (run.hasSnapshot) {
    const snap = el("section", { id: "snapshot" }, el("h2", { text: "Snapshot" }));
    main.append(snap);
    try {
      const files = await api(`/api/runs/${q(run.id)}/snapshot`);
      snap.append(table(["name", "size"], files.map((f) => el("tr", {},
        el("td", {}, el("a", { href: `/api/runs/${q(run.id)}/snapshot/file?name=${q(f.path)}`, download: "", text: f.path })),
        el("td", { class: "num", text: fmtSize(f.size) })))));
    } catch (error) { snap.append(errorBox(error)); }
  }

  document.body.dataset.ready = "true";
  // Live: while the run runs, read it again and redraw what changed.
  while (!run.final) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    try { run = await api(`/api/runs/${q(runId)}`); } catch (e) { continue; }
    status.replaceChildren(badge(run.status));
    drawInfo();
    timelineBox.replaceChildren(timelineView(run));
    drawChildren();
    drawFiles();
    logs.update(run.logFiles);
    await drawMetrics();
  }
}

function parallelCoordinates(children, metric) {
  const names = [...new Set(children.flatMap((c) => Object.keys(c.parameters)))];
  const axes = [...names.map((n) => ({ name: n, get: (c) => c.parameters[n] })), { name: metric || "best", get: (c) => c.best }];
  const width = Math.max(420, 140 * axes.length), height = 280, top = 30, bottom = 250;
  const x = (i) => 60 + (i * (width - 120)) / Math.max(1, axes.length - 1);
  const scales = axes.map((axis) => {
    const values = children.map(axis.get).filter((v) => v !== undefined && v !== null);
    if (values.every((v) => typeof v === "number")) {
      const lo = Math.min(...values), hi = Math.max(...values);
      return { lo, hi, pos: (v) => (hi === lo ? (top + bottom) / 2 : bottom - ((v - lo) / (hi - lo)) * (bottom - top)) };
    }
    const cats = [...new Set(values.map(String))];
    return { cats, pos: (v) => bottom - ((cats.indexOf(String(v)) + 0.5) / cats.length) * (bottom - top) };
  });
  const metricScale = scales[scales.length - 1];
  const node = svg("svg", { class: "parallel", id: "parallel", width, height, viewBox: `0 0 ${width} ${height}` });
  for (const c of children) {
    const pts = axes.map((axis, i) => { const v = axis.get(c); return v === undefined || v === null ? null : `${x(i)},${scales[i].pos(v)}`; });
    if (pts.some((p) => p === null)) continue;
    const t = metricScale.hi !== undefined && metricScale.hi !== metricScale.lo ? (c.best - metricScale.lo) / (metricScale.hi - metricScale.lo) : 0.5;
    const line = svg("polyline", { points: pts.join(" "), fill: "none", stroke: `hsl(${220 - 200 * t}, 70%, 45%)`, "stroke-width": 1.5, opacity: 0.8 });
    line.append(svg("title", {}, `${c.displayName}: ${fmtValue(c.best)}`));
    node.append(line);
  }
  axes.forEach((axis, i) => {
    node.append(svg("line", { x1: x(i), x2: x(i), y1: top, y2: bottom, stroke: "#98a2b3" }));
    node.append(svg("text", { x: x(i), y: 16, "text-anchor": "middle" }, axis.name));
    const s = scales[i];
    const labels = s.cats ? s.cats.map((c) => [c, s.pos(c)]) : [[fmtValue(s.hi), top], [fmtValue(s.lo), bottom]];
    for (const [label, y] of labels) node.append(svg("text", { x: x(i) + 4, y: y + 4 }, label));
  });
  return node;
}

async function hyperdriveView(run) {
  const box = el("section", { id: "hyperdrive" }, el("h2", { text: "Tuning" }));
  try {
    const data = await api(`/api/runs/${q(run.id)}/hyperdrive`);
    box.append(el("p", { class: "muted", text: `Primary metric: ${data.metric || "–"} (${data.goal || "–"}), ${data.children.length} child run(s)` }));
    const withBest = data.children.filter((c) => c.best !== null);
    box.append(el("div", { class: "chart" }, el("div", { class: "title", text: "Children: parameters and best primary metric" }), parallelCoordinates(withBest, data.metric)));
    if (data.bestOverTime.length) {
      const area = el("div", { class: "chart", id: "best-over-time" });
      box.append(area);
      lineChart(area, "Best primary metric over time", data.bestOverTime.map((p) => p.at), [{ label: data.metric || "best", values: data.bestOverTime.map((p) => p.best) }], { time: true, xLabel: "time" });
    }
  } catch (error) { box.append(errorBox(error)); }
  return box;
}

async function comparePage(main) {
  const ids = new URLSearchParams(location.search).getAll("run");
  main.append(el("h1", { text: `Compare ${ids.length} runs` }));
  if (ids.length < 1) { main.append(el("p", { class: "muted", text: "Select runs in a runs table, then Compare selected." })); return; }
  const runs = await Promise.all(ids.map((id) => api(`/api/runs/${q(id)}`)));
  const paramNames = [...new Set(runs.flatMap((r) => Object.keys(r.parameters)))].sort();
  main.append(el("h2", { text: "Parameters" }), table(["", ...runs.map((r) => el("th", {}, runLink(r)))],
    [el("tr", {}, el("th", { text: "status" }), runs.map((r) => el("td", {}, badge(r.status)))),
      ...paramNames.map((p) => el("tr", {}, el("th", { text: p }), runs.map((r) => el("td", { text: fmtValue(r.parameters[p]) }))))], { id: "compare-params" }));
  const metricNames = [...new Set(runs.flatMap((r) => r.metrics.filter((m) => m.kind === "scalar").map((m) => m.name)))].sort();
  const charts = el("div", { class: "charts", id: "compare-charts" });
  main.append(el("h2", { text: "Metrics" }), charts);
  for (const name of metricNames) {
    const having = runs.filter((r) => r.metrics.some((m) => m.name === name));
    const series = await Promise.all(having.map((r) => api(`/api/runs/${q(r.id)}/series?name=${q(name)}&buckets=500`)));
    const joined = uPlot.join(series.map((s) => [s.steps, s.values]));
    const area = el("div", { class: "chart", dataset: { metric: name } });
    charts.append(area);
    // A run keeps its colour on every chart, whichever runs have the metric.
    lineChart(area, name, joined[0], having.map((r, i) => ({ label: r.displayName, values: joined[i + 1], color: runs.indexOf(r) })));
  }
}

async function modelsPage(main) {
  const list = await api("/api/models");
  main.append(el("h1", { text: "Models" }));
  if (!list.length) { main.append(el("p", { class: "muted", text: "No models registered yet: run.register_model() makes one." })); return; }
  main.append(table(["model", "version", "registered", "tags", "run", "experiment", "files"], list.map((m) => el("tr", {},
    el("td", { text: m.name }), el("td", { class: "num", text: m.version }), el("td", { text: fmtTime(m.createdAt) }),
    el("td", { text: Object.entries(m.tags).map(([k, v]) => `${k}=${v}`).join(", ") }),
    el("td", {}, m.runId ? el("a", { href: `/runs/${q(m.runId)}`, text: m.runId }) : "–"),
    el("td", {}, m.experiment ? el("a", { href: `/experiments/${q(m.experiment)}`, text: m.experiment }) : "–"),
    el("td", {}, m.files.map((f) => el("div", {}, el("a", { href: `/api/models/${q(m.name)}/${m.version}/file?path=${q(f.path)}`, download: "", text: f.path }), " ", el("span", { class: "muted", text: fmtSize(f.size) })))))),
    { id: "models" }));
}

async function computesPage(main) {
  const list = await api("/api/computes");
  main.append(el("h1", { text: "Compute targets" }));
  const nodes = (c, k) => (c.nodes && c.nodes[k] !== undefined ? c.nodes[k] : "–");
  main.append(table(["name", "type", "state", "nodes current", "idle", "target", "queued runs"], list.map((c) => el("tr", {},
    el("td", { text: c.name }), el("td", { text: c.type }), el("td", { text: c.state }),
    el("td", { class: "num", text: nodes(c, "current") }), el("td", { class: "num", text: nodes(c, "idle") }), el("td", { class: "num", text: nodes(c, "target") }),
    el("td", {}, c.queued.length ? c.queued.map((r) => el("div", {}, runLink(r))) : "–"))), { id: "computes" }));
  for (const c of list) {
    if (!c.history || !c.history.length) continue;
    // A count holds until the next change: drawn as steps, with the last one carried to now.
    const changes = [...c.history, { at: Date.now() / 1000, nodes: c.history[c.history.length - 1].nodes }];
    const xs = changes.map((h) => h.at);
    const series = ["current", "idle", "target"].map((k) => ({ label: k, values: changes.map((h) => h.nodes[k] ?? null) }));
    const box = el("div", { class: "chart", dataset: { compute: c.name, changes: String(c.history.length) } });
    main.append(box);
    lineChart(box, `${c.name}: nodes over the last 24 h`, xs, series, { time: true, xLabel: "time", steps: true });
  }
}

async function route() {
  const main = document.getElementById("main");
  main.replaceChildren();
  api("/api/workspace").then((w) => { document.getElementById("workspace").textContent = `workspace ${w.name}`; }).catch(() => {});
  for (const link of document.querySelectorAll("header a")) link.setAttribute("href", url(link.getAttribute("href")));
  const here = decodeURIComponent(location.pathname);
  const path = here.startsWith(BASE) ? `/${here.slice(BASE.length)}` : here;
  try {
    if (path === "/") await experimentsPage(main);
    else if (path.startsWith("/experiments/")) await experimentPage(main, path.slice("/experiments/".length));
    else if (path.startsWith("/runs/")) await runPage(main, path.slice("/runs/".length));
    else if (path === "/compare") await comparePage(main);
    else if (path === "/models") await modelsPage(main);
    else if (path === "/computes") await computesPage(main);
    else main.append(errorBox(new Error(`no page at ${path}`)));
  } catch (error) {
    main.append(errorBox(error));
  }
  document.body.dataset.ready = "true";
}

window.addEventListener("DOMContentLoaded", route);
