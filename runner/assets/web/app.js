// The web UI: polls /api/stats every second and sends commands as JSON POSTs. Everything a
// scenario named reaches the page through textContent, never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
let last = null;
let charts = null;
let formFilled = false;

function post(path, body) {
  return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) })
    .then(async (r) => { if (!r.ok) throw new Error((await r.text()).trim()); });
}

function cell(tr, text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "n";
  tr.appendChild(td);
}

const fmt = (x, digits) => (x === undefined || x === null ? "-" : Number(x).toFixed(digits));
const ms = (x) => (x >= 100 ? fmt(x, 0) : x >= 10 ? fmt(x, 1) : fmt(x, 2));
const pct = (row, label) => ((row.percentiles || []).find((p) => p[0] === label) || [0, 0])[1];

function fillTable(id, rows, cells, totalRow) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    cells(row).forEach(([text, numeric]) => cell(tr, text, numeric));
    body.appendChild(tr);
  }
  if (totalRow) {
    const tr = document.createElement("tr");
    tr.className = "total";
    cells(totalRow).forEach(([text, numeric]) => cell(tr, text, numeric));
    body.appendChild(tr);
  }
}

function statsCells(row) {
  return [
    [row.method], [row.name], [row.requests, true], [row.failures, true], [ms(row.median_ms), true],
    [ms(pct(row, "95%")), true], [ms(pct(row, "99%")), true], [ms(row.avg_ms), true], [ms(row.min_ms), true],
    [ms(row.max_ms), true], [fmt(row.avg_size_bytes, 0), true], [fmt(row.current_rps ?? row.rps, 1), true],
    [fmt(row.current_failures_per_s ?? row.failures_per_s, 1), true],
  ];
}

function drawCharts(h) {
  const width = Math.min(900, document.body.clientWidth - 80);
  const make = (id, title, series, data) =>
    new uPlot({ title, width, height: 260, scales: { x: { time: false } }, series: [{ label: "s" }].concat(series),
      axes: [{ label: "seconds since the start" }, {}] }, [h.t].concat(data), $(id));
  if (!charts) {
    charts = [
      make("chart-rps", "Total requests per second", [{ label: "RPS", stroke: "#1f883d" }, { label: "Failures/s", stroke: "#cf222e" }], [h.rps, h.failures_per_s]),
      make("chart-times", "Response times (ms)", [{ label: "p50", stroke: "#1f6feb" }, { label: "p95", stroke: "#bf8700" }, { label: "p99", stroke: "#8250df" }], [h.p50_ms, h.p95_ms, h.p99_ms]),
      make("chart-users", "Number of users", [{ label: "Users", stroke: "#57606a" }], [h.users]),
    ];
  } else {
    charts[0].setData([h.t, h.rps, h.failures_per_s]);
    charts[1].setData([h.t, h.p50_ms, h.p95_ms, h.p99_ms]);
    charts[2].setData([h.t, h.users]);
  }
}

function render(data) {
  last = data;
  const s = data.snapshot;
  $("state").textContent = data.state;
  $("state").className = "badge " + data.state;
  $("host").textContent = data.host || "-";
  $("users").textContent = s.users;
  $("rps").textContent = fmt(s.current_rps, 1);
  const ratio = s.aggregated.requests ? (100 * s.aggregated.failures) / s.aggregated.requests : 0;
  $("fails").textContent = fmt(ratio, 0) + "%";
  $("warning").hidden = !data.warning;
  $("warning").textContent = data.warning || "";
  const ready = data.state === "ready";
  const running = data.state === "running";
  $("start-form").hidden = !ready;
  $("edit").hidden = !(running && data.can_edit_users);
  $("stop").hidden = !running;
  $("reset").hidden = ready;
  if (ready && !formFilled) {
    formFilled = true;
    const f = $("start-form").elements;
    f.users.value = data.defaults.users ?? 1;
    f.spawn_rate.value = data.defaults.spawn_rate ?? 1;
    f.host.value = data.defaults.host ?? "";
    f.run_time.value = data.defaults.run_time ?? "";
  }
  fillTable("stats", s.rows, statsCells, s.aggregated);
  fillTable("failures", s.errors, (e) => [[e.method], [e.name], [e.error], [e.occurrences, true]]);
  fillTable("errors", s.task_errors, (e) => [[e.name], [e.error], [e.occurrences, true]]);
  $("failures-count").textContent = s.errors.length ? `(${s.errors.length})` : "";
  $("errors-count").textContent = s.task_errors.length ? `(${s.task_errors.length})` : "";
  if (data.history.t.length && !$("tab-charts").hidden) drawCharts(data.history);
}

async function poll() {
  try {
    const r = await fetch("/api/stats", { cache: "no-store" });
    if (r.ok) render(await r.json());
  } catch (e) {
    $("state").textContent = "disconnected";
  }
  setTimeout(poll, 1000);
}

$("start-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const body = { users: Number(f.users.value), spawn_rate: Number(f.spawn_rate.value), host: f.host.value || null, run_time: f.run_time.value || null };
  $("start-error").textContent = "";
  post("/api/start", body).catch((err) => ($("start-error").textContent = err.message));
});
$("edit").addEventListener("click", () => {
  const f = $("users-form").elements;
  f.users.value = last ? last.snapshot.users : 1;
  f.spawn_rate.value = last && last.defaults.spawn_rate ? last.defaults.spawn_rate : 1;
  $("users-form").hidden = false;
});
$("users-cancel").addEventListener("click", () => ($("users-form").hidden = true));
$("users-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target.elements;
  post("/api/users", { users: Number(f.users.value), spawn_rate: Number(f.spawn_rate.value) }).then(() => ($("users-form").hidden = true));
});
$("stop").addEventListener("click", () => post("/api/stop"));
$("reset").addEventListener("click", () => post("/api/reset"));
for (const tab of document.querySelectorAll(".tabs button")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tabs button")) other.classList.toggle("active", other === tab);
    for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== "tab-" + tab.dataset.tab;
    if (tab.dataset.tab === "charts" && last && last.history.t.length) drawCharts(last.history);
  });
}
poll();
