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
from collections.abc import Iterable, Sequence
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


def _q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


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


def fleet() -> dict[str, Any]:
    up = f'up{{job="genperf", {NODE}}}'
    panels = [
        Panel("Nodes up", [_q(f"sum({up})")], kind="stat", width=6, height=4),
        Panel(
            "Tasks finished",
            [_q(f"sum({_finished(NODE)})")],
            kind="stat",
            width=6,
            height=4,
            description="Over the dashboard's time range.",
        ),
        Panel(
            "Success rate",
            [_q(_success_ratio(NODE))],
            unit="percentunit",
            kind="stat",
            width=6,
            height=4,
            thresholds=[(0.0, "red"), (0.9, "orange"), (0.95, "green")],
            description="Completed / finished tasks over the range (min_success_rate: 0.95).",
        ),
        Panel(
            "Generations running",
            [_q(f"sum(genperf_monitor_tasks_running{{{NODE}}})")],
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "Generation time p50 and p95 by resolution class",
            [
                _q(
                    _quantile(0.5, "genperf_task_duration_seconds", "resolution_class", NODE_MODEL),
                    "p50 {{resolution_class}}",
                ),
                _q(
                    _quantile(
                        0.95, "genperf_task_duration_seconds", "resolution_class", NODE_MODEL
                    ),
                    "p95 {{resolution_class}}",
                ),
            ],
            unit="s",
        ),
        Panel(
            "Tasks finished per minute by status",
            [
                _q(
                    f"60 * sum by (status) ({_rate('genperf_tasks_finished_total', NODE)})",
                    "{{status}}",
                )
            ],
            unit="short",
        ),
        Panel(
            "GPU memory in use, busiest GPU of each node",
            [
                _q(
                    f"max by (instance) (100 * genperf_gpu_memory_used_bytes{{{NODE}}} "
                    f"/ genperf_gpu_memory_total_bytes{{{NODE}}})",
                    "{{instance}}",
                )
            ],
            unit="percent",
            thresholds=[(85.0, "orange"), (90.0, "red")],
        ),
        Panel(
            "GPU utilisation, mean of each node's GPUs",
            [_q(f"avg by (instance) (genperf_gpu_utilization_percent{{{NODE}}})", "{{instance}}")],
            unit="percent",
        ),
        Panel(
            "Host RAM in use",
            [_q(f"genperf_host_ram_percent{{{NODE}}}", "{{instance}}")],
            unit="percent",
            thresholds=[(75.0, "orange"), (85.0, "red")],
        ),
        Panel(
            "genperf alerts firing",
            [
                _q(
                    'count by (alertname) (ALERTS{alertname=~"Genperf.*", alertstate="firing"})'
                    " or vector(0)",
                    "{{alertname}}",
                )
            ],
            description="From deploy/prometheus/rules (genperf rules).",
        ),
    ]
    return dashboard(
        "genperf-fleet",
        "genperf / Fleet overview",
        "Every genperf node: throughput, success, generation time, GPU and host memory.",
        [node_var(), model_var()],
        panels,
    )


def node() -> dict[str, Any]:
    n = 'instance="$node"'
    gpu = "GPU {{gpu}}"
    panels = [
        Panel(
            "CPU",
            [_q(f"genperf_host_cpu_percent{{{n}}}")],
            unit="percent",
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "Host RAM",
            [_q(f"genperf_host_ram_percent{{{n}}}")],
            unit="percent",
            kind="stat",
            width=6,
            height=4,
            thresholds=[(75.0, "orange"), (85.0, "red")],
        ),
        Panel(
            "Free on the model disk",
            [_q(f"genperf_host_disk_free_bytes{{{n}}}")],
            unit="bytes",
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "Latest sample age",
            [_q(f"genperf_sample_age_seconds{{{n}}}")],
            unit="s",
            kind="stat",
            width=6,
            height=4,
        ),
        Panel("CPU utilisation", [_q(f"genperf_host_cpu_percent{{{n}}}", "CPU")], unit="percent"),
        Panel(
            "Host memory",
            [
                _q(f"genperf_host_ram_used_bytes{{{n}}}", "used"),
                _q(f"genperf_host_ram_total_bytes{{{n}}}", "installed"),
                _q(f"genperf_host_process_rss_bytes{{{n}}}", "monitored process"),
            ],
            unit="bytes",
        ),
        Panel(
            "GPU memory",
            [
                _q(f"genperf_gpu_memory_used_bytes{{{n}}}", f"{gpu} used"),
                _q(f"genperf_gpu_memory_total_bytes{{{n}}}", f"{gpu} installed"),
            ],
            unit="bytes",
        ),
        Panel(
            "GPU utilisation", [_q(f"genperf_gpu_utilization_percent{{{n}}}", gpu)], unit="percent"
        ),
        Panel(
            "GPU temperature",
            [_q(f"genperf_gpu_temperature_celsius{{{n}}}", gpu)],
            unit="celsius",
            thresholds=[(85.0, "orange"), (90.0, "red")],
        ),
        Panel(
            "GPU power",
            [
                _q(f"genperf_gpu_power_watts{{{n}}}", f"{gpu} draw"),
                _q(f"genperf_gpu_power_limit_watts{{{n}}}", f"{gpu} limit"),
            ],
            unit="watt",
        ),
        Panel("GPU SM clock", [_q(f"genperf_gpu_sm_clock_mhz{{{n}}}", gpu)], unit="rotmhz"),
        Panel(
            "GPU clock cut (1 = throttled)",
            [
                _q(f"genperf_gpu_thermal_throttled{{{n}}}", f"{gpu} heat"),
                _q(f"genperf_gpu_power_throttled{{{n}}}", f"{gpu} power"),
            ],
            description="NVML clock event reasons: heat or power limits slow generations.",
        ),
    ]
    return dashboard(
        "genperf-node",
        "genperf / Node",
        "One node's host and GPUs, as genperf's sampler reads them.",
        [node_var(multi=False)],
        panels,
    )


def models() -> dict[str, Any]:
    by = "model_type, resolution_class"
    legend = "{{model_type}} {{resolution_class}}"
    duration = "genperf_task_duration_seconds"
    panels = [
        Panel(
            "Generation time p50 by model and resolution class",
            [_q(_quantile(0.5, duration, by, NODE_MODEL), legend)],
            unit="s",
        ),
        Panel(
            "Generation time p95 by model and resolution class",
            [_q(_quantile(0.95, duration, by, NODE_MODEL), legend)],
            unit="s",
        ),
        Panel(
            "Completed tasks and mean generation time",
            [
                _q(
                    f"sum by ({by}) (increase({duration}_count{{{NODE_MODEL}}}[$__range]))", "tasks"
                ),
                _q(_mean(duration, by, NODE_MODEL, "$__range"), "mean seconds"),
            ],
            kind="table",
            description="Over the dashboard's time range.",
        ),
        Panel(
            "Share of completed tasks within the target (alert rules)",
            [_q("resolution_class:genperf_task_within_target:ratio", "{{resolution_class}}")],
            unit="percentunit",
            thresholds=[(0.0, "red"), (0.5, "green")],
            description="Under 50 %: the median is over max_generation_time_<class>. Needs "
            "the recording rules of `genperf rules`.",
        ),
        Panel(
            "Peak VRAM p95 by model and resolution class",
            [_q(_quantile(0.95, "genperf_task_peak_vram_percent", by, NODE_MODEL), legend)],
            unit="percent",
            thresholds=[(85.0, "orange"), (90.0, "red")],
            description="genperf's VRAM benchmark is this p95 against its bands.",
        ),
        Panel(
            "Mean peak VRAM by model and resolution class",
            [_q(_mean("genperf_task_peak_vram_percent", by, NODE_MODEL), legend)],
            unit="percent",
        ),
    ]
    return dashboard(
        "genperf-models",
        "genperf / Model x resolution class",
        "Generation time and peak memory of completed tasks, per model and resolution class.",
        [node_var(), model_var()],
        panels,
    )


def phases() -> dict[str, Any]:
    phase = "genperf_task_phase_duration_seconds"
    steps = "genperf_task_step_seconds"
    panels = [
        Panel(
            "Mean phase duration", [_q(_mean(phase, "phase", NODE_MODEL), "{{phase}}")], unit="s"
        ),
        Panel(
            "Mean phase duration by model",
            [_q(_mean(phase, "model_type, phase", NODE_MODEL), "{{model_type}} {{phase}}")],
            unit="s",
        ),
        Panel(
            "Time spent per phase",
            [_q(f"sum by (phase) (increase({phase}_sum{{{NODE_MODEL}}}[$__range]))", "{{phase}}")],
            unit="s",
            kind="bargauge",
            description="Over the dashboard's time range: where generation time goes.",
        ),
        Panel(
            "Model loading share of generation time (alert rules)",
            [_q(f"instance:genperf_model_load_share:ratio{{{NODE}}}", "{{instance}}")],
            unit="percentunit",
            thresholds=[(0.25, "orange")],
            description="25 % or more: model loading dominates. Needs `genperf rules`.",
        ),
        Panel(
            "Mean denoising step by model",
            [_q(_mean(steps, "model_type", NODE_MODEL), "{{model_type}}")],
            unit="s",
        ),
        Panel(
            "Mean denoising step by model and class",
            [
                _q(
                    _mean(steps, "model_type, resolution_class", NODE_MODEL),
                    "{{model_type}} {{resolution_class}}",
                )
            ],
            unit="s",
        ),
    ]
    return dashboard(
        "genperf-phases",
        "genperf / Phases and steps",
        "Where each generation's time goes: model load, text encode, denoise, VAE decode.",
        [node_var(), model_var()],
        panels,
    )


def failures() -> dict[str, Any]:
    failed = f'{NODE}, status!="completed"'
    oom = f'{NODE}, error_category=~"out_of_memory_.*"'
    panels = [
        Panel(
            "Success rate",
            [_q(_success_ratio(NODE))],
            unit="percentunit",
            kind="stat",
            width=8,
            height=4,
            thresholds=[(0.0, "red"), (0.9, "orange"), (0.95, "green")],
        ),
        Panel(
            "Out-of-memory share",
            [_q(f"sum({_finished(oom)}) / sum({_finished(NODE)})")],
            unit="percentunit",
            kind="stat",
            width=8,
            height=4,
            thresholds=[(0.01, "orange"), (0.05, "red")],
        ),
        Panel(
            "Tasks interrupted (found at restart)",
            [_q(f"sum({_finished(f'{NODE}, status=' + chr(34) + 'interrupted' + chr(34))})")],
            kind="stat",
            width=8,
            height=4,
            description="Tasks whose process died; genperf marks them when it starts again.",
        ),
        Panel(
            "Failures per minute by category",
            [
                _q(
                    "60 * sum by (error_category) "
                    f"({_rate('genperf_tasks_finished_total', failed)})",
                    "{{error_category}}",
                )
            ],
        ),
        Panel(
            "Failures by category",
            [_q(f"sum by (error_category) ({_finished(failed)})", "{{error_category}}")],
            kind="bargauge",
            description="Over the dashboard's time range. The recovery for each category is in "
            "`genperf analysis` and /api/v1/performance/analysis.",
        ),
        Panel(
            "Success rate by node (alert rules)",
            [_q(f"instance:genperf_task_success:ratio{{{NODE}}}", "{{instance}}")],
            unit="percentunit",
            thresholds=[(0.0, "red"), (0.95, "green")],
        ),
        Panel(
            "Out-of-memory failures by node",
            [_q(f"sum by (instance) ({_finished(oom)})", "{{instance}}")],
            kind="bargauge",
        ),
    ]
    return dashboard(
        "genperf-failures",
        "genperf / Failures and recovery",
        "What fails, how often, and where: error categories, out-of-memory, interrupted tasks.",
        [node_var()],
        panels,
    )


def monitor() -> dict[str, Any]:
    panels = [
        Panel(
            "Latest sample age",
            [_q(f"genperf_sample_age_seconds{{{NODE}}}", "{{instance}}")],
            unit="s",
            description="Over three monitoring intervals: the sampler is stuck.",
        ),
        Panel(
            "Samples per second",
            [
                _q(
                    f"sum by (instance) ({_rate('genperf_monitor_samples_total', NODE)})",
                    "{{instance}} taken",
                ),
                _q(
                    f"sum by (instance) ({_rate('genperf_monitor_samples_written_total', NODE)})",
                    "{{instance}} written",
                ),
            ],
        ),
        Panel(
            "Monitor's own CPU time (share of one core)",
            [
                _q(
                    f"rate(genperf_monitor_sampling_seconds_total{{{NODE}}}[$__rate_interval])",
                    "{{instance}} sampling",
                ),
                _q(
                    f"rate(genperf_monitor_task_api_seconds_total{{{NODE}}}[$__rate_interval])",
                    "{{instance}} task API",
                ),
            ],
            unit="percentunit",
        ),
        Panel(
            "Task records waiting for the database",
            [_q(f"genperf_monitor_tasks_pending{{{NODE}}}", "{{instance}}")],
            thresholds=[(1.0, "orange")],
        ),
        Panel(
            "Records dropped",
            [
                _q(
                    f"sum by (instance) ({_increase('genperf_monitor_tasks_dropped_total', NODE)})",
                    "{{instance}} tasks",
                ),
                _q(
                    "sum by (instance) "
                    f"({_increase('genperf_monitor_samples_dropped_total', NODE)})",
                    "{{instance}} samples",
                ),
            ],
            kind="bargauge",
            thresholds=[(1.0, "red")],
        ),
        Panel(
            "Errors per minute",
            [
                _q(
                    f"60 * rate(genperf_monitor_store_errors_total{{{NODE}}}[$__rate_interval])",
                    "{{instance}} database",
                ),
                _q(
                    f"60 * {_rate('genperf_monitor_collector_errors_total', NODE)}",
                    "{{instance}} collectors",
                ),
            ],
        ),
        Panel(
            "Scrape time of /metrics",
            [_q(f'scrape_duration_seconds{{job="genperf", {NODE}}}', "{{instance}}")],
            unit="s",
        ),
        Panel(
            "genperf version by node",
            [_q(f"genperf_info{{{NODE}}}", "{{instance}} {{version}}")],
            kind="table",
        ),
    ]
    return dashboard(
        "genperf-monitor",
        "genperf / Monitor health",
        "genperf's own health and cost: sampling, database writes, drops, errors, scrapes.",
        [node_var()],
        panels,
    )


BUILDERS = {
    "genperf-fleet.json": fleet,
    "genperf-node.json": node,
    "genperf-models.json": models,
    "genperf-phases.json": phases,
    "genperf-failures.json": failures,
    "genperf-monitor.json": monitor,
}


def dashboards() -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON (as a dict)."""
    return {name: build() for name, build in BUILDERS.items()}


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
