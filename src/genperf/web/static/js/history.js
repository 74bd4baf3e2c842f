// What the history says: predicted against actual for recent generations, each
// optimisation's impact, the p95 forecast and capacity, and configuration changes.
//
// Data sources (with the session's token):
//   /api/v1/generation/tasks              the newest generation requests, each with the
//                                         prediction kept when it was queued (404: this
//                                         server runs no generation service)
//   /api/v1/performance/impact            with against without each optimisation
//   /api/v1/performance/forecast          when each class's p95 crosses its lines
//   /api/v1/performance/config-changes    each change: the window before against after
//
// Each card says on its own when its data cannot be read; the rest of the page goes on.

import * as api from "./api.js";
import { badge, byId, el, replace } from "./dom.js";
import * as fmt from "./format.js";

const P = api.API;
const GENERATIONS = "/api/v1/generation/tasks";
const RECENT_GENERATIONS = 20;
const CHANGES_HOURS = 720; // configuration changes are rare: the last 30 days
const COMPARE_HOURS = 24; // each side of a change
const CHANGES_SHOWN = 5; // each costs a read of its two windows (benchmarks/config_changes.py)

function known(value) {
  return value !== null && value !== undefined && Number.isFinite(Number(value));
}

/** A change in percent, signed with a real minus: "+6 %", "−38 %". */
export function signedPercent(value) {
  if (!known(value)) return fmt.DASH;
  const v = Math.round(Number(value));
  return `${v > 0 ? "+" : v < 0 ? "−" : "±"}${Math.abs(v)} %`;
}

/** How far a prediction was from what happened, as a percentage of what happened. */
export function predictionError(predicted, actual) {
  if (!known(predicted) || !known(actual) || Number(actual) <= 0) return null;
  return (100 * (Number(predicted) - Number(actual))) / Number(actual);
}

function within(estimate, actual) {
  return known(actual) && estimate && actual >= estimate.low && actual <= estimate.high;
}

const settle = (p) => p.then((value) => ({ value }), (error) => ({ error }));

/** The newest generation requests with their kept predictions (cheap: read at every refresh);
 *  a failure is kept as its error, not thrown. */
export async function loadPredictions() {
  return { generations: await settle(api.request(GENERATIONS, { params: { limit: RECENT_GENERATIONS } })) };
}

/** Impact, forecast and configuration changes (each scans up to 50k records: read less often). */
export async function loadHistory(params) {
  const [impact, forecast, changes] = await Promise.all([
    settle(api.request(`${P}/impact`, { params: { time_window_hours: params.time_window_hours, model_type: params.model_type } })),
    settle(api.request(`${P}/forecast`, { params: { time_window_hours: params.time_window_hours } })),
    settle(api.request(`${P}/config-changes`, { params: { time_window_hours: CHANGES_HOURS, compare_hours: COMPARE_HOURS, limit: CHANGES_SHOWN } })),
  ]);
  return { impact, forecast, changes };
}

/** The first refusal among the sources (401/403), so the page can ask for a token. */
export function refusal(history) {
  for (const source of Object.values(history)) {
    const e = source.error;
    if (e instanceof api.ApiError && (e.kind === "unauthorized" || e.kind === "forbidden")) return e;
  }
  return null;
}

/** A card (ids `${card}-error`, `-table`, `-empty`) whose source failed says why, alone. */
function unreadable(card, source) {
  const node = byId(`${card}-error`);
  node.hidden = !source.error;
  node.textContent = source.error ? `Cannot read this: ${source.error.message}` : "";
  if (source.error) {
    byId(`${card}-table`).hidden = true;
    const empty = document.getElementById(`${card}-empty`);
    if (empty) empty.hidden = true;
  }
  return Boolean(source.error);
}

/** Show a card's rows, or its empty message when there are none. */
function fill(card, rows) {
  byId(`${card}-empty`).hidden = rows.length > 0;
  const table = byId(`${card}-table`);
  table.hidden = rows.length === 0;
  replace(table.tBodies[0], rows);
}

/** Draw what was read: ``generations`` and, when they were read this time, the others. */
export function renderHistory(history) {
  renderPredictions(history.generations);
  if (history.impact) renderImpact(history.impact);
  if (history.forecast) renderForecast(history.forecast);
  if (history.changes) renderChanges(history.changes);
}

// --- predicted against actual ----------------------------------------------------------------

function estimateCell(estimate, format) {
  if (!estimate) return el("td", { class: "num", text: fmt.DASH });
  return el("td", { class: "num", title: `90 % interval ${format(estimate.low)} – ${format(estimate.high)}` }, [
    el("div", { text: format(estimate.value) }),
    el("div", { class: "muted small", text: `${format(estimate.low)} – ${format(estimate.high)}` }),
  ]);
}

function errorCell(estimate, actual) {
  const error = estimate ? predictionError(estimate.value, actual) : null;
  if (error === null) return el("td", { class: "num", text: fmt.DASH });
  const inside = within(estimate, actual);
  return el("td", { class: "num", data: { error: error.toFixed(1), within: String(inside) } }, [
    badge(signedPercent(error), inside ? "ok" : "warn", inside ? "within the 90 % interval" : "outside the 90 % interval"),
  ]);
}

function renderPredictions(source) {
  const table = byId("predicted-table");
  const empty = byId("predicted-empty");
  const notFound = source.error instanceof api.ApiError && source.error.status === 404;
  if (notFound) {
    table.hidden = true;
    byId("predicted-error").hidden = true;
    empty.hidden = false;
    empty.textContent = "This server runs no generation service: predictions are kept for the generations it queues (genperf serve).";
    return;
  }
  if (unreadable("predicted", source)) return;
  const tasks = (source.value.tasks || []).filter((t) => t.prediction && t.prediction.answerable);
  empty.textContent = "No recent generation came with a prediction yet: the history answers once a few configurations of a model have run.";
  fill(
    "predicted",
    tasks.map((t) => {
      const p = t.prediction;
      const m = t.status === "completed" ? t.metrics : null; // a failed run's time is no actual
      const [label, kind] = fmt.outcome(t.status);
      const opts = (p.optimizations || []).join(" + ") || "no optimisations";
      const actualVram = m ? m.peak_vram_usage_mb : null;
      return el("tr", { data: { taskId: t.task_id, status: t.status } }, [
        el("td", { class: "mono", text: fmt.shortId(t.task_id), title: t.task_id }),
        el("td", { text: t.model_type }),
        el("td", { text: `${t.resolution} · ${t.frames} f · ${t.steps} steps`, title: `predicted with ${opts}` }),
        el("td", {}, [badge(label, kind)]),
        estimateCell(p.generation_time_seconds, fmt.duration),
        el("td", { class: "num", data: { actual: "time" }, text: fmt.duration(m && m.generation_time_seconds) }),
        errorCell(p.generation_time_seconds, m && m.generation_time_seconds),
        estimateCell(p.peak_ram_mb, fmt.mib),
        el("td", { class: "num", data: { actual: "ram" }, text: fmt.mib(m && m.peak_process_rss_mb) }),
        errorCell(p.peak_ram_mb, m && m.peak_process_rss_mb),
        p.peak_vram_mb || known(actualVram)
          ? el("td", { class: "num", text: `${p.peak_vram_mb ? fmt.mib(p.peak_vram_mb.value) : fmt.DASH} / ${fmt.mib(actualVram)}` })
          : el("td", { class: "num muted", text: "no GPU" }),
      ]);
    }),
  );
}

// --- optimisation impact ---------------------------------------------------------------------

function renderImpact(source) {
  if (unreadable("impact", source)) return;
  fill(
    "impact",
    (source.value.optimizations || []).map((r) =>
      el("tr", { data: { token: r.token } }, [
        el("th", { attrs: { scope: "row" }, class: "mono", text: r.token }),
        el("td", { text: `${r.model_type} ${r.resolution_class}` }),
        el("td", { class: "num", text: signedPercent(r.time_change_percent), title: `${fmt.duration(r.time_without_seconds)} → ${fmt.duration(r.time_with_seconds)}` }),
        el("td", { class: "num", text: signedPercent(r.peak_change_percent), title: `${fmt.mib(r.peak_without_mb)} → ${fmt.mib(r.peak_with_mb)}` }),
        el("td", { class: "num", text: `${fmt.count(r.count_with)} / ${fmt.count(r.count_without)}` }),
        el("td", { text: `${r.time_confidence}, ${r.peak_confidence}` }),
      ]),
    ),
  );
}

// --- forecast --------------------------------------------------------------------------------

function renderForecast(source) {
  const table = byId("forecast-table");
  if (unreadable("forecast", source)) {
    byId("forecast-capacity").textContent = "";
    return;
  }
  const f = source.value;
  const classes = f.classes || [];
  table.hidden = classes.length === 0;
  replace(
    table.tBodies[0],
    classes.map((c) =>
      el("tr", { data: { class: c.resolution_class } }, [
        el("th", { attrs: { scope: "row" }, text: c.resolution_class }),
        el("td", { class: "num", text: fmt.count(c.tasks) }),
        el("td", { class: "num", text: fmt.duration(c.p95_now_seconds) }),
        el("td", { class: "num", text: known(c.trend_seconds_per_day) ? `${c.trend_seconds_per_day >= 0 ? "+" : "−"}${fmt.duration(Math.abs(c.trend_seconds_per_day))}` : fmt.DASH }),
        el("td", { text: (c.target && c.target.text) || c.note || fmt.DASH }),
        el("td", { text: (c.acceptable && c.acceptable.text) || fmt.DASH }),
      ]),
    ),
  );
  const cap = f.capacity || {};
  byId("forecast-capacity").textContent = known(cap.tasks_per_hour)
    ? `Capacity ${Number(cap.tasks_per_hour).toFixed(1)} tasks/hour on ${fmt.countOf(cap.nodes, "node")}; queue ${fmt.count(cap.queue)}${cap.queue > 0 && known(cap.queue_hours) ? `, done in about ${fmt.duration(cap.queue_hours * 3600)}` : ""}.`
    : "Capacity: no task finished in this window.";
}

// --- configuration changes -------------------------------------------------------------------

function side(w) {
  return `${fmt.count(w.completed)}/${fmt.count(w.tasks)} ok · p50 ${fmt.duration(w.median_time_seconds)} · p95 ${fmt.duration(w.p95_time_seconds)} · peak ${fmt.mib(w.median_peak_vram_mb ?? w.median_peak_rss_mb)}`;
}

function renderChanges(source) {
  if (unreadable("changes", source)) return;
  const changes = source.value.changes || [];
  const rows = [];
  for (const c of changes) {
    const when = fmt.parseTime(c.changed_at);
    const what = `${c.key}: ${c.old_value ?? "not set"} → ${c.new_value}`;
    const groups = c.groups || [];
    const head = [
      el("td", { text: fmt.when(when, CHANGES_HOURS), title: fmt.fullTime(when) }),
      el("td", { class: "mono", text: what, title: `by ${c.source}` }),
    ];
    if (!groups.length) {
      rows.push(el("tr", { data: { change: c.id } }, [...head, el("td", { attrs: { colspan: 5 }, class: "muted", text: `no task finished both ${COMPARE_HOURS} h before and after it` })]));
    }
    for (const g of groups) {
      rows.push(
        el("tr", { data: { change: c.id, group: `${g.model_type} ${g.resolution_class}` } }, [
          ...head.map((n) => n.cloneNode(true)),
          el("td", { text: `${g.model_type} ${g.resolution_class}` }),
          el("td", { class: "small", text: side(g.before), title: `success ${fmt.fraction(g.before.success_rate)}` }),
          el("td", { class: "small", text: side(g.after), title: `success ${fmt.fraction(g.after.success_rate)}` }),
          el("td", { class: "num", text: signedPercent(g.time_change_percent), title: `confidence ${g.time_confidence}` }),
          el("td", { class: "num", text: signedPercent(g.peak_change_percent), title: `confidence ${g.peak_confidence}` }),
        ]),
      );
    }
  }
  fill("changes", rows); // a change with no group still has its row
}
