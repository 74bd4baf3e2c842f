"""Grafana dashboards for genperf's Prometheus metrics, built as code; the JSON is what users
import or provision (deploy/grafana/dashboards/, written by ``python -m genperf.exporters.grafana
deploy/grafana/dashboards``; a test checks the committed files are what this module builds).

Six dashboards: the fleet, one node, model x resolution class, phases and steps, failures and
recovery, and the monitor's own health. Each has a Prometheus data source variable
(``$datasource``) and node (``$node``) and, where it matters, model (``$model``) variables;
nodes are Prometheus's ``instance`` label (the node name when the scrape targets give one, see
deploy/prometheus/prometheus.yml).

Rates use ``$__rate_interval`` and totals ``$__range``, so every panel follows the time picker.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 39  # Grafana 10.4 / 11
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NODE = 'instance=~"$node"'
NODE_MODEL = 'instance=~"$node", model_type=~"$model"'
TAGS = ["genperf"]
WIDTH = 24  # Grafana's grid


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: Sequence[Query]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries, stat, bargauge, table
    width: int = 12
    height: int = 8
    description: str = ""
    thresholds: Sequence[tuple[float, str]] = ()  # (from value, colour), above the base green
    options: dict[str, Any] = field(default_factory=dict)


Series = str | tuple[str, str]  # a query: its expression, or (expression, legend)

# Threshold lines shared by several panels: (from value, colour) above the base green.
SUCCESS_LINES = ((0.0, "red"), (0.9, "orange"), (0.95, "green"))  # min_success_rate: 0.95
RAM_LINES = ((75.0, "orange"), (85.0, "red"))
HOT_LINES = ((85.0, "orange"), (90.0, "red"))  # GPU memory percent and GPU temperature


def panel(title: str, *series: Series, **options: Any) -> Panel:
    """A panel of one query per ``series``, each an expression or (expression, legend);
    ``options`` are :class:`Panel`'s other fields."""
    queries = [Query(s) if isinstance(s, str) else Query(*s) for s in series]
    return Panel(title, queries, **options)


def stat(title: str, expr: str, unit: str = "short", width: int = 6, **options: Any) -> Panel:
    """A single number in the short top row of a dashboard."""
    return panel(title, expr, unit=unit, kind="stat", width=width, height=4, **options)


def _quantile(q: float, metric: str, by: str, selector: str) -> str:
    return (
        f"histogram_quantile({q}, sum by (le, {by}) "
        f"(rate({metric}_bucket{{{selector}}}[$__rate_interval])))"
    )


def _mean(metric: str, by: str, selector: str, window: str = "$__rate_interval") -> str:
    return (
        f"sum by ({by}) (rate({metric}_sum{{{selector}}}[{window}])) / "
        f"sum by ({by}) (rate({metric}_count{{{selector}}}[{window}]))"
    )


def _rate(metric: str, selector: str) -> str:
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


def _increase(metric: str, selector: str) -> str:
    return f"increase({metric}{{{selector}}}[$__range])"


def _finished(selector: str, window: str = "$__range") -> str:
    return f"increase(genperf_tasks_finished_total{{{selector}}}[{window}])"


def _success_ratio(selector: str) -> str:
    completed = _finished(f'{selector}, status="completed"')
    return f"sum({completed}) / sum({_finished(selector)})"


# --- the variables ------------------------------------------------------------------------


def _datasource_var() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def _query_var(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,  # on time range change: nodes come and go
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "allValue": ".*" if multi else None,
        "current": {},
        "hide": 0,
        "options": [],
        "regex": "",
    }


def node_var(*, multi: bool = True) -> dict[str, Any]:
    return _query_var(
        "node", "Node", 'label_values(genperf_info{job="genperf"}, instance)', multi=multi
    )


def model_var() -> dict[str, Any]:
    return _query_var(
        "model",
        "Model",
        'label_values(genperf_task_duration_seconds_count{instance=~"$node"}, model_type)',
    )


# --- panels to JSON -----------------------------------------------------------------------


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    steps = [{"color": "green", "value": None}] + [
        {"color": colour, "value": value} for value, colour in panel.thresholds
    ]
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": q.expr,
                "legendFormat": q.legend or "__auto",
                "range": panel.kind == "timeseries",
                "instant": panel.kind != "timeseries",
            }
            for i, q in enumerate(panel.queries)
        ],
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "thresholds": {"mode": "absolute", "steps": steps},
                "color": {"mode": "thresholds" if panel.kind == "stat" else "palette-classic"},
            },
            "overrides": [],
        },
        "options": dict(panel.options),
    }
    if panel.kind == "table":
        out["transformations"] = [{"id": "merge", "options": {}}]
    return out


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: Iterable[dict[str, Any]],
    panels: Sequence[Panel],
) -> dict[str, Any]:
    """A dashboard with ``panels`` laid out left to right, top to bottom."""
    laid_out: list[dict[str, Any]] = []
    x = y = row_height = 0
    for i, panel in enumerate(panels, start=1):
        if x + panel.width > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(_panel_json(panel, i, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,  # shared crosshair
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [_datasource_var(), *variables]},
        "annotations": {"list": []},
        "links": [
            {
                "title": "genperf dashboards",
                "type": "dashboards",
                "tags": TAGS,
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": laid_out,
    }


# --- the dashboards -----------------------------------------------------------------------


def fleet() -> list[Panel]:
    up = f'up{{job="genperf", {NODE}}}'
    duration = "genperf_task_duration_seconds"
    by_class = "resolution_class"
    panels = [
        stat("Nodes up", f"sum({up})"),
        stat(
            "Tasks finished",
            f"sum({_finished(NODE)})",
            description="Over the dashboard's time range.",
        ),
        stat(
            "Success rate",
            _success_ratio(NODE),
            "percentunit",
            thresholds=SUCCESS_LINES,
            description="Completed / finished tasks over the range (min_success_rate: 0.95).",
        ),
        stat("Generations running", f"sum(genperf_monitor_tasks_running{{{NODE}}})"),
        panel(
            "Generation time p50 and p95 by resolution class",
            (_quantile(0.5, duration, by_class, NODE_MODEL), "p50 {{resolution_class}}"),
            (_quantile(0.95, duration, by_class, NODE_MODEL), "p95 {{resolution_class}}"),
            unit="s",
        ),
        panel(
            "Tasks finished per minute by status",
            (f"60 * sum by (status) ({_rate('genperf_tasks_finished_total', NODE)})", "{{status}}"),
            unit="short",
        ),
        panel(
            "GPU memory in use, busiest GPU of each node",
            (
                f"max by (instance) (100 * genperf_gpu_memory_used_bytes{{{NODE}}} "
                f"/ genperf_gpu_memory_total_bytes{{{NODE}}})",
                "{{instance}}",
            ),
            unit="percent",
            thresholds=HOT_LINES,
        ),
        panel(
            "GPU utilisation, mean of each node's GPUs",
            (f"avg by (instance) (genperf_gpu_utilization_percent{{{NODE}}})", "{{instance}}"),
            unit="percent",
        ),
        panel(
            "Host RAM in use",
            (f"genperf_host_ram_percent{{{NODE}}}", "{{instance}}"),
            unit="percent",
            thresholds=RAM_LINES,
        ),
        panel(
            "genperf alerts firing",
            (
                'count by (alertname) (ALERTS{alertname=~"Genperf.*", alertstate="firing"})'
                " or vector(0)",
                "{{alertname}}",
            ),
            description="From deploy/prometheus/rules (genperf rules).",
        ),
    ]
    return panels


def node() -> list[Panel]:
    def on_node(metric: str) -> str:
        return f'{metric}{{instance="$node"}}'

    gpu = "GPU {{gpu}}"
    # (title, unit, thresholds, description, ((metric, legend), ...)): one node's time series
    series: tuple[
        tuple[str, str, Sequence[tuple[float, str]], str, Sequence[tuple[str, str]]], ...
    ] = (
        ("CPU utilisation", "percent", (), "", [("genperf_host_cpu_percent", "CPU")]),
        (
            "Host memory",
            "bytes",
            (),
            "",
            [
                ("genperf_host_ram_used_bytes", "used"),
                ("genperf_host_ram_total_bytes", "installed"),
                ("genperf_host_process_rss_bytes", "monitored process"),
            ],
        ),
        (
            "GPU memory",
            "bytes",
            (),
            "",
            [
                ("genperf_gpu_memory_used_bytes", f"{gpu} used"),
                ("genperf_gpu_memory_total_bytes", f"{gpu} installed"),
            ],
        ),
        ("GPU utilisation", "percent", (), "", [("genperf_gpu_utilization_percent", gpu)]),
        ("GPU temperature", "celsius", HOT_LINES, "", [("genperf_gpu_temperature_celsius", gpu)]),
        (
            "GPU power",
            "watt",
            (),
            "",
            [
                ("genperf_gpu_power_watts", f"{gpu} draw"),
                ("genperf_gpu_power_limit_watts", f"{gpu} limit"),
            ],
        ),
        ("GPU SM clock", "rotmhz", (), "", [("genperf_gpu_sm_clock_mhz", gpu)]),
        (
            "GPU clock cut (1 = throttled)",
            "short",
            (),
            "NVML clock event reasons: heat or power limits slow generations.",
            [
                ("genperf_gpu_thermal_throttled", f"{gpu} heat"),
                ("genperf_gpu_power_throttled", f"{gpu} power"),
            ],
        ),
    )
    panels = [
        stat("CPU", on_node("genperf_host_cpu_percent"), "percent"),
        stat("Host RAM", on_node("genperf_host_ram_percent"), "percent", thresholds=RAM_LINES),
        stat("Free on the model disk", on_node("genperf_host_disk_free_bytes"), "bytes"),
        stat("Latest sample age", on_node("genperf_sample_age_seconds"), "s"),
        *(
            panel(
                title,
                *((on_node(metric), legend) for metric, legend in queries),
                unit=unit,
                thresholds=lines,
                description=description,
            )
            for title, unit, lines, description, queries in series
        ),
    ]
    return panels


def models() -> list[Panel]:
    by = "model_type, resolution_class"
    legend = "{{model_type}} {{resolution_class}}"
    duration = "genperf_task_duration_seconds"
    vram = "genperf_task_peak_vram_percent"
    panels = [
        panel(
            "Generation time p50 by model and resolution class",
            (_quantile(0.5, duration, by, NODE_MODEL), legend),
            unit="s",
        ),
        panel(
            "Generation time p95 by model and resolution class",
            (_quantile(0.95, duration, by, NODE_MODEL), legend),
            unit="s",
        ),
        panel(
            "Completed tasks and mean generation time",
            (f"sum by ({by}) (increase({duration}_count{{{NODE_MODEL}}}[$__range]))", "tasks"),
            (_mean(duration, by, NODE_MODEL, "$__range"), "mean seconds"),
            kind="table",
            description="Over the dashboard's time range.",
        ),
        panel(
            "Share of completed tasks within the target (alert rules)",
            ("resolution_class:genperf_task_within_target:ratio", "{{resolution_class}}"),
            unit="percentunit",
            thresholds=[(0.0, "red"), (0.5, "green")],
            description="Under 50 %: the median is over max_generation_time_<class>. Needs "
            "the recording rules of `genperf rules`.",
        ),
        panel(
            "Peak VRAM p95 by model and resolution class",
            (_quantile(0.95, vram, by, NODE_MODEL), legend),
            unit="percent",
            thresholds=HOT_LINES,
            description="genperf's VRAM benchmark is this p95 against its bands.",
        ),
        panel(
            "Mean peak VRAM by model and resolution class",
            (_mean(vram, by, NODE_MODEL), legend),
            unit="percent",
        ),
    ]
    return panels


def phases() -> list[Panel]:
    phase = "genperf_task_phase_duration_seconds"
    steps = "genperf_task_step_seconds"
    panels = [
        panel("Mean phase duration", (_mean(phase, "phase", NODE_MODEL), "{{phase}}"), unit="s"),
        panel(
            "Mean phase duration by model",
            (_mean(phase, "model_type, phase", NODE_MODEL), "{{model_type}} {{phase}}"),
            unit="s",
        ),
        panel(
            "Time spent per phase",
            (f"sum by (phase) (increase({phase}_sum{{{NODE_MODEL}}}[$__range]))", "{{phase}}"),
            unit="s",
            kind="bargauge",
            description="Over the dashboard's time range: where generation time goes.",
        ),
        panel(
            "Model loading share of generation time (alert rules)",
            (f"instance:genperf_model_load_share:ratio{{{NODE}}}", "{{instance}}"),
            unit="percentunit",
            thresholds=[(0.25, "orange")],
            description="25 % or more: model loading dominates. Needs `genperf rules`.",
        ),
        panel(
            "Mean denoising step by model",
            (_mean(steps, "model_type", NODE_MODEL), "{{model_type}}"),
            unit="s",
        ),
        panel(
            "Mean denoising step by model and class",
            (
                _mean(steps, "model_type, resolution_class", NODE_MODEL),
                "{{model_type}} {{resolution_class}}",
            ),
            unit="s",
        ),
    ]
    return panels


def failures() -> list[Panel]:
    failed = f'{NODE}, status!="completed"'
    oom = f'{NODE}, error_category=~"out_of_memory_.*"'
    interrupted = f'{NODE}, status="interrupted"'
    panels = [
        stat("Success rate", _success_ratio(NODE), "percentunit", 8, thresholds=SUCCESS_LINES),
        stat(
            "Out-of-memory share",
            f"sum({_finished(oom)}) / sum({_finished(NODE)})",
            "percentunit",
            8,
            thresholds=[(0.01, "orange"), (0.05, "red")],
        ),
        stat(
            "Tasks interrupted (found at restart)",
            f"sum({_finished(interrupted)})",
            width=8,
            description="Tasks whose process died; genperf marks them when it starts again.",
        ),
        panel(
            "Failures per minute by category",
            (
                f"60 * sum by (error_category) ({_rate('genperf_tasks_finished_total', failed)})",
                "{{error_category}}",
            ),
        ),
        panel(
            "Failures by category",
            (f"sum by (error_category) ({_finished(failed)})", "{{error_category}}"),
            kind="bargauge",
            description="Over the dashboard's time range. The recovery for each category is in "
            "`genperf analysis` and /api/v1/performance/analysis.",
        ),
        panel(
            "Success rate by node (alert rules)",
            (f"instance:genperf_task_success:ratio{{{NODE}}}", "{{instance}}"),
            unit="percentunit",
            thresholds=[(0.0, "red"), (0.95, "green")],
        ),
        panel(
            "Out-of-memory failures by node",
            (f"sum by (instance) ({_finished(oom)})", "{{instance}}"),
            kind="bargauge",
        ),
    ]
    return panels


def monitor() -> list[Panel]:
    def per_node(expr: str, what: str) -> tuple[str, str]:
        return f"sum by (instance) ({expr})", f"{{{{instance}}}} {what}"

    panels = [
        panel(
            "Latest sample age",
            (f"genperf_sample_age_seconds{{{NODE}}}", "{{instance}}"),
            unit="s",
            description="Over three monitoring intervals: the sampler is stuck.",
        ),
        panel(
            "Samples per second",
            per_node(_rate("genperf_monitor_samples_total", NODE), "taken"),
            per_node(_rate("genperf_monitor_samples_written_total", NODE), "written"),
        ),
        panel(
            "Monitor's own CPU time (share of one core)",
            (_rate("genperf_monitor_sampling_seconds_total", NODE), "{{instance}} sampling"),
            (_rate("genperf_monitor_task_api_seconds_total", NODE), "{{instance}} task API"),
            unit="percentunit",
        ),
        panel(
            "Task records waiting for the database",
            (f"genperf_monitor_tasks_pending{{{NODE}}}", "{{instance}}"),
            thresholds=[(1.0, "orange")],
        ),
        panel(
            "Records dropped",
            per_node(_increase("genperf_monitor_tasks_dropped_total", NODE), "tasks"),
            per_node(_increase("genperf_monitor_samples_dropped_total", NODE), "samples"),
            kind="bargauge",
            thresholds=[(1.0, "red")],
        ),
        panel(
            "Errors per minute",
            (f"60 * {_rate('genperf_monitor_store_errors_total', NODE)}", "{{instance}} database"),
            (
                f"60 * {_rate('genperf_monitor_collector_errors_total', NODE)}",
                "{{instance}} collectors",
            ),
        ),
        panel(
            "Scrape time of /metrics",
            (f'scrape_duration_seconds{{job="genperf", {NODE}}}', "{{instance}}"),
            unit="s",
        ),
        panel(
            "genperf version by node",
            (f"genperf_info{{{NODE}}}", "{{instance}} {{version}}"),
            kind="table",
        ),
    ]
    return panels


@dataclass(frozen=True)
class Board:
    """A dashboard (file ``<uid>.json``): its header, its variables and its panels' builder."""

    uid: str
    title: str
    description: str
    panels: Callable[[], list[Panel]]
    one_node: bool = False  # the node variable picks one node rather than several
    by_model: bool = True  # a model variable too

    def build(self) -> dict[str, Any]:
        variables = [node_var(multi=not self.one_node)] + ([model_var()] if self.by_model else [])
        return dashboard(self.uid, self.title, self.description, variables, self.panels())


BOARDS = (
    Board(
        "genperf-fleet",
        "genperf / Fleet overview",
        "Every genperf node: throughput, success, generation time, GPU and host memory.",
        fleet,
    ),
    Board(
        "genperf-node",
        "genperf / Node",
        "One node's host and GPUs, as genperf's sampler reads them.",
        node,
        one_node=True,
        by_model=False,
    ),
    Board(
        "genperf-models",
        "genperf / Model x resolution class",
        "Generation time and peak memory of completed tasks, per model and resolution class.",
        models,
    ),
    Board(
        "genperf-phases",
        "genperf / Phases and steps",
        "Where each generation's time goes: model load, text encode, denoise, VAE decode.",
        phases,
    ),
    Board(
        "genperf-failures",
        "genperf / Failures and recovery",
        "What fails, how often, and where: error categories, out-of-memory, interrupted tasks.",
        failures,
        by_model=False,
    ),
    Board(
        "genperf-monitor",
        "genperf / Monitor health",
        "genperf's own health and cost: sampling, database writes, drops, errors, scrapes.",
        monitor,
        by_model=False,
    ),
)


def dashboards() -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON (as a dict)."""
    return {f"{board.uid}.json": board.build() for board in BOARDS}


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] = sys.argv[1:]) -> None:
    """Write every dashboard into the directory given (default: the current one)."""
    out = Path(argv[0]) if argv else Path()
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in dashboards().items():
        (out / name).write_text(render(doc), encoding="utf-8")
        print(out / name)


if __name__ == "__main__":
    main()
