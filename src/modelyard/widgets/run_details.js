// The front end of RunDetails (an anywidget ES module). Every value comes from the model's
// traits and goes into the page as text (textContent, attributes set one by one), never as
// HTML: a run named "<img src=x onerror=alert(1)>" shows as those characters.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 320;
const HEIGHT = 160;
const PAD = 32;

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

function table(headers, rows) {
  const t = el("table", null, { class: "modelyard-table" });
  const head = el("tr");
  for (const h of headers) head.appendChild(el("th", h));
  t.appendChild(head);
  for (const row of rows) {
    const tr = el("tr");
    for (const cell of row) tr.appendChild(el("td", cell));
    t.appendChild(tr);
  }
  return t;
}

function lineChart(name, steps, values) {
  const box = el("figure", null, { class: "modelyard-chart" });
  box.appendChild(el("figcaption", name));
  const points = [];
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] === "number" && Number.isFinite(values[i])) points.push([steps[i], values[i]]);
  }
  const chart = svg("svg", { width: WIDTH, height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}` });
  if (points.length > 0) {
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const sx = (x) => PAD + ((x - x0) / (x1 - x0 || 1)) * (WIDTH - 2 * PAD);
    const sy = (y) => HEIGHT - PAD + -((y - y0) / (y1 - y0 || 1)) * (HEIGHT - 2 * PAD);
    chart.appendChild(svg("line", { x1: PAD, y1: HEIGHT - PAD, x2: WIDTH - PAD, y2: HEIGHT - PAD, stroke: "#999" }));
    chart.appendChild(svg("line", { x1: PAD, y1: PAD, x2: PAD, y2: HEIGHT - PAD, stroke: "#999" }));
    chart.appendChild(
      svg("polyline", {
        points: points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "),
        fill: "none",
        stroke: "#1f77b4",
        "stroke-width": 1.5,
      }),
    );
    const label = (x, y, text, anchor) => {
      const t = svg("text", { x, y, "font-size": 10, "text-anchor": anchor || "start" });
      t.textContent = text;
      chart.appendChild(t);
    };
    label(2, PAD, y1.toPrecision(4));
    label(2, HEIGHT - PAD, y0.toPrecision(4));
    label(PAD, HEIGHT - PAD + 14, String(x0));
    label(WIDTH - PAD, HEIGHT - PAD + 14, String(x1), "end");
  }
  box.appendChild(chart);
  return box;
}

function render({ model, el: root }) {
  root.classList.add("modelyard-run-details");
  const header = el("div", null, { class: "modelyard-header" });
  const charts = el("div", null, { class: "modelyard-charts" });
  const values = el("div");
  const children = el("div");
  const logTitle = el("div", null, { class: "modelyard-log-title" });
  const log = el("pre", null, { class: "modelyard-log" });
  root.append(header, charts, values, children, logTitle, log);

  function drawHeader() {
    header.replaceChildren(
      el("strong", model.get("name") || model.get("run_id")),
      table(
        ["Experiment", "Id", "Type", "Status", "Duration"],
        [[model.get("experiment"), model.get("run_id"), model.get("run_type"), model.get("status"), model.get("duration")]],
      ),
    );
    for (const key of ["error", "follow_error"]) {
      const error = model.get(key);
      if (error) header.appendChild(el("div", error, { class: "modelyard-error" }));
    }
  }

  function drawMetrics() {
    const metrics = model.get("metrics") || {};
    const drawn = [];
    const rows = [];
    for (const [name, m] of Object.entries(metrics)) {
      if (m.values && m.values.length > 1) drawn.push(lineChart(name, m.steps, m.values));
      else rows.push([name, m.last, m.kind, m.count]);
    }
    charts.replaceChildren(...drawn);
    values.replaceChildren(...(rows.length ? [table(["Metric", "Value", "Kind", "Points"], rows)] : []));
  }

  function drawChildren() {
    const list = model.get("children") || [];
    if (!list.length) {
      children.replaceChildren();
      return;
    }
    const primary = model.get("primary_metric") || {};
    const best = primary.name ? `Best ${primary.name} (${String(primary.goal).toLowerCase()})` : "Metric";
    const parts = [];
    if (primary.name) {
      // The best primary metric so far, child after child (the list is newest first).
      const better = primary.goal === "MINIMIZE" ? Math.min : Math.max;
      const steps = [];
      const values = [];
      let best = null;
      list
        .slice()
        .reverse()
        .forEach((c, i) => {
          if (typeof c.best !== "number") return;
          best = best === null ? c.best : better(best, c.best);
          steps.push(i + 1);
          values.push(best);
        });
      if (values.length > 1) parts.push(lineChart(`best ${primary.name} so far, by child`, steps, values));
    }
    children.replaceChildren(
      ...parts,
      el("strong", `Child runs (${list.length})`),
      table(
        ["Run", "Name", "Status", "Duration", best],
        list.map((c) => [c.run_id, c.name, c.status, c.duration, c.metric && !primary.name ? `${c.metric}: ${c.value}` : c.value]),
      ),
    );
  }

  function drawLog() {
    const tail = model.get("log_tail") || "";
    logTitle.textContent = tail ? model.get("log_name") || "" : "";
    const follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = tail;
    if (follow) log.scrollTop = log.scrollHeight;
  }

  drawHeader();
  drawMetrics();
  drawChildren();
  drawLog();
  for (const key of ["name", "experiment", "run_id", "run_type", "status", "duration", "error", "follow_error"]) {
    model.on(`change:${key}`, drawHeader);
  }
  model.on("change:metrics", drawMetrics);
  model.on("change:children", drawChildren);
  model.on("change:primary_metric", drawChildren);
  model.on("change:log_tail", drawLog);
  model.on("change:log_name", drawLog);
}

export default { render };
