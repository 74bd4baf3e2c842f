"""The response models of every read: what the API serves, the CLI prints and the remote
source parses (``genperf.queries.reads`` builds them, ``api/routers`` declare them).

The models of the records (:class:`GpuOut`, :class:`SampleOut`, :class:`PhaseOut`,
:class:`TaskOut`) are derived from the dataclasses of :mod:`genperf.records` field by field,
with their types, and those of the analysis' results (bottlenecks and their analysis,
recommendations, trends, benchmarks, efficiency) from its dataclasses: a new field is one
edit in ``records.py`` or the analysis' dataclass (plus a migration for a record) and appears
here, in the OpenAPI document, in the CLI's ``--json`` and in the exports. Tuples become
lists, mappings dicts, nested records their models; the records' computed properties that
the API serves (``GpuReading.memory_percent``, ``TaskRecord.success``) are added by name.
Floats are finite or null: pydantic writes a NaN or an infinity as null.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from genperf.analysis import Benchmark, Bottleneck, Recommendation, Trend
from genperf.analysis.bottlenecks import BottleneckAnalysis
from genperf.analysis.efficiency import Efficiency
from genperf.analysis.impact import WindowFigures
from genperf.analysis.trends import Trends
from genperf.records import GpuReading, PhaseRecord, SystemSample, TaskRecord
from genperf.storage.changes import ConfigurationChange


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, ser_json_inf_nan="null")


def _api_type(hint: Any, nested: Mapping[type, type[BaseModel]]) -> Any:
    """A record field's type as the API writes it: tuples as lists, records as models."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in nested:
        return nested[hint]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return list[_api_type(args[0], nested)]  # type: ignore[misc]
    if origin is collections.abc.Mapping:
        return dict[args[0], _api_type(args[1], nested)]  # type: ignore[misc,valid-type]
    if origin in (Union, types.UnionType):
        mapped = tuple(_api_type(a, nested) for a in args)
        return Union[mapped]  # noqa: UP007  (built from a tuple of types)
    return hint


def record_model(
    record: type[Any],
    name: str,
    doc: str,
    *,
    computed: Mapping[str, Any] | None = None,
    nested: Mapping[type, type[BaseModel]] | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> type[_Out]:
    """A response model with one field per field of the dataclass ``record``, of its type
    (see the module docstring), then the ``computed`` properties, read from the record by
    ``from_attributes``; ``descriptions`` document fields in the OpenAPI document."""
    hints = typing.get_type_hints(record)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.default is not dataclasses.MISSING:
            default = [] if f.default == () else f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ...
        described = (descriptions or {}).get(f.name)
        if described is not None:
            default = Field(default, description=described)
        fields[f.name] = (_api_type(hints[f.name], nested or {}), default)
    for prop, hint in (computed or {}).items():
        fields[prop] = (hint, ...)
    model: type[_Out] = create_model(
        name, __base__=_Out, __doc__=doc, __module__=__name__, **fields
    )
    return model


if TYPE_CHECKING:  # mypy sees the base class; the fields are the records'
    GpuOut = _Out
    SampleOut = _Out
    PhaseOut = _Out
    TaskOut = _Out
    BottleneckOut = _Out
    RecommendationOut = _Out
    TrendOut = _Out
    BenchmarkOut = _Out
    BottleneckAnalysisOut = _Out
    TrendsOut = _Out
    EfficiencyOut = _Out
else:
    GpuOut = record_model(
        GpuReading,
        "GpuOut",
        "One GPU at one instant. Unknown values are null.",
        computed={"memory_percent": float | None},
    )
    SampleOut = record_model(
        SystemSample,
        "SampleOut",
        "One system sample: host CPU, RAM, swap, disk and every GPU. Unknown values are null.",
        nested={GpuReading: GpuOut},
    )
    PhaseOut = record_model(PhaseRecord, "PhaseOut", "One named phase of a generation.")
    TaskOut = record_model(
        TaskRecord,
        "TaskOut",
        "Everything genperf knows about one generation (``_mb`` is MiB, times UTC).",
        computed={"success": bool},
        nested={PhaseRecord: PhaseOut},
    )
    # The analysis' results, from its dataclasses.
    BottleneckOut = record_model(
        Bottleneck,
        "BottleneckOut",
        "One bottleneck found in the window, with its evidence.",
        descriptions={"resource": "vram, ram, cpu, model_loading, disk, thermal, offload"},
    )
    RecommendationOut = record_model(
        Recommendation, "RecommendationOut", "One thing to change, why, and what it should bring."
    )
    TrendOut = record_model(Trend, "TrendOut", "A robust trend of one metric over the window.")
    BenchmarkOut = record_model(
        Benchmark, "BenchmarkOut", "One benchmark: its target lines, current value and status."
    )
    BottleneckAnalysisOut = record_model(
        BottleneckAnalysis,
        "BottleneckAnalysisOut",
        "All bottleneck checks of the window, most severe bottleneck first.",
        nested={Bottleneck: BottleneckOut},
    )
    TrendsOut = record_model(
        Trends,
        "TrendsOut",
        "The trends of the window; generation_time is keyed by resolution class.",
        nested={Trend: TrendOut},
    )
    EfficiencyOut = record_model(
        Efficiency,
        "EfficiencyOut",
        "The resource efficiency score and its parts (null: unknown).",
        descriptions={
            "known_weight": "Share of the formula's weights known, 0..1",
            "missing": "Terms left out of the score, and why",
        },
    )


class ActiveTaskOut(TaskOut):
    """A task being monitored now, with the phase it is in."""


# --- status --------------------------------------------------------------------------------


class MonitorStatsOut(_Out):
    """The monitor's own health and cost (``PerformanceMonitor.self_stats``)."""

    samples_taken: int
    collector_errors: int
    sampling_seconds: float
    task_api_seconds: float
    tasks_running: int
    tasks_written: int
    tasks_pending: int
    tasks_dropped: int
    samples_written: int
    samples_dropped: int
    store_errors: int
    # The live sinks (InfluxDB, Elasticsearch, JSON log), summed.
    sink_items_sent: int
    sink_items_dropped: int
    sink_items_queued: int
    sink_errors: int


class MonitoringOut(_Out):
    running: bool
    node: str
    interval_seconds: float
    sample_age_seconds: float | None
    gpu_monitoring: str = Field(
        default="on", description="on, off (by the settings) or unavailable"
    )
    gpu_monitoring_reason: str | None = Field(
        default=None, description="Why it is off or unavailable"
    )


class StatusOut(_Out):
    """Current system performance: CPU, RAM, disk and GPUs, running tasks, the monitor."""

    timestamp: datetime
    monitoring: MonitoringOut
    system: SampleOut
    active_tasks: list[ActiveTaskOut] = Field(
        description="The first running tasks (20), oldest first; monitor.tasks_running counts "
        "them all, GET /tasks pages through them."
    )
    monitor: MonitorStatsOut


# --- metrics and export --------------------------------------------------------------------


class MetricsPage(_Out):
    """Task records of the window, newest first, one page at a time."""

    time_window_hours: float
    model_type: str | None
    success_only: bool
    nodes: list[str] = Field(default_factory=list, description="The node filter (empty: all).")
    total: int = Field(description="Tasks matching the filters, all pages.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, null on the last.")
    next_cursor: str | None = Field(
        default=None,
        description="Give it as ``cursor`` for the next page (an index seek however deep the "
        "page, where an offset walks every task before it); null on the last page.",
    )
    metrics: list[TaskOut]


class WindowOut(_Out):
    start: datetime | None
    end: datetime | None


class PerformanceAnalysisOut(_Out):
    """The spec's ``performance_analysis`` block first, then genperf's extras."""

    average_generation_time: float | None = Field(description="Seconds, completed tasks")
    success_rate: float | None = Field(description="Completed / finished tasks, 0..1")
    resource_efficiency: float | None = Field(description="0..1; see efficiency.formula")
    bottleneck_analysis: BottleneckAnalysisOut
    optimization_recommendations: list[RecommendationOut]
    performance_trends: TrendsOut
    time_window_hours: float
    task_count: int
    generated_at: datetime
    window: WindowOut
    filters: dict[str, Any]
    summary: dict[str, Any]
    efficiency: EfficiencyOut
    benchmarks: list[BenchmarkOut]
    failures: dict[str, Any]
    method: dict[str, Any]


class AnalysisOut(PerformanceAnalysisOut):
    """The performance analysis of a window (``genperf.analysis.build_report``)."""


class RecommendationsOut(_Out):
    time_window_hours: float
    total: int
    recommendations: list[RecommendationOut] = Field(description="Most important first")
    by_category: dict[str, list[RecommendationOut]]


class BenchmarksOut(_Out):
    time_window_hours: float
    targets: dict[str, Any] = Field(description="The configured targets and bands")
    benchmarks: list[BenchmarkOut]


class ExportDocument(BaseModel):
    """The JSON export (the spec's shape). CSV exports have one row per task instead."""

    export_timestamp: datetime
    time_window_hours: float
    metrics_count: int
    performance_analysis: PerformanceAnalysisOut
    metrics: list[TaskOut]


class StoredStatusOut(_Out):
    """The status as the database shows it, read without a server (``genperf status`` on
    the local database): no monitor runs in the reader, so ``monitor`` is null and
    ``monitoring`` describes the service by its newest stored sample."""

    timestamp: datetime
    monitoring: MonitoringOut
    system: SampleOut
    active_tasks: list[ActiveTaskOut]
    monitor: MonitorStatsOut | None = None
    database_available: bool
    database_error: str | None = None
    settings: dict[str, Any] = {}


# --- the fleet ----------------------------------------------------------------------------


class NodeGpuOut(_Out):
    """One GPU of a node, from its newest sample."""

    index: int
    name: str | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    utilization_percent: float | None
    temperature_celsius: float | None


class NodeOut(_Out):
    """One node of the fleet: is it sampling, what runs there, how its tasks did."""

    node: str
    state: str = Field(
        description="up; down (no sample for more than 3 of its intervals, plus the "
        "writer's flush period); no_samples (tasks only, e.g. posted from elsewhere)."
    )
    last_sample_at: datetime | None
    last_sample_age_seconds: float | None
    interval_seconds: float | None = Field(
        description="Its sampling interval, inferred from its newest samples."
    )
    genperf_version: str | None = Field(description="The genperf that wrote its newest sample.")
    gpus: list[NodeGpuOut]
    running_tasks: int
    tasks: int = Field(description="Tasks finished in the window.")
    completed: int
    success_rate: float | None
    p50_generation_time_seconds: dict[str, float] = Field(
        description="Median generation time per resolution class (successful tasks)."
    )
    p50_tasks: dict[str, int] = Field(description="Successful tasks behind each median.")


class NodesOut(_Out):
    time_window_hours: float
    timestamp: datetime
    targets: dict[str, float] = Field(
        description="Generation-time target per resolution class (seconds)."
    )
    nodes: list[NodeOut]


# --- prediction, optimisation impact, forecast, configuration changes ----------------------


class EstimateOut(BaseModel):
    value: float
    low: float
    high: float


class SuggestedRunOut(BaseModel):
    resolution: str
    frames: int
    steps: int
    optimizations: list[str]


class PredictionOut(BaseModel):
    """A prediction with 90 % intervals, or why there is none (``answerable: false``)."""

    model_config = ConfigDict(protected_namespaces=())

    model_type: str
    node: str | None
    resolution: str
    frames: int
    steps: int
    optimizations: list[str]
    answerable: bool
    generation_time_seconds: EstimateOut | None = Field(
        None, description="Without the model load (see phases.model_load)."
    )
    phases: dict[str, EstimateOut]
    peak_ram_mb: EstimateOut | None = Field(None, description="The process's peak RSS.")
    peak_ram_growth_mb: EstimateOut | None = Field(
        None, description="What the generation adds to the process's RSS (model loaded)."
    )
    peak_vram_mb: EstimateOut | None = None
    interval_level: float
    tasks: int = Field(description="Completed runs the answer is learnt from.")
    configurations: int
    reasons: list[str]
    suggested_runs: list[SuggestedRunOut]


class ImpactOut(BaseModel):
    """One optimisation token on one model type x resolution class: without (a) against
    with (b)."""

    model_config = ConfigDict(protected_namespaces=())

    token: str
    model_type: str
    resolution_class: str
    summary: str
    count_without: int
    count_with: int
    time_without_seconds: float | None
    time_with_seconds: float | None
    time_change_percent: float | None
    time_confidence: str
    peak_metric: str | None
    peak_without_mb: float | None
    peak_with_mb: float | None
    peak_change_percent: float | None
    peak_confidence: str


class ImpactListOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    time_window_hours: float
    model_type: str | None
    tasks: int
    optimizations: list[ImpactOut]


class CrossingOut(BaseModel):
    line_seconds: float
    already: bool
    at: datetime | None
    text: str


class ClassForecastOut(BaseModel):
    resolution_class: str
    tasks: int
    p95_now_seconds: float | None
    trend_seconds_per_day: float | None
    target: CrossingOut | None
    acceptable: CrossingOut | None
    note: str | None


class CapacityOut(BaseModel):
    tasks_per_hour: float | None
    nodes: int
    queue: int
    queue_hours: float | None


class ForecastOut(BaseModel):
    time_window_hours: float
    classes: list[ClassForecastOut]
    capacity: CapacityOut


if TYPE_CHECKING:
    WindowFiguresOut = _Out
    ConfigChangeRecordOut = _Out
else:
    WindowFiguresOut = record_model(
        WindowFigures,
        "WindowFiguresOut",
        "One model type x resolution class in the window before or after a change.",
        descriptions={
            "tasks": "Finished tasks started in the window.",
            "median_peak_rss_mb": "The process's peak RSS.",
        },
    )
    ConfigChangeRecordOut = record_model(
        ConfigurationChange,
        "ConfigChangeRecordOut",
        "A recorded configuration change and what its writer measured.",
        computed={"model_type": str | None},
        descriptions={"before_time_seconds": "As measured by its writer (genperf tune)."},
    )


class ChangeGroupOut(BaseModel):
    """A change's effect on one model type x resolution class: before against after."""

    model_config = ConfigDict(protected_namespaces=())

    model_type: str
    resolution_class: str
    before: WindowFiguresOut
    after: WindowFiguresOut
    time_change_percent: float | None = Field(description="Median time, completed tasks.")
    time_confidence: str
    peak_metric: str | None
    peak_change_percent: float | None
    peak_confidence: str


class ConfigChangeOut(ConfigChangeRecordOut):
    """A recorded configuration change, what its writer measured, and what history shows
    (``model_type``: the model type it concerns; null: every one)."""

    groups: list[ChangeGroupOut] = Field(
        description="Per model type x resolution class, the window before against after "
        "(a group shows when both windows finished a task there)."
    )


class ConfigChangesOut(_Out):
    time_window_hours: float = Field(description="Changes made in this window are listed.")
    compare_hours: float = Field(description="Each side of a change spans this long.")
    changes: list[ConfigChangeOut] = Field(description="Newest first.")
