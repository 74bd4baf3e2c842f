"""Pure renderers: payloads and records in, rich renderables out. No I/O; tested against exact text.

Payloads are the API's JSON (see :mod:`genperf.cli.source`), so a screen drawn from the local
database and one drawn from a server are the same. Values are coloured against the targets of
the settings (:mod:`genperf.cli.style`); sizes and times are in human units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from genperf.cli.decode import sample_from_json, task_from_json
from genperf.cli.style import (
    SEVERITY_STYLES,
    STATUS_STYLES,
    Targets,
    grade_quality,
    grade_time,
    grade_usage,
    status_style,
    style_of,
    temperature_style,
)
from genperf.config import Band
from genperf.numbers import percent
from genperf.records import SystemSample, TaskRecord, TaskStatus
from genperf.units import (
    count_of,
    human_bytes,
    human_celsius,
    human_duration,
    human_mib,
    human_percent,
)

GIB = 1024**3
LOW_DISK_FREE_BYTES = 50 * GIB  # the spec's "Minimum Disk: 50GB free space for models"
CRITICAL_DISK_FREE_BYTES = 10 * GIB


def _text(value: str, style: str = "") -> Text:
    return Text(value, style=style)


def _table(title: str | None) -> Table:
    """A compact table: a rule under the header, two spaces between columns, no frame."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


class Fitted:
    """A table that gives up detail, least important first, until it fits the width it is
    drawn at (known only then: a terminal of 80 columns, 120, a pipe). Never cut: a status
    that reads ``complet…`` is worse than a column fewer.

    Args:
        build: the table at a level of detail given up (0: everything).
        levels: how many levels there are beyond 0.
    """

    def __init__(self, build: Callable[[int], Table], levels: int) -> None:
        self.build = build
        self.levels = levels

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        yield self.fit(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.fit(console, options))

    def fit(self, console: Console, options: ConsoleOptions) -> Table:
        """The most detailed table whose natural width fits ``options.max_width``."""
        unbounded = options.update_width(10_000)
        for level in range(self.levels):
            table = self.build(level)
            if Measurement.get(console, unbounded, table).maximum <= options.max_width:
                return table
        return self.build(self.levels)


def short_id(task_id: str, keep: int = 10) -> str:
    """A long task id cut to its first characters (as a short git hash), marked with "…"."""
    return task_id if len(task_id) <= keep else f"{task_id[: keep - 1]}…"


def _when(moment: datetime | None) -> str:
    return "n/a" if moment is None else f"{moment:%m-%d %H:%M}"


# --- system ------------------------------------------------------------------------------


def sample_table(
    sample: SystemSample, targets: Targets | None = None, gpu_note: str | None = None
) -> Table:
    """The current system sample: host, then one row per GPU, usage coloured by the bands.
    ``gpu_note`` says why there is no GPU row (GPU monitoring off, NVML unavailable)."""
    table = Table(
        title=f"System status · {sample.node} · {sample.taken_at:%Y-%m-%d %H:%M:%S} UTC",
        title_justify="left",
        show_header=True,
    )
    table.add_column("resource")
    table.add_column("usage", justify="right")
    table.add_column("detail")

    def usage(value: float | None, band_name: str) -> Text:
        style = ""
        if targets is not None:
            style = style_of(grade_usage(value, getattr(targets, band_name)))
        return _text(human_percent(value, 1), style)

    table.add_row(
        "CPU",
        usage(sample.cpu_percent, "cpu"),
        f"{sample.cpu_count or '?'} cores · {human_celsius(sample.cpu_temperature_celsius)}",
    )
    table.add_row(
        "RAM",
        usage(sample.ram_percent, "ram"),
        f"{human_bytes(sample.ram_used_bytes)} of {human_bytes(sample.ram_total_bytes)}",
    )
    table.add_row(
        "Swap", human_percent(sample.swap_percent, 1), human_bytes(sample.swap_used_bytes)
    )
    free = sample.disk_free_bytes
    disk_style = ""
    if free is not None and free < CRITICAL_DISK_FREE_BYTES:
        disk_style = "red"
    elif free is not None and free < LOW_DISK_FREE_BYTES:
        disk_style = "yellow"
    table.add_row(
        "Disk",
        human_percent(sample.disk_percent, 1),
        _text(f"{human_bytes(free)} free at {sample.disk_path or 'n/a'}", disk_style),
    )
    table.add_row("Process RSS", "", human_bytes(sample.process_rss_bytes))
    if not sample.gpus:
        table.add_row("GPU", "n/a", gpu_note or "no GPU monitoring available")
    for gpu in sample.gpus:
        throttled = ", ".join(gpu.throttle_reasons) if gpu.throttle_reasons else "no throttling"
        detail = Text()
        detail.append(
            f"{gpu.name or '?'} · {human_bytes(gpu.memory_used_bytes)} of "
            f"{human_bytes(gpu.memory_total_bytes)} · util "
            f"{human_percent(gpu.utilization_percent)} · "
        )
        detail.append(
            human_celsius(gpu.temperature_celsius), temperature_style(gpu.temperature_celsius)
        )
        detail.append(f" · {throttled}")
        table.add_row(f"GPU {gpu.index} VRAM", usage(gpu.memory_percent, "vram"), detail)
    return table


def settings_panel(settings: Mapping[str, Any]) -> Panel:
    """Settings in use (already redacted), one key a line."""
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold", no_wrap=True)
    lines.add_column(overflow="fold")
    for key, value in _flatten(settings):
        lines.add_row(key, str(value))
    return Panel(lines, title="Settings in use", title_align="left")


def gpu_note(payload: Mapping[str, Any]) -> str | None:
    """Why GPU monitoring is off or unavailable, from a status payload (None: it is on)."""
    monitoring = payload.get("monitoring") or {}
    state = monitoring.get("gpu_monitoring")
    if state not in ("off", "unavailable"):
        return None
    reason = monitoring.get("gpu_monitoring_reason")
    return f"GPU monitoring {state}" + (f": {reason}" if reason else "")


def monitoring_line(payload: Mapping[str, Any]) -> Text:
    """Whether a monitor is sampling, where, and how fresh its newest sample is."""
    monitoring = payload.get("monitoring") or {}
    age = monitoring.get("sample_age_seconds")
    node = monitoring.get("node") or "?"
    line = Text("Monitor: ")
    if monitoring.get("running"):
        line.append("running", style="green")
        line.append(f" on {node}")
        if age is not None:
            line.append(f" · newest sample {human_duration(age)} old")
        interval = monitoring.get("interval_seconds")
        if interval is not None:
            line.append(f" · every {interval:g} s")
    elif age is not None:
        line.append("not sampling", style="yellow")
        line.append(f" · newest sample, from {node}, is {human_duration(age)} old")
    else:
        line.append("no sample stored yet", style="yellow")
    return line


def database_line(payload: Mapping[str, Any]) -> Text | None:
    if payload.get("database_available", True):
        return None
    line = Text("Database: ")
    line.append("not available", style="red")
    if payload.get("database_error"):
        line.append(f" · {payload['database_error']}")
    return line


def monitor_stats_line(stats: Mapping[str, Any] | None) -> Text | None:
    """The server monitor's own counters: its work, then any loss or error (in red)."""
    if not stats:
        return None
    line = Text("Monitor health: ")
    line.append(
        f"{stats.get('samples_taken', '?')} samples, {stats.get('tasks_written', '?')} tasks "
        f"written, {stats.get('tasks_pending', '?')} pending"
    )
    problems = [
        f"{stats[key]} {label}"
        for key, label in (
            ("tasks_dropped", "tasks dropped"),
            ("samples_dropped", "samples dropped"),
            ("store_errors", "store errors"),
            ("collector_errors", "collector errors"),
        )
        if stats.get(key)
    ]
    if problems:
        line.append(" · ")
        line.append(", ".join(problems), style="red")
    else:
        line.append(" · no loss, no errors", style="green")
    return line


def status_view(payload: Mapping[str, Any], targets: Targets | None = None) -> Group:
    """``genperf status``: the system now, the monitor, the running tasks, the settings."""
    parts: list[RenderableType] = [
        sample_table(sample_from_json(payload["system"]), targets, gpu_note(payload))
    ]
    parts.append(monitoring_line(payload))
    for extra in (database_line(payload), monitor_stats_line(payload.get("monitor"))):
        if extra is not None:
            parts.append(extra)
    parts.append(running_table(payload.get("active_tasks") or (), _moment(payload)))
    if isinstance(payload.get("settings"), Mapping):
        parts.append(settings_panel(payload["settings"]))
    return Group(*parts)


def _moment(payload: Mapping[str, Any]) -> datetime | None:
    stamp = payload.get("timestamp")
    return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(_flatten(value, name + "."))
        else:
            out.append((name, value))
    return out


# --- tasks -------------------------------------------------------------------------------


def _peak(mib: float | None, total_mib: float | None, band: Band) -> Text:
    if mib is None:
        return _text("n/a")
    pct = percent(mib, total_mib)
    if pct is None:
        return _text(human_mib(mib))
    return _text(f"{human_mib(mib)} {pct:.0f}%", style_of(grade_usage(pct, band)))


# What a narrow terminal gives up first: long ids shortened, then the columns that matter
# least (the load, the steps, the RAM peak, the start time).
_TASK_DETAIL = ("ids", "load", "steps", "peak RAM", "started")


def task_table(
    records: Sequence[TaskRecord], targets: Targets, *, title: str | None = None
) -> Fitted:
    """One row per task: when, what, outcome, time against its target, peaks against bands.

    When every task is of one model type, it goes in the title instead of a column. Drawn
    narrower than its natural width, it gives up the detail of ``_TASK_DETAIL`` in order.
    """
    return Fitted(
        lambda level: _task_table(records, targets, title, set(_TASK_DETAIL[:level])),
        len(_TASK_DETAIL),
    )


def _task_table(
    records: Sequence[TaskRecord], targets: Targets, title: str | None, given_up: set[str]
) -> Table:
    models = {r.model_type for r in records}
    one_model = len(models) == 1
    if one_model and title:
        title = f"{title} · model {next(iter(models))}"
    table = _table(title)
    columns = [
        ("started", "left"),
        ("task", "left"),
        *(() if one_model else (("model", "left"),)),
        ("res", "left"),
        ("steps", "right"),
        ("status", "left"),
        ("time", "right"),
        ("load", "right"),
        ("peak VRAM", "right"),
        ("peak RAM", "right"),
    ]
    shown = [(name, justify) for name, justify in columns if name not in given_up]
    for name, justify in shown:
        # The status is never cut: its column is as wide as its longest value.
        widest = max((len(r.status.value) for r in records), default=0)
        table.add_column(
            name, justify=justify, no_wrap=True, min_width=widest if name == "status" else None
        )
    for r in records:
        target = targets.generation_time_target(r.resolution_class)
        grade = grade_time(r.generation_time_seconds, target, targets.acceptable_factor)
        time_style = style_of(grade) if r.status is TaskStatus.COMPLETED else ""
        cells: dict[str, RenderableType] = {
            "started": _when(r.started_at),
            "task": short_id(r.task_id) if "ids" in given_up else r.task_id,
            "model": r.model_type,
            "res": r.resolution_class,
            "steps": "n/a" if r.steps is None else str(r.steps),
            "status": _text(r.status.value, STATUS_STYLES.get(r.status.value, "")),
            "time": _text(human_duration(r.generation_time_seconds), time_style),
            "load": human_duration(r.model_load_time_seconds),
            "peak VRAM": _peak(r.peak_vram_usage_mb, r.vram_total_mb, targets.vram),
            "peak RAM": _peak(r.peak_ram_usage_mb, r.ram_total_mb, targets.ram),
        }
        table.add_row(*(cells[name] for name, _ in shown))
    return table


def failure_notes(records: Sequence[TaskRecord]) -> list[Text]:
    """One line per failed or interrupted task: why, where, and the first thing to try."""
    lines: list[Text] = []
    for r in records:
        if r.status not in (TaskStatus.FAILED, TaskStatus.INTERRUPTED):
            continue
        line = Text("✗ ", style="red")
        line.append(r.task_id, style="bold")
        line.append(f" {r.error_category or 'unknown'}")
        if r.failed_phase:
            line.append(f" in {r.failed_phase}")
        if r.recovery_suggestions:
            line.append(f": {r.recovery_suggestions[0]}")
        lines.append(line)
    return lines


def tasks_view(payload: Mapping[str, Any], targets: Targets) -> RenderableType:
    """``genperf tasks``: the newest tasks first, then what to do about the failed ones."""
    records = [task_from_json(t) for t in payload.get("metrics") or ()]
    total = payload.get("total")
    if not records:
        return _text("No tasks recorded yet.", "yellow")
    shown = f"{len(records)} of {total}" if isinstance(total, int) else str(len(records))
    title = f"Recent tasks · {shown}, newest first · times UTC"
    return Group(task_table(records, targets, title=title), *failure_notes(records))


# --- live ----------------------------------------------------------------------------------


def _phase(item: Mapping[str, Any], record: TaskRecord) -> Text:
    phase = item.get("current_phase")
    if phase:
        return _text(str(phase), "cyan")
    if record.phases:  # a stored record knows only the phases it finished
        return _text(f"after {record.phases[-1].name}", "dim")
    return _text("—", "dim")


def running_table(running: Sequence[Mapping[str, Any]], now: datetime | None) -> RenderableType:
    """Tasks in progress: their phase and how long they have run (at ``now``)."""
    if not running:
        return _text("No task running.", "dim")
    return Fitted(lambda level: _running_table(running, now, level > 0), 1)


def _running_table(
    running: Sequence[Mapping[str, Any]], now: datetime | None, short: bool
) -> Table:
    table = _table("Running now")
    for name in ("task", "model", "res", "steps", "phase", "elapsed", "started"):
        table.add_column(name, justify="right" if name in ("steps", "elapsed") else "left")
    for item in running:
        record = task_from_json(item)
        elapsed = None if now is None else max(0.0, (now - record.started_at).total_seconds())
        table.add_row(
            short_id(record.task_id) if short else record.task_id,
            record.model_type,
            record.resolution_class,
            "n/a" if record.steps is None else str(record.steps),
            _phase(item, record),
            human_duration(elapsed),
            _when(record.started_at),
        )
    return table


def live_view(
    payload: Mapping[str, Any], targets: Targets, *, interval: float, where: str
) -> Group:
    """``genperf monitor``: one frame of the live dashboard."""
    parts: list[RenderableType] = []
    system = payload.get("system")
    if system:
        parts.append(sample_table(sample_from_json(system), targets, gpu_note(payload)))
    else:
        parts.append(_text("No system sample available.", "yellow"))
    parts.append(monitoring_line(payload))
    for extra in (database_line(payload), monitor_stats_line(payload.get("monitor"))):
        if extra is not None:
            parts.append(extra)
    parts.append(running_table(payload.get("active_tasks") or (), _moment(payload)))
    recent = [task_from_json(t) for t in payload.get("recent") or ()]
    if recent:
        parts.append(task_table(recent, targets, title="Latest finished · times UTC"))
    else:
        parts.append(_text("No finished task yet.", "dim"))
    parts.append(_text(f"{where} · every {interval:g} s · Ctrl-C to quit", "dim"))
    return Group(*parts)


# --- analysis ------------------------------------------------------------------------------

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}
DIRECTION_STYLES = {
    "improving": "green",
    "degrading": "red",
    "stable": "",
    "insufficient_data": "dim",
}
_BENCHMARK_NAMES = {
    "vram_usage_percent": "VRAM usage",
    "ram_usage_percent": "RAM usage",
    "cpu_usage_percent": "CPU usage",
    "success_rate": "success rate",
    "resource_efficiency": "resource efficiency",
}
_TREND_NAMES = {
    "generation_time_seconds": "generation time",
    "success_rate": "success rate",
    "peak_vram_percent": "peak VRAM",
    "model_load_time_seconds": "model load time",
}


def _fraction(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _by_unit(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "seconds":
        return human_duration(value)
    if unit == "fraction":
        return _fraction(value)
    if unit == "percent":
        return human_percent(value, 1)
    return f"{value:g}"


def _ranked(items: Sequence[Mapping[str, Any]], key: str, rank: Mapping[str, int]) -> list[Any]:
    """Most important first; the analysis' own order among equals."""
    return sorted(items, key=lambda item: rank.get(str(item.get(key)), len(rank)))


def _summary_panel(report: Mapping[str, Any], targets: Targets) -> Panel:
    summary = report.get("summary") or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column()
    sr = report.get("success_rate")
    band = targets.success_rate
    grid.add_row(
        "success rate",
        _text(_fraction(sr), style_of(grade_quality(sr, band))),
        f"target {_fraction(band.target, 0)} · acceptable {_fraction(band.acceptable, 0)}"
        f" · minimum {_fraction(band.minimum, 0)}",
    )
    grid.add_row(
        "generation time",
        human_duration(report.get("average_generation_time")),
        f"average · median {human_duration(summary.get('median_generation_time'))}"
        f" · p95 {human_duration(summary.get('p95_generation_time'))}",
    )
    grid.add_row("model load", human_duration(summary.get("average_model_load_time")), "average")
    eff = report.get("resource_efficiency")
    eband = targets.efficiency
    grid.add_row(
        "efficiency",
        _text(_fraction(eff, 0), style_of(grade_quality(eff, eband))),
        f"target {_fraction(eband.target, 0)} · acceptable {_fraction(eband.acceptable, 0)}"
        f" · minimum {_fraction(eband.minimum, 0)}",
    )
    missing = (report.get("efficiency") or {}).get("missing") or {}
    if missing:  # a score without its GPU term is not the full one: say what it lacks
        grid.add_row("", "", "without " + ", ".join(k.replace("_", " ") for k in missing))
    return Panel(grid, title="Summary", title_align="left")


def _resolution_table(report: Mapping[str, Any], targets: Targets) -> Table | None:
    groups = (report.get("summary") or {}).get("by_resolution") or []
    if not groups:
        return None
    table = _table("By resolution (median against the target)")
    for name in ("res", "tasks", "success", "average", "median", "p95", "target"):
        table.add_column(name, justify="left" if name == "res" else "right")
    for g in groups:
        cls = g.get("resolution_class")
        target = targets.generation_time_target(cls)
        median = g.get("median_generation_time")
        table.add_row(
            str(cls),
            str(g.get("task_count", "n/a")),
            _text(
                _fraction(g.get("success_rate")),
                style_of(grade_quality(g.get("success_rate"), targets.success_rate)),
            ),
            human_duration(g.get("average_generation_time")),
            _text(
                human_duration(median),
                style_of(grade_time(median, target, targets.acceptable_factor)),
            ),
            human_duration(g.get("p95_generation_time")),
            human_duration(target),
        )
    return table


def _bottlenecks(report: Mapping[str, Any]) -> list[RenderableType]:
    analysis = report.get("bottleneck_analysis") or {}
    items = _ranked(analysis.get("bottlenecks") or [], "severity", SEVERITY_RANK)
    head = Text("Bottlenecks", style="bold")
    if not items:
        head.append(f": {analysis.get('message') or 'none found.'}", style="green")
        return [head]
    head.append(" (most severe first)")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column()
    for b in items:
        severity = str(b.get("severity", "?"))
        share = b.get("affected_share")
        detail = str(b.get("summary", ""))
        if b.get("affected_count"):
            detail += f" [{count_of(b['affected_count'], 'task')}" + (
                f", {_fraction(share, 0)}]" if share is not None else "]"
            )
        grid.add_row(
            _text(f"● {severity}", SEVERITY_STYLES.get(severity, "")),
            str(b.get("resource", "?")).replace("_", " "),
            Text(detail),
        )
    return [head, grid]


def _recommendations(report: Mapping[str, Any]) -> list[RenderableType]:
    items = _ranked(report.get("optimization_recommendations") or [], "priority", PRIORITY_RANK)
    head = Text("Recommendations", style="bold")
    if not items:
        head.append(": nothing to change.", style="green")
        return [head]
    head.append(" (priority order)")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column()
    for n, r in enumerate(items, start=1):
        priority = str(r.get("priority", "?"))
        what = Text()
        what.append(priority, style=SEVERITY_STYLES.get(priority, ""))
        what.append(f" · {r.get('category', '?')} · ", style="dim")
        what.append(str(r.get("action", "")))
        if r.get("evidence"):
            what.append(f"\nwhy: {r['evidence']}", style="dim")
        if r.get("expected_effect"):
            what.append(f"\neffect: {r['expected_effect']}", style="dim")
        grid.add_row(f"{n}.", what)
    return [head, grid]


def _trend_rows(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    trends = report.get("performance_trends") or {}
    rows: list[Mapping[str, Any]] = []
    for value in trends.values():
        if isinstance(value, Mapping) and "direction" in value:
            rows.append(value)
        elif isinstance(value, Mapping):  # per class: {"720p": trend, ...}
            rows.extend(v for v in value.values() if isinstance(v, Mapping))
    return rows


def _trend_value(value: float | None, metric: str) -> str:
    if metric.endswith("_seconds"):
        return human_duration(value)
    if metric == "success_rate":
        return _fraction(value)
    if metric.endswith("_percent"):
        return human_percent(value, 1)
    return "n/a" if value is None else f"{value:g}"


def _trends(report: Mapping[str, Any]) -> Table | None:
    rows = _trend_rows(report)
    if not rows:
        return None
    table = _table("Trends")
    for name in ("metric", "direction", "from", "to", "change", "tasks"):
        table.add_column(name, justify="left" if name in ("metric", "direction") else "right")
    for t in rows:
        metric = str(t.get("metric", "?"))
        name = _TREND_NAMES.get(metric, metric.replace("_", " "))
        if t.get("resolution_class"):
            name += f" {t['resolution_class']}"
        direction = str(t.get("direction", "?"))
        rel = t.get("relative_change")
        table.add_row(
            name,
            _text(direction.replace("_", " "), DIRECTION_STYLES.get(direction, "")),
            _trend_value(t.get("start_value"), metric),
            _trend_value(t.get("end_value"), metric),
            "n/a" if rel is None else f"{100 * rel:+.1f}%",
            str(t.get("tasks", "n/a")),
        )
    return table


def _failures(report: Mapping[str, Any]) -> list[RenderableType]:
    groups = (report.get("failures") or {}).get("groups") or []
    if not groups:
        return []
    lines: list[RenderableType] = [Text("Failures", style="bold")]
    for g in groups:
        line = Text("✗ ", style="red")
        line.append(f"{g.get('count', '?')} × {g.get('category', 'unknown')}")
        if g.get("phase"):
            line.append(f" in {g['phase']}")
        share = g.get("share_of_tasks")
        if share is not None:
            line.append(f" ({_fraction(share)} of tasks)")
        suggestions = g.get("suggestions") or []
        if suggestions:
            line.append(f": {suggestions[0]}")
        lines.append(line)
    return lines


def analysis_view(report: Mapping[str, Any], targets: Targets) -> Group:
    """``genperf analysis``: key figures against the targets, then what limits the service,
    what to change (in priority order), how it evolves and why tasks failed."""
    summary = report.get("summary") or {}
    hours = report.get("time_window_hours")
    count = report.get("task_count", summary.get("task_count", 0))
    head = Text(
        f"Performance analysis · last {hours:g} h · " if hours else "Performance analysis · "
    )
    head.stylize("bold")
    head.append(
        f"{count} finished task{'s' if count != 1 else ''}: {summary.get('completed', 0)} "
        f"completed, {summary.get('failed', 0)} failed, {summary.get('interrupted', 0)} "
        "interrupted"
    )
    method = report.get("method") or {}
    fraction = method.get("sample_fraction")
    if isinstance(fraction, int | float) and fraction < 1:
        head.append(f" · medians and trends from a {_fraction(fraction, 0)} sample", style="dim")
    if not count:
        return Group(
            head, _text("No finished task in this window: nothing to analyse yet.", "yellow")
        )
    parts: list[RenderableType] = [head, _summary_panel(report, targets)]
    table = _resolution_table(report, targets)
    if table is not None:
        parts.append(table)
    parts.extend(_bottlenecks(report))
    parts.extend(_recommendations(report))
    trends = _trends(report)
    if trends is not None:
        parts.append(trends)
    parts.extend(_failures(report))
    return Group(*parts)


# --- benchmarks ----------------------------------------------------------------------------


def benchmarks_view(payload: Mapping[str, Any], targets: Targets | None = None) -> Group:
    """``genperf benchmarks``: each benchmark's current value against its lines, and status.

    Everything comes from the payload (the server's targets when remote); ``targets`` is
    unused and accepted so every view is called alike.
    """
    del targets
    hours = payload.get("time_window_hours")
    items = payload.get("benchmarks") or []
    title = "Benchmarks" + (f" · last {hours:g} h" if hours else "")
    table = _table(title)
    for name in ("benchmark", "current", "target", "acceptable", "limit", "status", "tasks"):
        table.add_column(name, justify="left" if name in ("benchmark", "status") else "right")
    for b in items:
        name = str(b.get("name", "?"))
        label = _BENCHMARK_NAMES.get(name)
        if label is None and name.startswith("generation_time_"):
            label = f"generation time {name.removeprefix('generation_time_')}"
        unit = str(b.get("unit", ""))
        status = str(b.get("status", "no_data"))
        table.add_row(
            label or name.replace("_", " "),
            _text(_by_unit(b.get("value"), unit), status_style(status)),
            _by_unit(b.get("target"), unit),
            _by_unit(b.get("acceptable"), unit),
            "—" if b.get("limit") is None else _by_unit(b.get("limit"), unit),
            _text(status.replace("_", " "), status_style(status)),
            str(b.get("tasks", "n/a")),
        )
    parts: list[RenderableType] = [table]
    if not items:
        parts.append(_text("No benchmark configured.", "yellow"))
    elif all(b.get("status") == "no_data" for b in items):
        parts.append(_text("No finished task in this window: nothing to measure yet.", "yellow"))
    return Group(*parts)


_NODE_STATE_STYLES = {"up": "green", "down": "red", "no_samples": "yellow"}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def _node_gpus(gpus: Sequence[Mapping[str, Any]]) -> Text:
    out = Text()
    for i, g in enumerate(gpus):
        if i:
            out.append("\n")
        memory = percent(g.get("memory_used_bytes"), g.get("memory_total_bytes"))
        util = g.get("utilization_percent")
        out.append(f"{g.get('index')} {g.get('name') or '?'} ")
        out.append("—" if memory is None else f"mem {memory:.0f}%")
        out.append("" if util is None else f" util {util:.0f}%")
        celsius = g.get("temperature_celsius")
        if celsius is not None:
            out.append(f" {celsius:.0f}°C", temperature_style(celsius))
    return out


def nodes_view(payload: Mapping[str, Any], targets: Targets) -> Group:
    """``genperf nodes``: one row per node; times coloured against the payload's targets."""
    hours = payload.get("time_window_hours")
    rows = payload.get("nodes") or []
    goals = payload.get("targets") or targets.generation_time
    table = _table("Nodes" + (f" · last {hours:g} h" if hours else ""))
    for name in ("node", "state", "sample", "GPUs", "run", "tasks", "success", "p50", "genperf"):
        table.add_column(name, justify="right" if name in ("run", "tasks", "success") else "left")
    for n in rows:
        state = str(n.get("state", "?"))
        rate = n.get("success_rate")
        p50 = Text()
        for i, (cls, seconds) in enumerate((n.get("p50_generation_time_seconds") or {}).items()):
            grade = grade_time(seconds, goals.get(cls), targets.acceptable_factor)
            p50.append(("\n" if i else "") + f"{cls} {seconds:.0f} s", style_of(grade))
        table.add_row(
            str(n.get("node")),
            _text(state.replace("_", " "), _NODE_STATE_STYLES.get(state, "")),
            _age(n.get("last_sample_age_seconds")),
            _node_gpus(n.get("gpus") or []),
            str(n.get("running_tasks", 0)),
            str(n.get("tasks", 0)),
            _text(
                "—" if rate is None else f"{100 * rate:.1f}%",
                style_of(grade_quality(rate, targets.success_rate)),
            ),
            p50,
            str(n.get("genperf_version") or "?"),
        )
    parts: list[RenderableType] = [table]
    if not rows:
        parts.append(_text("No node sampled or ran a task in this window.", "yellow"))
    return Group(*parts)
