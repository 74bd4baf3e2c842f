// The charts, on the vendored Chart.js (window.Chart). Every chart has a time or step axis
// with its unit, a value axis with its unit, and a tooltip per point; reference lines
// (targets, limits) are datasets with genperfRole "line" and no tooltip of their own.

import * as fmt from "./format.js";

const STEPS_MS = [
  60e3, 2 * 60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3,
  3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3,
  86400e3, 2 * 86400e3, 7 * 86400e3,
];

function css(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

/** The page's palette, read from its CSS variables (so dark mode applies to charts too). */
export function palette() {
  return {
    text: css("--text", "#1c2330"),
    muted: css("--muted", "#5b6575"),
    grid: css("--grid", "rgba(0,0,0,0.08)"),
    accent: css("--accent", "#2f6fde"),
    ok: css("--ok", "#1a8a4a"),
    fair: css("--fair", "#5f8f1f"),
    warn: css("--warn", "#c77700"),
    bad: css("--bad", "#c62828"),
    series: [
      css("--series-1", "#2f6fde"),
      css("--series-2", "#8a4fd8"),
      css("--series-3", "#0f8b8d"),
      css("--series-4", "#d4572a"),
    ],
  };
}

let configured = false;

function chartLib() {
  const Chart = window.Chart;
  if (!Chart) throw new Error("Chart.js did not load");
  if (!configured) {
    const p = palette();
    Chart.defaults.color = p.muted;
    Chart.defaults.borderColor = p.grid;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.animation = false; // live data: redraw at once, and cheaply
    configured = true;
  }
  return Chart;
}

/** Ticks at round local times (every 5 min, 1 h, 6 h, 1 day ...) between min and max. */
export function timeTicks(min, max, maxTicks) {
  const span = Math.max(1, max - min);
  const step = STEPS_MS.find((s) => span / s <= maxTicks) || 7 * 86400e3;
  const offset = new Date(min).getTimezoneOffset() * 60e3; // align to local midnight
  const ticks = [];
  for (let t = Math.ceil((min - offset) / step) * step + offset; t <= max; t += step) {
    ticks.push({ value: t });
  }
  return { ticks, step };
}

function timeAxis(min, max) {
  let step = 3600e3;
  return {
    type: "linear",
    min,
    max,
    title: { display: true, text: "Started (local time)" },
    afterBuildTicks(scale) {
      const wanted = Math.max(3, Math.floor(scale.width / 90));
      const built = timeTicks(scale.min, scale.max, wanted);
      step = built.step;
      scale.ticks = built.ticks;
    },
    ticks: {
      autoSkip: false,
      maxRotation: 0,
      callback: (value) => fmt.timeTick(value, step, max - min),
    },
    grid: { drawTicks: false },
  };
}

const DURATION_STEPS = [
  0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
  3600, 7200, 10800, 21600, 43200, 86400,
];

/** A value axis in seconds whose ticks fall on round durations (30 s, 2 min, 5 min, 1 h). */
function durationAxis(title, suggestedMax) {
  let step = 60;
  return {
    type: "linear",
    beginAtZero: true,
    suggestedMax,
    title: { display: true, text: title },
    afterDataLimits(scale) {
      const wanted = Math.max(3, Math.min(6, Math.floor(scale.height / 45) || 5));
      const top = Math.max(scale.max, 1e-3);
      step = DURATION_STEPS.find((s) => top / s <= wanted) || 86400 * Math.ceil(top / wanted / 86400);
      scale.min = 0;
      scale.max = Math.ceil(top / step) * step;
    },
    afterBuildTicks(scale) {
      const ticks = [];
      for (let v = 0; v <= scale.max + step / 1000; v += step) ticks.push({ value: +v.toFixed(3) });
      scale.ticks = ticks;
    },
    ticks: { callback: (v) => fmt.durationTick(v) },
  };
}

/** A horizontal reference line across [min, max]. */
function refLine(label, y, min, max, color, dash) {
  return {
    type: "line",
    label,
    genperfRole: "line",
    data: [
      { x: min, y },
      { x: max, y },
    ],
    borderColor: color,
    backgroundColor: color,
    borderWidth: 1.5,
    borderDash: dash,
    pointRadius: 0,
    pointHoverRadius: 0,
    pointHitRadius: 0,
    pointStyle: "line",
    fill: false,
    order: 1,
  };
}

function baseOptions({ xAxis, yAxis, tooltip, onPoint, legend = true }) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    parsing: true,
    normalized: true,
    interaction: { mode: "nearest", intersect: true },
    scales: { x: xAxis, y: yAxis },
    plugins: {
      legend: {
        display: legend,
        position: "bottom",
        labels: { boxWidth: 12, boxHeight: 12, usePointStyle: true },
      },
      tooltip: {
        filter: (item) => item.dataset.genperfRole !== "line",
        callbacks: tooltip,
      },
    },
    onClick: onPoint
      ? (_event, elements, chart) => {
          const hit = elements.find((e) => chart.data.datasets[e.datasetIndex].genperfRole !== "line");
          if (!hit) return;
          const raw = chart.data.datasets[hit.datasetIndex].data[hit.index];
          if (raw && raw.task) onPoint(raw.task);
        }
      : undefined,
    onHover: onPoint
      ? (event, elements, chart) => {
          const over = elements.some((e) => chart.data.datasets[e.datasetIndex].genperfRole !== "line");
          event.native.target.style.cursor = over ? "pointer" : "default";
        }
      : undefined,
  };
}

/**
 * A chart inside a <figure> (with a .canvas-box holding the canvas and a figcaption for
 * the empty state). draw(config) replaces the chart; the figure's data-points says how
 * many data points (not reference lines) are drawn.
 */
export class ChartBox {
  constructor(figure) {
    this.figure = figure;
    this.canvas = figure.querySelector("canvas");
    this.caption = figure.querySelector("figcaption");
    this.chart = null;
  }

  draw(config, points, emptyText) {
    this.destroy();
    this.figure.dataset.points = String(points);
    const empty = points === 0;
    this.figure.classList.toggle("is-empty", empty);
    if (this.caption) {
      this.caption.hidden = !empty;
      this.caption.textContent = empty ? emptyText : "";
    }
    if (empty) return;
    const Chart = chartLib();
    this.chart = new Chart(this.canvas, config);
  }

  destroy() {
    if (this.chart) this.chart.destroy();
    this.chart = null;
  }
}

function taskTitle(items) {
  const raw = items[0] && items[0].raw;
  return raw ? fmt.fullTime(raw.x) : "";
}

function taskFooter(items) {
  const raw = items[0] && items[0].raw;
  return raw && raw.task ? `Task ${fmt.shortId(raw.task.task_id)} · click for details` : "";
}

/**
 * Generation time of each task of one resolution class, with its target and acceptable lines.
 * @returns {number} the number of completed tasks drawn
 */
export function drawGenerationTime(box, { cls, tasks, target, acceptable, min, max, onPoint }) {
  const p = palette();
  const completed = [];
  const failed = [];
  for (const t of tasks) {
    const x = fmt.parseTime(t.started_at);
    const y = t.generation_time_seconds;
    if (x === null || y === null || y === undefined) continue;
    if (t.status === "completed") completed.push({ x, y, task: t });
    else if (t.status === "failed" || t.status === "interrupted") failed.push({ x, y, task: t });
  }
  const datasets = [
    {
      type: "scatter",
      label: `${cls} completed`,
      genperfRole: "completed",
      data: completed,
      backgroundColor: p.accent,
      borderColor: p.accent,
      pointRadius: 3.5,
      pointHoverRadius: 6,
      order: 0,
    },
  ];
  if (failed.length) {
    datasets.push({
      type: "scatter",
      label: "failed (time to failure)",
      genperfRole: "failed",
      data: failed,
      backgroundColor: p.bad,
      borderColor: p.bad,
      pointStyle: "crossRot",
      pointRadius: 5,
      pointHoverRadius: 7,
      borderWidth: 2,
      order: 0,
    });
  }
  if (target) datasets.push(refLine(`target ${fmt.duration(target)}`, target, min, max, p.ok, [6, 4]));
  if (acceptable) {
    datasets.push(refLine(`acceptable ${fmt.duration(acceptable)}`, acceptable, min, max, p.warn, [2, 3]));
  }
  const ys = [...completed, ...failed].map((d) => d.y);
  const top = Math.max(0, ...ys, (acceptable || 0) * 1.1);
  const config = {
    type: "scatter",
    data: { datasets },
    options: baseOptions({
      xAxis: timeAxis(min, max),
      yAxis: durationAxis("Generation time", top),
      tooltip: {
        title: taskTitle,
        label: (item) => {
          const t = item.raw.task;
          const verdict = target
            ? item.raw.y <= target
              ? "within target"
              : acceptable && item.raw.y <= acceptable
                ? "within acceptable"
                : "over acceptable"
            : "";
          const what = t.status === "completed" ? "took" : `${t.status} after`;
          return `${cls} ${what} ${fmt.duration(item.raw.y)}${verdict ? ` (${verdict})` : ""}`;
        },
        footer: taskFooter,
      },
      onPoint,
    }),
  };
  box.draw(config, completed.length + failed.length, `No ${cls} tasks in this window.`);
  return completed.length;
}

/** Time buckets for the success-rate chart: about 12-28 per window. */
export function bucketMs(hours) {
  if (hours <= 1) return 5 * 60e3;
  if (hours <= 24) return 3600e3;
  return 6 * 3600e3;
}

/**
 * Share of finished tasks that succeeded, per time bucket, with the target and acceptable
 * lines. Buckets without a finished task have no point.
 */
export function drawSuccessRate(box, { tasks, hours, min, max, band }) {
  const p = palette();
  const size = bucketMs(hours);
  const offset = new Date(min).getTimezoneOffset() * 60e3;
  const buckets = new Map();
  for (const t of tasks) {
    if (t.status === "running") continue;
    const x = fmt.parseTime(t.started_at);
    if (x === null) continue;
    const start = Math.floor((x - offset) / size) * size + offset;
    const b = buckets.get(start) || { ok: 0, n: 0 };
    b.n += 1;
    if (t.status === "completed") b.ok += 1;
    buckets.set(start, b);
  }
  const data = [...buckets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([start, b]) => ({
      x: Math.min(Math.max(start + size / 2, min), max),
      y: (100 * b.ok) / b.n,
      start,
      end: start + size,
      ok: b.ok,
      n: b.n,
    }));
  const target = band ? band.target * 100 : null;
  const acceptable = band ? band.acceptable * 100 : null;
  const color = (y) => (target !== null && y >= target ? p.ok : acceptable !== null && y >= acceptable ? p.warn : p.bad);
  const datasets = [
    {
      type: "line",
      label: "success rate",
      genperfRole: "points",
      data,
      borderColor: p.accent,
      backgroundColor: p.accent,
      pointBackgroundColor: (ctx) => (ctx.raw ? color(ctx.raw.y) : p.accent),
      pointBorderColor: (ctx) => (ctx.raw ? color(ctx.raw.y) : p.accent),
      pointRadius: 4,
      pointHoverRadius: 6,
      borderWidth: 1.5,
      tension: 0,
      order: 0,
    },
  ];
  if (target !== null) datasets.push(refLine(`target ${fmt.percent(target)}`, target, min, max, p.ok, [6, 4]));
  if (acceptable !== null) {
    datasets.push(refLine(`acceptable ${fmt.percent(acceptable)}`, acceptable, min, max, p.warn, [2, 3]));
  }
  const lowest = Math.min(100, ...data.map((d) => d.y), band ? band.minimum * 100 : 100);
  const config = {
    type: "line",
    data: { datasets },
    options: baseOptions({
      xAxis: timeAxis(min, max),
      yAxis: {
        min: Math.max(0, Math.floor((lowest - 5) / 10) * 10),
        max: 100,
        title: { display: true, text: "Succeeded (% of finished)" },
        ticks: { callback: (v) => `${v}%` },
      },
      tooltip: {
        title: (items) => {
          const r = items[0] && items[0].raw;
          return r ? `${fmt.when(r.start, hours)} – ${fmt.when(r.end, hours)}` : "";
        },
        label: (item) => `${fmt.percent(item.raw.y)} succeeded · ${item.raw.ok} of ${item.raw.n} finished`,
      },
    }),
  };
  box.draw(config, data.length, "No finished tasks in this window.");
  return data.length;
}

/** Peak VRAM of each task (GiB), with the GPU's size and the acceptable band line. */
export function drawPeakVram(box, { tasks, min, max, band, onPoint }) {
  const p = palette();
  const ok = [];
  const bad = [];
  let total = 0;
  for (const t of tasks) {
    const x = fmt.parseTime(t.started_at);
    const y = fmt.mibToGib(t.peak_vram_usage_mb);
    if (x === null || y === null || t.status === "running") continue;
    if (t.vram_total_mb) total = Math.max(total, t.vram_total_mb);
    (t.status === "completed" ? ok : bad).push({ x, y, task: t });
  }
  const datasets = [
    {
      type: "scatter",
      label: "completed",
      genperfRole: "completed",
      data: ok,
      backgroundColor: p.accent,
      borderColor: p.accent,
      pointRadius: 3.5,
      pointHoverRadius: 6,
      order: 0,
    },
  ];
  if (bad.length) {
    datasets.push({
      type: "scatter",
      label: "failed",
      genperfRole: "failed",
      data: bad,
      backgroundColor: p.bad,
      borderColor: p.bad,
      pointStyle: "crossRot",
      pointRadius: 5,
      borderWidth: 2,
      order: 0,
    });
  }
  const totalGib = total ? total / 1024 : null;
  if (totalGib) {
    datasets.push(refLine(`GPU memory ${fmt.mib(total)}`, totalGib, min, max, p.muted, []));
    if (band) {
      const line = (totalGib * band.acceptable) / 100;
      datasets.push(refLine(`acceptable ${fmt.percent(band.acceptable)}`, line, min, max, p.warn, [2, 3]));
    }
  }
  const config = {
    type: "scatter",
    data: { datasets },
    options: baseOptions({
      xAxis: timeAxis(min, max),
      yAxis: {
        beginAtZero: true,
        suggestedMax: totalGib || undefined,
        title: { display: true, text: "Peak VRAM (GiB)" },
        ticks: { callback: (v) => `${+Number(v).toFixed(1)} GiB` },
      },
      tooltip: {
        title: taskTitle,
        label: (item) => {
          const t = item.raw.task;
          const share = t.vram_total_mb ? ` · ${fmt.percent((100 * t.peak_vram_usage_mb) / t.vram_total_mb)} of ${fmt.mib(t.vram_total_mb)}` : "";
          return `Peak ${fmt.mib(t.peak_vram_usage_mb)}${share} (${t.resolution_class}, ${t.status})`;
        },
        footer: taskFooter,
      },
      onPoint,
    }),
  };
  const points = ok.length + bad.length;
  box.draw(config, points, "No task reported its VRAM in this window.");
  return points;
}

/** Model load time of each task that loaded a model. */
export function drawLoadTime(box, { tasks, min, max, onPoint }) {
  const p = palette();
  const data = [];
  for (const t of tasks) {
    const x = fmt.parseTime(t.started_at);
    const y = t.model_load_time_seconds;
    if (x === null || y === null || y === undefined) continue;
    data.push({ x, y, task: t });
  }
  const config = {
    type: "scatter",
    data: {
      datasets: [
        {
          type: "scatter",
          label: "model load",
          genperfRole: "points",
          data,
          backgroundColor: p.series[2],
          borderColor: p.series[2],
          pointRadius: 3.5,
          pointHoverRadius: 6,
        },
      ],
    },
    options: baseOptions({
      xAxis: timeAxis(min, max),
      yAxis: durationAxis("Model load time"),
      tooltip: {
        title: taskTitle,
        label: (item) => {
          const t = item.raw.task;
          const mapped = t.weights_memory_mapped ? ", weights memory-mapped" : "";
          return `Loaded ${t.model_used || t.model_type} in ${fmt.duration(item.raw.y)}${mapped}`;
        },
        footer: taskFooter,
      },
      onPoint,
      legend: false,
    }),
  };
  box.draw(config, data.length, "No model load was timed in this window.");
  return data.length;
}

/** Duration of each denoising step of one task. */
export function drawSteps(box, steps) {
  const p = palette();
  const data = steps.map((y, i) => ({ x: i + 1, y }));
  const config = {
    type: "line",
    data: {
      datasets: [
        {
          label: "step time",
          genperfRole: "points",
          data,
          borderColor: p.accent,
          backgroundColor: p.accent,
          pointRadius: steps.length > 60 ? 0 : 2.5,
          pointHoverRadius: 5,
          borderWidth: 1.5,
        },
      ],
    },
    options: {
      ...baseOptions({
        xAxis: {
          type: "linear",
          min: 0,
          max: Math.max(1, steps.length),
          title: { display: true, text: "Step" },
          ticks: { precision: 0 },
        },
        yAxis: durationAxis("Step time"),
        tooltip: {
          title: (items) => (items[0] ? `Step ${items[0].raw.x} of ${steps.length}` : ""),
          label: (item) => fmt.duration(item.raw.y),
        },
        legend: false,
      }),
      interaction: { mode: "index", intersect: false },
    },
  };
  box.draw(config, data.length, "No step times were recorded.");
  return data.length;
}
