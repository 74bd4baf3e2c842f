// The drill-down of one task: what happened, phase by phase and step by step, its peaks,
// the optimisations it ran with and, for a failure, what to do about it.

import { ChartBox, drawSteps } from "./charts.js";
import { badge, el, replace } from "./dom.js";
import * as fmt from "./format.js";

let stepsChart = null;

function row(label, value, title) {
  return [el("dt", { text: label }), el("dd", { text: value, title })];
}

function section(title, children, id) {
  return el("section", { class: "detail-section", attrs: { "aria-label": title, id } }, [
    el("h3", { text: title }),
    ...children,
  ]);
}

function summary(t) {
  return section("Overview", [overview(t)], "detail-overview");
}

function overview(t) {
  const started = fmt.parseTime(t.started_at);
  const completed = fmt.parseTime(t.completed_at);
  const steps = t.steps ?? null;
  const done = (t.step_times_seconds || []).length;
  return el("dl", { class: "facts" }, [
    ...row("Model", t.model_used && t.model_used !== t.model_type ? `${t.model_type} (${t.model_used})` : t.model_type),
    ...row("Resolution", t.resolution === t.resolution_class ? t.resolution : `${t.resolution} (${t.resolution_class})`),
    ...row("Steps", steps === null ? (done ? String(done) : fmt.DASH) : done && done !== steps ? `${done} of ${steps}` : String(steps)),
    ...(t.frames ? row("Frames", String(t.frames)) : []),
    ...row(t.status === "running" ? "Running for" : "Generation time", fmt.duration(t.generation_time_seconds)),
    ...row("Model load", fmt.duration(t.model_load_time_seconds), t.weights_memory_mapped ? "weights memory-mapped" : undefined),
    ...row("Started", fmt.fullTime(started)),
    ...row("Finished", completed === null ? fmt.DASH : fmt.fullTime(completed)),
    ...row("Node", t.node),
    ...row("Run", t.run_id),
  ]);
}

function phases(t) {
  const list = t.phases || [];
  if (!list.length) return section("Phases", [el("p", { class: "empty", text: "No phases were recorded for this task." })], "detail-phases");
  const end = Math.max(
    t.generation_time_seconds || 0,
    ...list.map((p) => (p.started_offset_seconds || 0) + (p.duration_seconds || 0)),
  );
  const rows = list.map((p) => {
    const bar = el("span", { class: `phase-bar${p.failed ? " failed" : ""}` });
    if (end > 0) {
      bar.style.marginLeft = `${(100 * (p.started_offset_seconds || 0)) / end}%`;
      bar.style.width = `${Math.max(0.5, (100 * (p.duration_seconds || 0)) / end)}%`;
    }
    const share = end > 0 ? ` · ${fmt.percent((100 * p.duration_seconds) / end, 0)}` : "";
    return el("li", { class: "phase", data: { phase: p.name } }, [
      el("span", { class: "phase-name", text: p.name }),
      el("span", { class: "phase-track" }, [bar]),
      el("span", { class: "phase-time", text: `${fmt.duration(p.duration_seconds)}${share}` }),
      el("span", {
        class: "phase-peak muted",
        text: p.peak_vram_mb !== null && p.peak_vram_mb !== undefined ? `VRAM ${fmt.mib(p.peak_vram_mb)}` : "",
        title: p.peak_vram_allocated_mb ? `allocated by torch: ${fmt.mib(p.peak_vram_allocated_mb)}` : undefined,
      }),
      p.failed ? badge("failed here", "bad") : null,
    ]);
  });
  return section("Phases", [el("ol", { class: "phases" }, rows)], "detail-phases");
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { mean, median, min: sorted[0], max: sorted[sorted.length - 1] };
}

function steps(t) {
  const values = t.step_times_seconds || [];
  const figure = el("figure", { class: "chart chart-small", attrs: { id: "chart-steps" } }, [
    el("div", { class: "canvas-box" }, [el("canvas", { attrs: { role: "img", "aria-label": "Time of each step" } })]),
    el("figcaption", { class: "empty", hidden: true }),
  ]);
  const children = [];
  if (values.length) {
    const s = stats(values);
    children.push(
      el("p", {
        class: "muted",
        text: `${values.length} steps · mean ${fmt.duration(s.mean)} · median ${fmt.duration(s.median)} · fastest ${fmt.duration(s.min)} · slowest ${fmt.duration(s.max)}`,
      }),
    );
  }
  children.push(figure);
  return { node: section("Steps", children, "detail-steps"), figure, values };
}

function peaks(t) {
  const pct = (used, total) => (used !== null && used !== undefined && total ? ` (${fmt.percent((100 * used) / total)} of ${fmt.mib(total)})` : "");
  const rows = [
    ["Peak VRAM", `${fmt.mib(t.peak_vram_usage_mb)}${pct(t.peak_vram_usage_mb, t.vram_total_mb)}`],
    ["Average VRAM", fmt.mib(t.avg_vram_usage_mb)],
    ["Peak VRAM reserved", fmt.mib(t.peak_vram_reserved_mb)],
    ["Peak RAM", `${fmt.mib(t.peak_ram_usage_mb)}${pct(t.peak_ram_usage_mb, t.ram_total_mb)}`],
    ["Average RAM", fmt.mib(t.avg_ram_usage_mb)],
    ["Peak process memory", fmt.mib(t.peak_process_rss_mb)],
    ["CPU peak / average", `${fmt.percent(t.peak_cpu_percent)} / ${fmt.percent(t.avg_cpu_percent)}`],
    ["GPU utilisation peak / average", `${fmt.percent(t.peak_gpu_utilization_percent)} / ${fmt.percent(t.avg_gpu_utilization_percent)}`],
    ["GPU temperature peak / average", `${fmt.celsius(t.peak_gpu_temperature_celsius)} / ${fmt.celsius(t.avg_gpu_temperature_celsius)}`],
  ];
  if ((t.gpu_throttle_reasons || []).length) rows.push(["GPU throttled by", t.gpu_throttle_reasons.join(", ")]);
  rows.push(["Samples", String(t.samples_count ?? 0)]);
  return section("Peaks", [el("dl", { class: "facts" }, rows.flatMap(([k, v]) => row(k, v)))], "detail-peaks");
}

function optimisations(t) {
  const list = t.optimizations_applied || [];
  const body = list.length
    ? el("ul", { class: "chips" }, list.map((o) => el("li", { class: "chip", text: o })))
    : el("p", { class: "empty", text: "No optimisations were recorded." });
  return section("Optimisations", [body], "detail-optimisations");
}

function failure(t) {
  if (t.status === "completed" || t.status === "running") return null;
  const children = [
    el("dl", { class: "facts" }, [
      ...row("Category", fmt.errorCategory(t.error_category), t.error_category || undefined),
      ...row("Failed in phase", t.failed_phase || fmt.DASH),
    ]),
  ];
  if (t.error_message) children.push(el("pre", { class: "error-message", text: t.error_message }));
  const suggestions = t.recovery_suggestions || [];
  children.push(el("h4", { text: "Recovery suggestions" }));
  children.push(
    suggestions.length
      ? el("ol", { class: "suggestions" }, suggestions.map((s) => el("li", { text: s })))
      : el("p", { class: "empty", text: "No suggestion was recorded for this failure." }),
  );
  return section("Failure", children, "detail-failure");
}

/**
 * Render a task into the dialog's body and title.
 * @param {HTMLElement} body
 * @param {HTMLElement} title
 * @param {object} t a task as the API returns it (TaskOut / ActiveTaskOut)
 */
export function renderTask(body, title, t) {
  if (stepsChart) stepsChart.destroy();
  const [label, kind] = fmt.outcome(t.status);
  replace(title, [
    el("span", { text: "Task " }),
    el("span", { class: "mono", text: t.task_id }),
    badge(label, kind),
    t.current_phase ? badge(`phase: ${t.current_phase}`, "info") : null,
  ]);
  const stepPart = steps(t);
  replace(body, [summary(t), peaks(t), failure(t), phases(t), stepPart.node, optimisations(t)]);
  body.dataset.runId = t.run_id;
  stepsChart = new ChartBox(stepPart.figure);
  drawSteps(stepsChart, stepPart.values);
}

export function closeTask() {
  if (stepsChart) stepsChart.destroy();
  stepsChart = null;
}
