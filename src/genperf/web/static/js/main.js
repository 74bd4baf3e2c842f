// The dashboard: polls the API, renders what it answers, and says plainly when it cannot.
//
// Data sources (all under /api/v1/performance, with the session's token):
//   status            live host and GPU readings, running tasks and their phase (polled)
//   analysis          summary, bottlenecks, recommendations, benchmarks, failures (window + filters)
//   benchmarks        the configured targets (generation-time lines, success-rate band)
//   metrics           the window's task records, newest first, paged (charts, task table)
//   tasks/{task_id}   one task, fresh, for the drill-down
//   nodes             the fleet: one row per node (the node picker's choices)
//   export            JSON / CSV download (admin role)
// and what the history says (history.js): predicted against actual for the newest generation
// requests, optimisation impact, the p95 forecast, configuration changes.

import * as api from "./api.js";
import {
  ChartBox,
  drawGenerationTime,
  drawLoadTime,
  drawPeakVram,
  drawSuccessRate,
} from "./charts.js";
import { closeTask, renderTask } from "./detail.js";
import { loadHistory, loadPredictions, refusal, renderHistory } from "./history.js";
import { badge, byId, el, replace } from "./dom.js";
import * as fmt from "./format.js";

const P = api.API;
const WINDOWS = [1, 24, 168];
const PAGE = 1000; // the API's largest page
const MAX_TASKS = 5000; // most task records the charts read per window
const WINDOW_REFRESH_MS = 30000;
const HISTORY_REFRESH_MS = 300000; // predictions, impact, forecast, configuration changes
const RETRY_MS = 5000;
const TABLE_STEP = 50;
// The CPU, RAM and VRAM bands are the server's (GET /benchmarks: targets); the disk has no
// configured band, so the dashboard keeps its own.
const DISK_BAND = { optimal: 80, acceptable: 90, maximum: 95 };

const state = {
  hours: 24,
  model: "",
  node: "",
  successOnly: false,
  role: null,
  started: false, // the dashboard has shown data at least once
  locked: false, // the server refused us: wait for a token
  status: null,
  analysis: null,
  benchmarks: null,
  nodes: null,
  knownNodes: new Set(),
  tasks: [],
  total: 0,
  knownModels: new Set(),
  shown: TABLE_STEP,
  statusMs: 5000,
  timers: { status: 0, window: 0, start: 0 },
  windowSeq: 0,
  lastDataAt: null,
  openTask: null,
  banners: new Map(),
  historyKey: "",
  historyAt: 0,
};

const charts = {
  success: null,
  vram: null,
  load: null,
  gentime: new Map(),
};

// --- banners and the live indicator --------------------------------------------------------

const BANNER_ORDER = ["connection", "status", "window", "export"];

function setBanner(source, title, text) {
  if (title) state.banners.set(source, [title, text || ""]);
  else state.banners.delete(source);
  const banner = byId("banner");
  const first = BANNER_ORDER.find((s) => state.banners.has(s));
  banner.hidden = !first;
  banner.dataset.source = first || "";
  if (first) {
    const [t, x] = state.banners.get(first);
    byId("banner-title").textContent = t;
    byId("banner-text").textContent = x;
  }
}

function setLive(kind, text) {
  const live = byId("live-indicator");
  live.dataset.state = kind;
  byId("live-text").textContent = text;
  document.body.classList.toggle("stale", kind === "offline");
}

// --- starting, polling, and what errors mean ----------------------------------------------

function clearTimers() {
  for (const key of Object.keys(state.timers)) {
    clearTimeout(state.timers[key]);
    state.timers[key] = 0;
  }
}

async function start() {
  clearTimers();
  state.locked = false;
  setLive("connecting", "Connecting…");
  try {
    await refreshStatus();
  } catch (error) {
    handleError(error, "status");
    if (!state.locked) state.timers.start = setTimeout(start, RETRY_MS);
    return;
  }
  showDashboard();
  scheduleStatus();
  refreshWindow();
  refreshRole();
}

function scheduleStatus() {
  clearTimeout(state.timers.status);
  state.timers.status = setTimeout(statusTick, state.statusMs);
}

function scheduleWindow(ms = WINDOW_REFRESH_MS) {
  clearTimeout(state.timers.window);
  // A hidden tab asks for nothing; it catches up when it is shown again.
  state.timers.window = setTimeout(() => (document.hidden ? scheduleWindow(ms) : refreshWindow()), ms);
}

async function statusTick() {
  if (state.locked) return;
  if (!document.hidden) {
    try {
      await refreshStatus();
    } catch (error) {
      handleError(error, "status");
    }
  }
  if (!state.locked) {
    const offline = state.banners.has("connection");
    clearTimeout(state.timers.status); // one chain of polls, however this one was started
    state.timers.status = setTimeout(statusTick, offline ? RETRY_MS : state.statusMs);
  }
}

function handleError(error, source) {
  if (!(error instanceof api.ApiError)) {
    console.error(error); // a bug of the page: say so, keep going
    setBanner(source, "Something went wrong on this page.", String(error && error.message));
    return;
  }
  if (error.kind === "unauthorized" || error.kind === "forbidden") {
    lock(error);
    return;
  }
  if (error.kind === "unreachable") {
    const last = state.lastDataAt ? ` The data shown is from ${fmt.clock(state.lastDataAt)}.` : "";
    setBanner(
      "connection",
      "Cannot reach the genperf server.",
      `Retrying every ${RETRY_MS / 1000} s.${last}`,
    );
    setLive("offline", state.lastDataAt ? `Offline · last data ${fmt.clock(state.lastDataAt)}` : "Offline");
    return;
  }
  setBanner(source, `The server answered ${error.status}.`, error.message);
}

/** The server refused us (401 or 403): stop polling and ask for a token. */
function lock(error) {
  state.locked = true;
  clearTimers();
  state.banners.clear();
  setBanner("connection", null);
  const hadToken = api.hasToken();
  let message;
  if (error.kind === "unauthorized" && hadToken) {
    message = `The server refused this token: ${error.message}. Enter another one.`;
    api.setToken("");
  } else if (error.kind === "unauthorized") {
    message = "This server needs an API token. Enter one with at least the read role; it is kept for this browser tab only.";
  } else {
    message = `Access refused: ${error.message}`;
    if (hadToken) api.setToken("");
  }
  byId("token-message").textContent = message;
  byId("token-panel").dataset.reason = error.kind;
  byId("token-panel").hidden = false;
  byId("dashboard").hidden = true;
  byId("sign-out").hidden = true;
  byId("export-controls").hidden = true;
  setLive("locked", error.kind === "unauthorized" ? "Token needed" : "Access refused");
  byId("token-input").focus();
}

function showDashboard() {
  byId("token-panel").hidden = true;
  byId("dashboard").hidden = false;
  byId("sign-out").hidden = !api.hasToken();
  state.started = true;
}

async function refreshRole() {
  state.role = await api.detectRole();
  byId("export-controls").hidden = state.role !== "admin";
  document.body.dataset.role = state.role || "unknown";
}

// --- live status -----------------------------------------------------------------------------

async function refreshStatus() {
  const status = await api.request(`${P}/status`);
  state.status = status;
  state.lastDataAt = Date.now();
  setBanner("connection", null);
  setBanner("status", null);
  const interval = Number(status.monitoring && status.monitoring.interval_seconds) || 5;
  state.statusMs = Math.min(10000, Math.max(2000, interval * 1000));
  renderStatus(status);
  renderRunning(status.active_tasks || []);
  followOpenTask(status.active_tasks || []);
}

function band(kind) {
  const targets = state.benchmarks && state.benchmarks.targets;
  const key = { cpu: "cpu_usage_percent", ram: "ram_usage_percent", vram: "vram_usage_percent" }[kind];
  if (kind === "disk") return DISK_BAND;
  return (targets && key && targets[key]) || null; // neutral until the targets arrive
}

function level(value, b) {
  if (value === null || value === undefined || !b) return "neutral";
  if (value >= b.maximum) return "bad";
  if (value >= b.acceptable) return "warn";
  return "ok";
}

function bar(value, kind, label) {
  const b = kind ? band(kind) : null;
  const known = value !== null && value !== undefined;
  const fill = el("span", { class: "bar-fill" });
  fill.style.width = `${known ? Math.min(100, Math.max(0, value)) : 0}%`;
  return el(
    "div",
    {
      class: `bar level-${level(value, b)}`,
      attrs: {
        role: "meter",
        "aria-label": label,
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": known ? Math.round(value) : undefined,
      },
      title: b ? `optimal < ${b.optimal}%, acceptable < ${b.acceptable}%, limit ${b.maximum}%` : undefined,
    },
    [fill],
  );
}

function tile(metric, label, value, barNode, subs) {
  return el("div", { class: "tile", data: { metric } }, [
    el("div", { class: "tile-label", text: label }),
    el("div", { class: "tile-value", text: value }),
    barNode,
    ...subs.filter(Boolean).map((s) => el("div", { class: "tile-sub muted", text: s })),
  ]);
}

function renderStatus(status) {
  const s = status.system || {};
  const mon = status.monitoring || {};
  byId("node-name").textContent = mon.node || s.node || "";
  const age = mon.sample_age_seconds;
  const stale = !mon.running || (age !== null && age !== undefined && age > 3 * (mon.interval_seconds || 5) + 5);
  byId("status-updated").textContent = mon.running
    ? `sampled every ${fmt.duration(mon.interval_seconds)}${age !== null && age !== undefined ? ` · sample ${fmt.duration(age)} old` : ""}`
    : "the monitor's sampler is not running: readings may be old";
  setLive(stale ? "stale" : "live", `${stale ? "Stale" : "Live"} · ${fmt.clock(Date.now())}`);

  const cpuSubs = [
    s.cpu_count ? `${s.cpu_count} cores` : null,
    s.cpu_temperature_celsius !== null && s.cpu_temperature_celsius !== undefined ? `CPU ${fmt.celsius(s.cpu_temperature_celsius)}` : null,
  ];
  const ramSubs = [
    `${fmt.bytes(s.ram_used_bytes)} of ${fmt.bytes(s.ram_total_bytes)}`,
    s.swap_percent !== null && s.swap_percent !== undefined ? `swap ${fmt.percent(s.swap_percent)} (${fmt.bytes(s.swap_used_bytes)})` : null,
  ];
  const io = s.disk_read_bytes_per_second !== null && s.disk_read_bytes_per_second !== undefined
    ? `read ${fmt.bytes(s.disk_read_bytes_per_second)}/s · write ${fmt.bytes(s.disk_write_bytes_per_second)}/s`
    : null;
  const diskSubs = [
    s.disk_free_bytes !== null && s.disk_free_bytes !== undefined ? `${fmt.bytes(s.disk_free_bytes)} free${s.disk_path ? ` on ${s.disk_path}` : ""}` : "not reported",
    io,
  ];
  replace(byId("host-status"), [
    tile("cpu", "CPU", fmt.percent(s.cpu_percent), bar(s.cpu_percent, "cpu", "CPU utilisation"), cpuSubs),
    tile("ram", "RAM", fmt.percent(s.ram_percent), bar(s.ram_percent, "ram", "RAM in use"), ramSubs),
    tile("disk", "Disk", fmt.percent(s.disk_percent), bar(s.disk_percent, "disk", "Disk used"), diskSubs),
    tile("process", "Monitored process", fmt.bytes(s.process_rss_bytes), null, ["resident memory"]),
  ]);

  const gpus = s.gpus || [];
  if (!gpus.length) {
    replace(byId("gpu-status"), [
      el("p", {
        class: "empty",
        data: { gpuMonitoring: mon.gpu_monitoring || "" },
        // the server says why: off by the settings, or NVML unavailable (and its reason)
        text:
          mon.gpu_monitoring === "off" || mon.gpu_monitoring === "unavailable"
            ? `No GPU reported: GPU monitoring ${mon.gpu_monitoring}${mon.gpu_monitoring_reason ? ` (${mon.gpu_monitoring_reason})` : ""}.`
            : "No GPU reported: NVML is not available here, or GPU monitoring is off.",
      }),
    ]);
    return;
  }
  replace(
    byId("gpu-status"),
    gpus.map((g) => {
      const vram = g.memory_percent;
      const throttled = (g.throttle_reasons || []).filter((r) => r !== "gpu_idle" && r !== "idle");
      return el("div", { class: "gpu", data: { metric: `gpu-${g.index}` } }, [
        el("div", { class: "gpu-name" }, [
          el("strong", { text: `GPU ${g.index}` }),
          g.name ? el("span", { class: "muted", text: ` · ${g.name}` }) : null,
        ]),
        el("div", { class: "gpu-row", data: { metric: `gpu-${g.index}-vram` } }, [
          el("span", { class: "gpu-label", text: "VRAM" }),
          bar(vram, "vram", `GPU ${g.index} memory in use`),
          el("span", {
            class: "gpu-value",
            text: g.memory_total_bytes ? `${fmt.bytes(g.memory_used_bytes)} / ${fmt.bytes(g.memory_total_bytes)}` : fmt.bytes(g.memory_used_bytes),
          }),
        ]),
        el("div", { class: "gpu-row", data: { metric: `gpu-${g.index}-util` } }, [
          el("span", { class: "gpu-label", text: "Utilisation" }),
          bar(g.utilization_percent, null, `GPU ${g.index} utilisation`),
          el("span", { class: "gpu-value", text: fmt.percent(g.utilization_percent) }),
        ]),
        el("div", { class: "gpu-facts" }, [
          el("span", { data: { metric: `gpu-${g.index}-temp` }, text: `Temperature ${fmt.celsius(g.temperature_celsius)}` }),
          el("span", {
            text: `Power ${fmt.watts(g.power_watts)}${g.power_limit_watts ? ` / ${fmt.watts(g.power_limit_watts)}` : ""}`,
          }),
          throttled.length ? badge(`throttled: ${throttled.join(", ")}`, "warn") : null,
        ]),
      ]);
    }),
  );
}

function taskButton(task, key) {
  return el("button", {
    class: "linklike mono",
    text: fmt.shortId(task.task_id),
    title: `${task.task_id}: show details`,
    attrs: { type: "button" },
    data: key,
  });
}

function renderRunning(active) {
  const table = byId("running-table");
  byId("running-empty").hidden = active.length > 0;
  table.hidden = active.length === 0;
  byId("running-count").textContent = active.length ? `${active.length} running` : "";
  replace(
    table.tBodies[0],
    active.map((t, i) => {
      const done = (t.step_times_seconds || []).length;
      return el("tr", { data: { runId: t.run_id } }, [
        el("td", {}, [taskButton(t, { running: i })]),
        el("td", { text: t.model_type }),
        el("td", { text: t.resolution_class, title: t.resolution }),
        el("td", {}, [badge(t.current_phase || "starting", t.current_phase ? "info" : "muted")]),
        el("td", { text: t.steps ? `${done} / ${t.steps}` : done ? String(done) : fmt.DASH }),
        el("td", { text: fmt.duration(t.generation_time_seconds) }),
        el("td", { text: fmt.mib(t.peak_vram_usage_mb) }),
      ]);
    }),
  );
}

// --- the window: analysis, targets, tasks ---------------------------------------------------

function filters() {
  return {
    time_window_hours: state.hours,
    model_type: state.model || undefined,
    success_only: state.successOnly || undefined,
    node: state.node || undefined,
  };
}

async function loadTasks(params) {
  const tasks = [];
  let offset = 0;
  let total = 0;
  while (tasks.length < MAX_TASKS) {
    const page = await api.request(`${P}/metrics`, { params: { ...params, limit: PAGE, offset } });
    total = page.total;
    tasks.push(...page.metrics);
    if (page.next_offset === null || page.next_offset === undefined || !page.metrics.length) break;
    offset = page.next_offset;
  }
  return { tasks, total };
}

async function refreshWindow() {
  const seq = ++state.windowSeq;
  clearTimeout(state.timers.window);
  const params = filters();
  document.body.classList.add("loading");
  // Read beside the window's data; each of its cards says on its own when it cannot. Impact,
  // forecast and changes move slowly and each scans up to 50k records: read again when the
  // filters change, else every HISTORY_REFRESH_MS.
  const predictions = loadPredictions();
  const historyKey = JSON.stringify([params.time_window_hours, params.model_type]);
  const historyDue = historyKey !== state.historyKey || Date.now() - state.historyAt >= HISTORY_REFRESH_MS;
  const history = historyDue ? loadHistory(params) : Promise.resolve({});
  try {
    const [analysis, benchmarks, page, nodes] = await Promise.all([
      api.request(`${P}/analysis`, { params }),
      api.request(`${P}/benchmarks`, { params: { time_window_hours: state.hours } }),
      loadTasks(params),
      api.request(`${P}/nodes`, { params: { time_window_hours: state.hours } }),
    ]);
    if (seq !== state.windowSeq) return; // the filters changed while we waited
    state.analysis = analysis;
    state.benchmarks = benchmarks;
    state.nodes = nodes;
    state.tasks = page.tasks;
    state.total = page.total;
    state.lastDataAt = Date.now();
    setBanner("window", null);
    setBanner("connection", null);
    if (state.status) renderStatus(state.status); // its bars take the server's bands
    renderWindow();
    const said = { ...(await predictions), ...(await history) };
    if (seq !== state.windowSeq) return;
    const refused = refusal(said);
    if (refused) throw refused;
    renderHistory(said);
    if (historyDue) {
      state.historyKey = historyKey;
      state.historyAt = Date.now();
    }
  } catch (error) {
    if (seq !== state.windowSeq) return;
    handleError(error, "window");
  } finally {
    if (seq === state.windowSeq) {
      document.body.classList.remove("loading");
      if (!state.locked) scheduleWindow(state.banners.has("connection") ? RETRY_MS : WINDOW_REFRESH_MS);
    }
  }
}

function renderWindow() {
  const a = state.analysis;
  const tasks = state.tasks;
  byId("window-label").textContent = fmt.windowName(state.hours);
  collectModels(a, tasks);
  const filtered = Boolean(state.model || state.successOnly || state.node);
  const empty = (a.task_count || 0) === 0 && tasks.length === 0;
  const emptyNode = byId("empty-state");
  emptyNode.hidden = !empty;
  emptyNode.textContent = filtered
    ? `No tasks match these filters in the last ${fmt.windowName(state.hours)}.`
    : `No generations recorded in the last ${fmt.windowName(state.hours)} yet. Tasks appear here as the service finishes them; a longer time window may show older ones.`;
  document.body.dataset.empty = String(empty);
  const notes = [];
  if (a.summary && a.summary.estimated) notes.push("quantiles estimated from a sample of the window");
  if (state.total > tasks.length) notes.push(`charts show the newest ${fmt.count(tasks.length)} of ${fmt.count(state.total)} tasks`);
  byId("analysis-note").textContent = notes.join(" · ");
  renderKpis(a);
  renderCharts();
  renderBottlenecks(a.bottleneck_analysis);
  renderRecommendations(a.optimization_recommendations || []);
  renderFailures(a.failures || {});
  renderBenchmarks(a.benchmarks || []);
  renderFleet(state.nodes);
  renderTasks();
}

// --- the fleet: one row per node; a click filters the page to that node ----------------------

const NODE_STATES = { up: ["Up", "ok"], down: ["Down", "bad"], no_samples: ["No samples", "warn"] };

function timeKind(seconds, target) {
  if (seconds === null || seconds === undefined || !target) return "muted";
  const factor = (state.benchmarks && state.benchmarks.targets.generation_time_acceptable_factor) || 1.5;
  if (seconds <= target) return "ok";
  return seconds <= target * factor ? "fair" : "bad";
}

function renderFleet(fleet) {
  const rows = (fleet && fleet.nodes) || [];
  const targets = (fleet && fleet.targets) || {};
  for (const n of rows) state.knownNodes.add(n.node);
  collectNodes();
  byId("fleet-empty").hidden = rows.length > 0;
  byId("fleet-table").hidden = rows.length === 0;
  replace(
    byId("fleet-table").tBodies[0],
    rows.map((n) => {
      const [label, kind] = NODE_STATES[n.state] || [fmt.humanize(n.state), "muted"];
      const medians = Object.entries(n.p50_generation_time_seconds || {}).map(([cls, s]) =>
        badge(`${cls} ${fmt.duration(s)}`, timeKind(s, targets[cls]), `target ${fmt.duration(targets[cls])}`),
      );
      const gpus = (n.gpus || []).map((g) =>
        el("div", {
          text: `${g.index} ${g.name || "?"} · ${fmt.percent(g.utilization_percent)} · ${fmt.celsius(g.temperature_celsius)}`,
        }),
      );
      const row = el(
        "tr",
        {
          class: `node-row${n.node === state.node ? " selected" : ""}`,
          data: { node: n.node, state: n.state },
          attrs: { tabindex: "0", title: `Show only ${n.node}` },
        },
        [
          el("th", { attrs: { scope: "row" }, text: n.node }),
          el("td", {}, [badge(label, kind)]),
          el("td", { text: n.last_sample_age_seconds === null ? fmt.DASH : `${fmt.duration(n.last_sample_age_seconds)} ago` }),
          el("td", {}, gpus),
          el("td", { text: fmt.count(n.running_tasks) }),
          el("td", { text: fmt.count(n.tasks) }),
          el("td", { text: n.success_rate === null ? fmt.DASH : fmt.fraction(n.success_rate) }),
          el("td", { class: "medians" }, medians),
          el("td", { text: n.genperf_version || "?" }),
        ],
      );
      const pick = () => {
        state.node = state.node === n.node ? "" : n.node; // a second click shows every node
        filtersChanged();
      };
      row.addEventListener("click", pick);
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter") pick();
      });
      return row;
    }),
  );
}

// A filter's <select>: "All ..." then every name seen so far, rebuilt only when the names
// change so an open drop-down is not reset by each refresh; the chosen value stays listed.
function fillFilter(id, allLabel, known, chosen) {
  if (chosen) known.add(chosen);
  const select = byId(id);
  const names = [...known].sort();
  const current = [...select.options].map((o) => o.value).slice(1);
  if (names.join("\n") !== current.join("\n")) {
    replace(select, [
      el("option", { text: allLabel, attrs: { value: "" } }),
      ...names.map((n) => el("option", { text: n, attrs: { value: n } })),
    ]);
  }
  select.value = chosen;
}

function collectNodes() {
  fillFilter("node-filter", "All nodes", state.knownNodes, state.node);
}

function collectModels(analysis, tasks) {
  if (!state.model) {
    for (const g of (analysis.summary && analysis.summary.breakdown) || []) {
      if (g.model_type && g.model_type !== "*") state.knownModels.add(g.model_type);
    }
  }
  for (const t of tasks) state.knownModels.add(t.model_type);
  fillFilter("model-filter", "All models", state.knownModels, state.model);
}

function benchmark(name) {
  return ((state.analysis && state.analysis.benchmarks) || []).find((b) => b.name === name);
}

function kpi(key, label, value, subs, status) {
  return el("div", { class: `kpi${status ? ` status-${status}` : ""}`, data: { kpi: key } }, [
    el("div", { class: "kpi-label", text: label }),
    el("div", { class: "kpi-value", text: value }),
    ...subs.filter(Boolean).map((s) => el("div", { class: "kpi-sub muted", text: s })),
  ]);
}

function renderKpis(a) {
  const s = a.summary || {};
  const success = benchmark("success_rate");
  const eff = benchmark("resource_efficiency");
  const b = a.bottleneck_analysis || {};
  replace(byId("kpis"), [
    kpi("tasks", "Tasks finished", fmt.count(a.task_count), [
      `${fmt.count(s.completed)} succeeded · ${fmt.count(s.failed)} failed${s.interrupted ? ` · ${fmt.count(s.interrupted)} interrupted` : ""}`,
    ]),
    kpi("success", "Success rate", fmt.fraction(a.success_rate), [success ? `target ${fmt.fraction(success.target)}` : null], success && success.status),
    kpi("time", "Median generation time", fmt.duration(s.median_generation_time), [
      `mean ${fmt.duration(a.average_generation_time)} · p95 ${fmt.duration(s.p95_generation_time)}`,
    ]),
    kpi("efficiency", "Resource efficiency", fmt.fraction(a.resource_efficiency), [
      eff ? `target ${fmt.fraction(eff.target)}` : null,
      // a score without its GPU term is not the full one: say what it lacks
      Object.keys((a.efficiency && a.efficiency.missing) || {}).length
        ? `without ${Object.keys(a.efficiency.missing).map((k) => k.replace(/_/g, " ")).join(", ")}`
        : null,
    ], eff && eff.status),
    kpi("load", "Average model load", fmt.duration(s.average_model_load_time), []),
    kpi(
      "bottleneck",
      "Main bottleneck",
      b.primary_bottleneck ? fmt.humanize(b.primary_bottleneck) : b.status === "no_data" ? fmt.DASH : "None",
      [],
      b.primary_bottleneck ? "below_minimum" : b.status === "ok" ? "target_met" : null,
    ),
  ]);
}

function classOrder(a, b) {
  const na = parseInt(a, 10);
  const nb = parseInt(b, 10);
  if (Number.isNaN(na) !== Number.isNaN(nb)) return Number.isNaN(na) ? 1 : -1;
  return (na - nb) || a.localeCompare(b);
}

function renderCharts() {
  const now = Date.parse(state.analysis.generated_at) || Date.now();
  const min = now - state.hours * 3600e3;
  const max = now;
  const tasks = state.tasks;
  const targets = (state.benchmarks && state.benchmarks.targets) || {};
  const times = targets.generation_time_seconds || {};
  const factor = targets.generation_time_acceptable_factor || 1.5;
  const onPoint = (task) => openTask(task);

  const present = new Set(tasks.filter((t) => t.status !== "running").map((t) => t.resolution_class));
  const classes = [...(present.size ? present : new Set(Object.keys(times)))].sort(classOrder);
  const grid = byId("gentime-charts");
  for (const [cls, box] of charts.gentime) {
    if (!classes.includes(cls)) {
      box.destroy();
      box.figure.remove();
      charts.gentime.delete(cls);
    }
  }
  classes.forEach((cls, i) => {
    let box = charts.gentime.get(cls);
    if (!box) {
      const figure = el("figure", { class: "chart", data: { class: cls } }, [
        el("div", { class: "chart-title", text: cls }),
        el("div", { class: "canvas-box" }, [
          el("canvas", { attrs: { role: "img", "aria-label": `Generation time of ${cls} tasks` } }),
        ]),
        el("figcaption", { class: "empty", hidden: true }),
      ]);
      box = new ChartBox(figure);
      charts.gentime.set(cls, box);
    }
    // keep the figures in class order
    if (grid.children[i] !== box.figure) grid.insertBefore(box.figure, grid.children[i] || null);
    const target = times[cls] ?? null;
    drawGenerationTime(box, {
      cls,
      tasks: tasks.filter((t) => t.resolution_class === cls),
      target,
      acceptable: target ? target * factor : null,
      min,
      max,
      onPoint,
    });
  });
  if (!classes.length) {
    replace(grid, [el("p", { class: "empty", text: "No completed generations in this window." })]);
  } else {
    for (const node of [...grid.children]) if (node.tagName !== "FIGURE") node.remove();
  }

  charts.success ||= new ChartBox(byId("chart-success"));
  charts.vram ||= new ChartBox(byId("chart-vram"));
  charts.load ||= new ChartBox(byId("chart-load"));
  drawSuccessRate(charts.success, {
    tasks,
    hours: state.hours,
    min,
    max,
    band: targets.success_rate || null,
  });
  drawPeakVram(charts.vram, { tasks, min, max, band: targets.vram_usage_percent || null, onPoint });
  drawLoadTime(charts.load, { tasks, min, max, onPoint });
}

function renderBottlenecks(b) {
  b = b || {};
  byId("bottleneck-message").textContent = b.message || "";
  const rank = { critical: 0, warning: 1, info: 2 };
  const list = [...(b.bottlenecks || [])].sort((x, y) => (rank[x.severity] ?? 3) - (rank[y.severity] ?? 3));
  replace(
    byId("bottleneck-list"),
    list.map((x) =>
      el("li", { class: `bottleneck severity-${x.severity}`, data: { resource: x.resource } }, [
        el("div", { class: "item-head" }, [
          badge(x.severity, { critical: "bad", warning: "warn", info: "info" }[x.severity] || "muted"),
          el("strong", { text: fmt.humanize(x.resource) }),
          x.affected_count
            ? el("span", {
                class: "muted small",
                text: `${fmt.countOf(x.affected_count, "task")}${x.affected_share !== null && x.affected_share !== undefined ? ` (${fmt.fraction(x.affected_share)})` : ""}`,
              })
            : null,
        ]),
        el("p", { text: x.summary }),
      ]),
    ),
  );
  const kinds = { ok: "ok", bottleneck: "bad", no_data: "muted" };
  replace(
    byId("bottleneck-checks"),
    Object.entries(b.checks || {}).map(([name, value]) =>
      el("li", { class: `check check-${kinds[value] || "warn"}`, title: fmt.humanize(value), data: { check: name } }, [
        el("span", { text: fmt.humanize(name) }),
        el("span", { class: "check-value", text: value === "no_data" ? "no data" : value }),
      ]),
    ),
  );
}

function renderRecommendations(recs) {
  const rank = { high: 0, medium: 1, low: 2 };
  const ordered = recs
    .map((r, i) => [r, i])
    .sort((x, y) => (rank[x[0].priority] ?? 3) - (rank[y[0].priority] ?? 3) || x[1] - y[1])
    .map(([r]) => r);
  byId("recs-empty").hidden = ordered.length > 0;
  replace(
    byId("recs-list"),
    ordered.map((r) =>
      el("li", { class: `rec priority-${r.priority}`, data: { id: r.id, priority: r.priority } }, [
        el("div", { class: "item-head" }, [
          badge(r.priority, { high: "bad", medium: "warn", low: "info" }[r.priority] || "muted"),
          el("span", { class: "tag", text: r.category }),
          r.affected_count ? el("span", { class: "muted small", text: fmt.countOf(r.affected_count, "task") }) : null,
        ]),
        el("p", { class: "rec-action", text: r.action }),
        el("p", { class: "muted", text: r.evidence }),
        el("p", { class: "rec-effect" }, [el("span", { class: "muted", text: "Expected: " }), r.expected_effect]),
      ]),
    ),
  );
}

function renderFailures(f) {
  const groups = f.groups || [];
  byId("failures-empty").hidden = groups.length > 0;
  replace(
    byId("failures-list"),
    groups.map((g) =>
      el("li", { class: "failure", data: { category: g.category } }, [
        el("div", { class: "item-head" }, [
          badge(fmt.count(g.count), "bad"),
          el("strong", { text: fmt.errorCategory(g.category), title: g.category }),
          g.phase ? el("span", { class: "muted", text: `in ${g.phase}` }) : null,
          g.share_of_tasks !== null && g.share_of_tasks !== undefined
            ? el("span", { class: "muted small", text: `${fmt.fraction(g.share_of_tasks)} of tasks` })
            : null,
        ]),
        (g.suggestions || []).length
          ? el("ul", { class: "suggestions" }, g.suggestions.map((s) => el("li", { text: s })))
          : null,
      ]),
    ),
  );
}

function renderBenchmarks(list) {
  replace(
    byId("bench-table").tBodies[0],
    list.map((b) => {
      const [label, kind] = fmt.benchmarkStatus(b.status, b.better);
      return el("tr", { class: `status-${b.status}`, data: { benchmark: b.name, status: b.status } }, [
        el("th", { attrs: { scope: "row" } }, [
          el("div", { text: fmt.benchmarkName(b.name) }),
          el("div", { class: "muted small", text: b.statistic }),
        ]),
        el("td", { class: "value", text: fmt.inUnit(b.value, b.unit) }),
        el("td", { text: fmt.inUnit(b.target, b.unit) }),
        el("td", { text: fmt.inUnit(b.acceptable, b.unit) }),
        el("td", { text: b.limit === null ? fmt.DASH : fmt.inUnit(b.limit, b.unit) }),
        el("td", {}, [badge(label, kind)]),
        el("td", { text: fmt.count(b.tasks) }),
      ]);
    }),
  );
}

function renderTasks() {
  const tasks = state.tasks;
  const shown = tasks.slice(0, state.shown);
  byId("tasks-empty").hidden = tasks.length > 0;
  byId("tasks-table").hidden = tasks.length === 0;
  byId("tasks-more").hidden = tasks.length <= shown.length;
  byId("tasks-count").textContent = tasks.length
    ? shown.length < state.total
      ? `newest ${fmt.count(shown.length)} of ${fmt.count(state.total)}`
      : fmt.countOf(state.total, "task")
    : "";
  replace(
    byId("tasks-table").tBodies[0],
    shown.map((t, i) => {
      const [label, kind] = fmt.outcome(t.status);
      const started = fmt.parseTime(t.started_at);
      return el("tr", { data: { runId: t.run_id, status: t.status, model: t.model_type } }, [
        el("td", { text: fmt.when(started, state.hours), title: fmt.fullTime(started) }),
        el("td", {}, [taskButton(t, { index: i })]),
        el("td", { text: t.model_type }),
        el("td", { text: t.resolution_class, title: t.resolution }),
        el("td", {}, [badge(label, kind)]),
        el("td", {
          class: "error-cell",
          text: t.error_category ? `${fmt.errorCategory(t.error_category)}${t.failed_phase ? ` in ${t.failed_phase}` : ""}` : "",
          title: t.error_category || undefined,
        }),
        el("td", { class: "num", text: fmt.duration(t.generation_time_seconds) }),
        el("td", { class: "num", text: fmt.mib(t.peak_vram_usage_mb) }),
        el("td", { class: "num opt", text: fmt.duration(t.model_load_time_seconds) }),
      ]);
    }),
  );
}

// --- drill-down ------------------------------------------------------------------------------

async function openTask(task) {
  const dialog = byId("task-dialog");
  state.openTask = task;
  if (!dialog.open) dialog.showModal();
  renderTask(byId("task-detail"), byId("task-dialog-title"), task);
  try {
    const fresh = await api.request(`${P}/tasks/${encodeURIComponent(task.task_id)}`);
    // The id may have been retried since: keep the run that was clicked.
    if (state.openTask === task && fresh.run_id === task.run_id) {
      state.openTask = { ...fresh, current_phase: task.current_phase };
      renderTask(byId("task-detail"), byId("task-dialog-title"), state.openTask);
    }
  } catch (error) {
    if (error instanceof api.ApiError && (error.kind === "unauthorized" || error.kind === "forbidden")) {
      dialog.close();
      lock(error);
    }
    // otherwise the record we have is what we show
  }
}

function followOpenTask(active) {
  const open = state.openTask;
  if (!open || open.status !== "running" || !byId("task-dialog").open) return;
  const now = active.find((t) => t.run_id === open.run_id);
  if (now) {
    state.openTask = now;
    renderTask(byId("task-detail"), byId("task-dialog-title"), now);
  } else {
    openTask(open); // it finished: fetch its stored record
  }
}

// --- controls --------------------------------------------------------------------------------

function readUrl() {
  const q = new URLSearchParams(window.location.search);
  const hours = Number(q.get("window"));
  if (WINDOWS.includes(hours)) state.hours = hours;
  state.model = (q.get("model") || "").slice(0, 100);
  state.successOnly = q.get("success") === "1";
  state.node = (q.get("node") || "").slice(0, 255);
}

function writeUrl() {
  const q = new URLSearchParams();
  if (state.hours !== 24) q.set("window", String(state.hours));
  if (state.model) q.set("model", state.model);
  if (state.successOnly) q.set("success", "1");
  if (state.node) q.set("node", state.node);
  const search = q.toString();
  window.history.replaceState(null, "", search ? `?${search}` : window.location.pathname);
}

function syncControls() {
  for (const button of byId("window-buttons").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.hours) === state.hours));
  }
  byId("success-filter").checked = state.successOnly;
  if (state.model) state.knownModels.add(state.model);
  collectModels({ summary: { breakdown: [] } }, []);
  collectNodes();
  byId("window-label").textContent = fmt.windowName(state.hours);
  for (const format of ["json", "csv"]) {
    byId(`export-${format}`).title =
      `Download every task of the last ${fmt.windowName(state.hours)} as ${format.toUpperCase()} (the model and success filters do not apply)`;
  }
}

function filtersChanged() {
  state.shown = TABLE_STEP;
  writeUrl();
  syncControls();
  if (!state.locked) refreshWindow();
}

async function exportData(format) {
  const buttons = byId("export-controls").querySelectorAll("button");
  buttons.forEach((b) => {
    b.disabled = true;
  });
  const button = format === "csv" ? byId("export-csv") : byId("export-json");
  const label = button.textContent;
  button.textContent = "Exporting…";
  try {
    const response = await api.request(`${P}/export`, {
      method: "POST",
      params: { time_window_hours: state.hours, format },
      raw: true,
    });
    const blob = await response.blob();
    const name = api.attachmentName(response.headers.get("Content-Disposition")) || `genperf-export.${format}`;
    const url = URL.createObjectURL(blob);
    const link = el("a", { attrs: { href: url, download: name }, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    setBanner("export", null);
  } catch (error) {
    if (error instanceof api.ApiError && error.kind === "forbidden") {
      setBanner("export", "Export refused.", error.message);
      byId("export-controls").hidden = true;
    } else {
      handleError(error, "export");
    }
  } finally {
    button.textContent = label;
    buttons.forEach((b) => {
      b.disabled = false;
    });
  }
}

function wire() {
  byId("controls").addEventListener("submit", (event) => event.preventDefault());
  byId("window-buttons").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-hours]");
    if (!button) return;
    const hours = Number(button.dataset.hours);
    if (hours === state.hours) return;
    state.hours = hours;
    filtersChanged();
  });
  byId("model-filter").addEventListener("change", (event) => {
    state.model = event.target.value;
    filtersChanged();
  });
  byId("node-filter").addEventListener("change", (event) => {
    state.node = event.target.value;
    filtersChanged();
  });
  byId("success-filter").addEventListener("change", (event) => {
    state.successOnly = event.target.checked;
    filtersChanged();
  });
  byId("export-json").addEventListener("click", () => exportData("json"));
  byId("export-csv").addEventListener("click", () => exportData("csv"));
  byId("sign-out").addEventListener("click", () => {
    api.setToken("");
    state.role = null;
    byId("export-controls").hidden = true;
    start();
  });
  byId("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId("token-input");
    const token = input.value.trim();
    if (!token) return;
    input.value = "";
    api.setToken(token);
    start();
  });
  byId("tasks-table").tBodies[0].addEventListener("click", (event) => {
    const button = event.target.closest("button[data-index]");
    if (button) openTask(state.tasks[Number(button.dataset.index)]);
  });
  byId("running-table").tBodies[0].addEventListener("click", (event) => {
    const button = event.target.closest("button[data-running]");
    const active = (state.status && state.status.active_tasks) || [];
    if (button) openTask(active[Number(button.dataset.running)]);
  });
  byId("tasks-more").addEventListener("click", () => {
    state.shown += TABLE_STEP;
    renderTasks();
  });
  const dialog = byId("task-dialog");
  byId("task-dialog-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
  dialog.addEventListener("close", () => {
    state.openTask = null;
    closeTask();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.started && !state.locked) {
      statusTick();
      refreshWindow();
    }
  });
}

readUrl();
wire();
syncControls();
start();
