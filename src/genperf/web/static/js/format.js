// Numbers for people. The API speaks base units (seconds, bytes, percent, fractions, MiB
// for the spec's *_mb task columns); only this module turns them into text.

export const DASH = "—";

const MIB = 1024 * 1024;

function known(value) {
  return value !== null && value !== undefined && Number.isFinite(Number(value));
}

/** Seconds as "850 ms", "12.3 s", "4 min 10 s", "1 h 02 min", "2 d 3 h". */
export function duration(seconds) {
  if (!known(seconds)) return DASH;
  const s = Number(seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const rest = Math.round(s - m * 60);
    if (rest === 60) return `${m + 1} min`;
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  if (s < 86400) {
    const h = Math.floor(s / 3600);
    const m = Math.round((s - h * 3600) / 60);
    if (m === 60) return `${h + 1} h`;
    return m ? `${h} h ${String(m).padStart(2, "0")} min` : `${h} h`;
  }
  const d = Math.floor(s / 86400);
  const h = Math.round((s - d * 86400) / 3600);
  return h ? `${d} d ${h} h` : `${d} d`;
}

/** Seconds for an axis tick: as short as it can be while exact enough. */
export function durationTick(seconds) {
  if (!known(seconds)) return "";
  const s = Number(seconds);
  if (s === 0) return "0";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${+s.toFixed(1)} s`;
  if (s < 7200) return `${+(s / 60).toFixed(1)} min`;
  return `${+(s / 3600).toFixed(1)} h`;
}

/** Bytes in binary units: "39.1 GiB". */
export function bytes(value) {
  if (!known(value)) return DASH;
  let v = Number(value);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  const digits = i === 0 || Math.abs(v) >= 100 ? 0 : 1;
  return `${v.toFixed(digits)} ${units[i]}`;
}

/** The spec's *_mb task columns are MiB. */
export function mib(value) {
  return known(value) ? bytes(Number(value) * MIB) : DASH;
}

/** MiB as GiB (a number), for chart axes. */
export function mibToGib(value) {
  return known(value) ? Number(value) / 1024 : null;
}

/** A percentage given as 0..100: "87%" or "87.5%". */
export function percent(value, digits) {
  if (!known(value)) return DASH;
  const v = Number(value);
  const d = digits ?? (Math.abs(v) < 10 && v !== 0 && !Number.isInteger(v) ? 1 : 0);
  return `${v.toFixed(d)}%`;
}

/** A fraction 0..1 as a percentage: 0.9286 -> "92.9%". */
export function fraction(value) {
  if (!known(value)) return DASH;
  const v = Number(value) * 100;
  return `${Number.isInteger(v) ? v : v.toFixed(1)}%`;
}

export function celsius(value) {
  return known(value) ? `${Math.round(Number(value))} °C` : DASH;
}

export function watts(value) {
  return known(value) ? `${Math.round(Number(value))} W` : DASH;
}

export function count(value) {
  return known(value) ? Number(value).toLocaleString() : DASH;
}

/** "1 task", "2 tasks": a count with its noun. */
export function countOf(value, noun) {
  return `${count(value)} ${Number(value) === 1 ? noun : `${noun}s`}`;
}

/** A value of a benchmark, in its unit. */
export function inUnit(value, unit) {
  if (unit === "seconds") return duration(value);
  if (unit === "percent") return percent(value, 0);
  if (unit === "fraction") return fraction(value);
  return known(value) ? String(value) : DASH;
}

// --- time ----------------------------------------------------------------------------------

export function parseTime(text) {
  if (!text) return null;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : null;
}

const CLOCK = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const CLOCK_S = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const DAY_CLOCK = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const DATE = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const FULL = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** A time stamp (ms) for a table: the clock within a day, the weekday too beyond. */
export function when(ms, windowHours = 24) {
  if (!known(ms)) return DASH;
  return windowHours > 24 ? DAY_CLOCK.format(ms) : CLOCK.format(ms);
}

export function clock(ms) {
  return known(ms) ? CLOCK_S.format(ms) : DASH;
}

export function fullTime(ms) {
  return known(ms) ? FULL.format(ms) : DASH;
}

/** Label of a time-axis tick at `ms` for ticks `stepMs` apart. */
export function timeTick(ms, stepMs, spanMs) {
  if (stepMs >= 86400e3) return DATE.format(ms);
  if (spanMs > 86400e3) {
    const d = new Date(ms);
    return d.getHours() === 0 && d.getMinutes() === 0 ? DATE.format(ms) : DAY_CLOCK.format(ms);
  }
  return CLOCK.format(ms);
}

export function windowName(hours) {
  if (hours === 1) return "hour";
  if (hours === 168) return "7 days";
  if (hours % 24 === 0 && hours > 24) return `${hours / 24} days`;
  return `${hours} hours`;
}

// --- words ---------------------------------------------------------------------------------

const CATEGORIES = {
  out_of_memory_gpu: "GPU out of memory",
  out_of_memory_host: "Host out of memory",
  model_load_error: "Model load error",
  invalid_input: "Invalid input",
  timeout: "Timeout",
  interrupted: "Interrupted",
  storage_error: "Disk or I/O error",
  network_error: "Network error",
  numerical_error: "NaN or black output",
  gpu_fault: "GPU fault",
  cuda_setup_error: "CUDA setup error",
  unknown: "Unknown error",
};

export function errorCategory(code) {
  if (!code) return DASH;
  return CATEGORIES[code] || humanize(code);
}

const OUTCOMES = {
  completed: ["Succeeded", "ok"],
  failed: ["Failed", "bad"],
  interrupted: ["Interrupted", "warn"],
  running: ["Running", "info"],
};

/** [label, badge kind] of a task status. */
export function outcome(status) {
  return OUTCOMES[status] || [humanize(status || "unknown"), "muted"];
}

const WORDS = { vram: "VRAM", ram: "RAM", cpu: "CPU", gpu: "GPU", model_loading: "Model loading" };

/** A code for people: "model_loading" -> "Model loading", "vram" -> "VRAM". */
export function humanize(code) {
  if (WORDS[code]) return WORDS[code];
  const text = String(code || "").replaceAll("_", " ").trim();
  return text ? text[0].toUpperCase() + text.slice(1) : DASH;
}

const BENCHMARKS = {
  vram_usage_percent: "Peak VRAM",
  ram_usage_percent: "Peak RAM",
  cpu_usage_percent: "CPU",
  success_rate: "Success rate",
  resource_efficiency: "Resource efficiency",
};

export function benchmarkName(name) {
  if (BENCHMARKS[name]) return BENCHMARKS[name];
  const m = /^generation_time_(.+)$/.exec(name || "");
  return m ? `Generation time ${m[1]}` : humanize(name);
}

/** [label, kind] of a benchmark status; "beyond the limit" reads by direction. */
export function benchmarkStatus(status, better) {
  switch (status) {
    case "target_met":
      return ["Target met", "ok"];
    case "acceptable":
      return ["Acceptable", "fair"];
    case "marginal":
      return ["Marginal", "warn"];
    case "below_minimum":
      return [better === "lower" ? "Over the limit" : "Below minimum", "bad"];
    case "over_limit":
      return ["Over the limit", "bad"];
    case "no_data":
      return ["No data", "muted"];
    default:
      return [humanize(status), "muted"];
  }
}

export function shortId(id) {
  const text = String(id ?? "");
  return text.length > 18 ? `${text.slice(0, 8)}…${text.slice(-6)}` : text;
}
