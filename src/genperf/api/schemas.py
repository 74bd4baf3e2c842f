"""Request and response bodies: the API's contract, as it appears in the OpenAPI document.

Response models mirror the records of :mod:`genperf.records` (tests check they keep in step)
and are built from them with ``from_attributes``. Floats are finite or null: pydantic writes a
NaN or an infinity as null, and inputs refuse them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from genperf.records import TEXT_LIMITS, ErrorCategory, TaskStatus


def _json_integer(value: Any) -> Any:
    """JSON has numbers, not integers: 81.0 is the integer 81 (as JSON Schema says); text
    and booleans are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Characters no label may hold: control characters (a terminal escape such as "\x1b[31m"),
# format characters (bidi overrides such as U+202E, zero-width joiners), line and paragraph
# separators and private use. Free text (error messages) may hold newlines and tabs. Written
# as patterns so the OpenAPI document says what is accepted; renderers escape what they show
# anyway, this keeps stored data honest.
_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f"
_FORMATS = (
    r"\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f\u2028-\u202e"
    r"\u2060-\u206f\ufeff\ufff9-\ufffb\ue000-\uf8ff"
)
LABEL_PATTERN = rf"^[^\t\n{_CONTROLS}{_FORMATS}]*$"
TEXT_PATTERN = rf"^[^{_CONTROLS}{_FORMATS}]*$"  # newlines and tabs allowed
_LABEL = re.compile(LABEL_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)


def _printable(value: str, pattern: re.Pattern[str] = _LABEL) -> str:
    if not pattern.fullmatch(value):  # fullmatch: "$" alone would let a final "\n" through
        bad = next(ch for ch in value if not pattern.fullmatch(ch))
        raise ValueError(f"must be printable text: U+{ord(bad):04X} is a control character")
    return value


def _printable_text(value: str) -> str:
    return _printable(value, _TEXT)


# What genperf.records.resolution_class understands: WIDTHxHEIGHT, a class (720p), a name.
RESOLUTION_PATTERN = (  # spaces, not \s: tabs and line breaks are not printable labels
    r"^ *(?:[1-9][0-9]{0,4} *[xX×*,] *[1-9][0-9]{0,4}|[1-9][0-9]{2,3} *[pP]"
    r"|4[kK]|[uUfF]?[hH][dD]|[sS][dD]) *$"
)
_RESOLUTION = re.compile(RESOLUTION_PATTERN)


def _resolution(value: str) -> str:
    if not _RESOLUTION.fullmatch(value):
        raise ValueError("expected WIDTHxHEIGHT (such as 1280x720) or a class such as 720p")
    return value


Printable = AfterValidator(_printable)
LabelSchema = Field(json_schema_extra={"pattern": LABEL_PATTERN})
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10_000_000), BeforeValidator(_json_integer)]
Percent = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
Label = Annotated[str, Field(min_length=1, max_length=100), LabelSchema, Printable]
ShortText = Annotated[str, Field(max_length=200), LabelSchema, Printable]
TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TEXT_LIMITS["task_id"],
        pattern=rf"^[^/\t\n{_CONTROLS}{_FORMATS}]+$",
    ),
]


MAX_PHASES = 100  # per task; a generation has a handful
MAX_STEP_TIMES = 1000  # per task; diffusion runs take tens of steps, 200 at most here
STATUS_ACTIVE_TASKS = 20  # running tasks shown by /status; GET /tasks pages through all


# Short text fields, as long as their database columns allow (records.TEXT_LIMITS).
def _text(field: str) -> Any:
    return Field(
        min_length=1, max_length=TEXT_LIMITS[field], json_schema_extra={"pattern": LABEL_PATTERN}
    )


ModelType = Annotated[str, _text("model_type"), Printable]
ModelUsed = Annotated[str, _text("model_used"), Printable]
ResolutionText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TEXT_LIMITS["resolution"],
        json_schema_extra={"pattern": RESOLUTION_PATTERN},
    ),
    Printable,
    AfterValidator(_resolution),
]
ErrorCategoryText = Annotated[str, _text("error_category"), Printable]
PhaseName = Annotated[str, _text("phase"), Printable]
FailedPhase = Annotated[str, _text("failed_phase"), Printable]
ErrorText = Annotated[
    str,
    Field(max_length=2000, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(_printable_text),
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, ser_json_inf_nan="null")


# --- samples -------------------------------------------------------------------------------


class GpuOut(_Out):
    index: int
    name: str | None = None
    uuid: str | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    memory_percent: float | None = None
    utilization_percent: float | None = None
    memory_utilization_percent: float | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    power_limit_watts: float | None = None
    sm_clock_mhz: int | None = None
    memory_clock_mhz: int | None = None
    throttle_reasons: list[str] | None = None
    process_memory_bytes: int | None = None


class SampleOut(_Out):
    """One system sample: host CPU, RAM, swap, disk and every GPU. Unknown values are null."""

    taken_at: datetime
    node: str
    cpu_percent: float | None = None
    cpu_per_core_percent: list[float] | None = None
    cpu_count: int | None = None
    ram_used_bytes: int | None = None
    ram_total_bytes: int | None = None
    ram_percent: float | None = None
    swap_used_bytes: int | None = None
    swap_percent: float | None = None
    disk_path: str | None = None
    disk_used_bytes: int | None = None
    disk_total_bytes: int | None = None
    disk_free_bytes: int | None = None
    disk_percent: float | None = None
    disk_read_bytes_per_second: float | None = None
    disk_write_bytes_per_second: float | None = None
    cpu_temperature_celsius: float | None = None
    process_rss_bytes: int | None = None
    gpus: list[GpuOut] = []


# --- tasks ---------------------------------------------------------------------------------


class PhaseOut(_Out):
    name: str
    started_offset_seconds: float
    duration_seconds: float
    peak_vram_allocated_mb: float | None = None
    peak_vram_mb: float | None = None
    peak_ram_mb: float | None = None
    failed: bool = False


class TaskOut(_Out):
    """Everything genperf knows about one generation (``_mb`` is MiB, times UTC)."""

    run_id: str
    task_id: str
    node: str
    model_type: str
    resolution: str
    resolution_class: str
    steps: int | None = None
    status: TaskStatus
    success: bool
    started_at: datetime
    completed_at: datetime | None = None
    model_used: str | None = None
    frames: int | None = None
    generation_time_seconds: float | None = None
    model_load_time_seconds: float | None = None
    weights_memory_mapped: bool | None = None
    phases: list[PhaseOut] = []
    step_times_seconds: list[float] = []
    peak_vram_usage_mb: float | None = None
    avg_vram_usage_mb: float | None = None
    vram_total_mb: float | None = None
    peak_vram_reserved_mb: float | None = None
    peak_ram_usage_mb: float | None = None
    avg_ram_usage_mb: float | None = None
    ram_total_mb: float | None = None
    peak_process_rss_mb: float | None = None
    peak_cpu_percent: float | None = None
    avg_cpu_percent: float | None = None
    peak_gpu_utilization_percent: float | None = None
    avg_gpu_utilization_percent: float | None = None
    peak_gpu_temperature_celsius: float | None = None
    avg_gpu_temperature_celsius: float | None = None
    gpu_throttle_reasons: list[str] = []
    samples_count: int = 0
    optimizations_applied: list[str] = []
    error_category: str | None = None
    error_message: str | None = None
    failed_phase: str | None = None
    recovery_suggestions: list[str] = []
    monitor_instance: str | None = None
    current_phase: str | None = None


class ActiveTaskOut(TaskOut):
    pass


class _In(BaseModel):
    """Request bodies: unknown fields refused, no lax coercion ("1" is not a number, 0 is
    not false), so what the OpenAPI document calls invalid is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PhaseIn(_In):
    name: PhaseName
    started_offset_seconds: NonNegative = 0.0
    duration_seconds: NonNegative
    peak_vram_allocated_mb: NonNegative | None = None
    peak_vram_mb: NonNegative | None = None
    peak_ram_mb: NonNegative | None = None
    failed: bool = False


class TaskMetricsIn(_In):
    """Metrics of a running task, by name; any subset. Unknown names are refused (422).
    null sets a metric back to unknown (a list to empty)."""

    steps: Count | None = None
    model_used: ModelUsed | None = None
    frames: Count | None = None
    generation_time_seconds: NonNegative | None = None
    model_load_time_seconds: NonNegative | None = None
    weights_memory_mapped: bool | None = None
    # Bounded: a running task lives in the server's memory until it completes.
    phases: Annotated[list[PhaseIn], Field(max_length=MAX_PHASES)] | None = None
    step_times_seconds: Annotated[list[NonNegative], Field(max_length=MAX_STEP_TIMES)] | None = None
    peak_vram_usage_mb: NonNegative | None = None
    avg_vram_usage_mb: NonNegative | None = None
    vram_total_mb: NonNegative | None = None
    peak_vram_reserved_mb: NonNegative | None = None
    peak_ram_usage_mb: NonNegative | None = None
    avg_ram_usage_mb: NonNegative | None = None
    ram_total_mb: NonNegative | None = None
    peak_process_rss_mb: NonNegative | None = None
    peak_cpu_percent: Percent | None = None
    avg_cpu_percent: Percent | None = None
    peak_gpu_utilization_percent: Percent | None = None
    avg_gpu_utilization_percent: Percent | None = None
    peak_gpu_temperature_celsius: NonNegative | None = None
    avg_gpu_temperature_celsius: NonNegative | None = None
    gpu_throttle_reasons: Annotated[list[Label], Field(max_length=64)] | None = None
    optimizations_applied: Annotated[list[Label], Field(max_length=64)] | None = None
    error_category: ErrorCategoryText | None = None
    error_message: ErrorText | None = None
    failed_phase: FailedPhase | None = None
    recovery_suggestions: Annotated[list[ShortText], Field(max_length=64)] | None = None

    def fields(self) -> dict[str, Any]:
        """The fields the caller sent, ready for ``update_task_metrics(**fields)``."""
        sent = self.model_dump(exclude_unset=True)
        for name in _LIST_FIELDS & sent.keys():
            if sent[name] is None:
                sent[name] = []
        return sent


_LIST_FIELDS = frozenset(
    {
        "phases",
        "step_times_seconds",
        "gpu_throttle_reasons",
        "optimizations_applied",
        "recovery_suggestions",
    }
)


class TaskStartIn(TaskMetricsIn):
    """Start monitoring a generation (the spec's ``start_task_monitoring``)."""

    task_id: TaskId
    model_type: ModelType
    resolution: ResolutionText = "720p"

    def fields(self) -> dict[str, Any]:
        out = super().fields()
        for key in ("task_id", "model_type", "resolution", "steps"):
            out.pop(key, None)
        return out


class TaskCompleteIn(_In):
    """Finish a task (the spec's ``complete_task_monitoring``). An empty body is success."""

    success: bool = True
    error: ErrorText | None = Field(
        default=None, description="The error message of a failed generation; never a prompt."
    )
    error_category: Annotated[ErrorCategory, Field(strict=False)] | None = None
    failed_phase: FailedPhase | None = None


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


class MonitoringOut(_Out):
    running: bool
    node: str
    interval_seconds: float
    sample_age_seconds: float | None


class StatusOut(_Out):
    """Current system performance: CPU, RAM, disk and GPUs, running tasks, the monitor."""

    timestamp: datetime
    monitoring: MonitoringOut
    system: SampleOut
    active_tasks: list[ActiveTaskOut] = Field(
        description=f"The first {STATUS_ACTIVE_TASKS} running tasks, oldest first; "
        "monitor.tasks_running counts them all, GET /tasks pages through them."
    )
    monitor: MonitorStatsOut


class RunningTasksPage(_Out):
    """Running tasks, oldest first, one page at a time."""

    total: int = Field(description="Running tasks now, all pages.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, null on the last.")
    tasks: list[ActiveTaskOut]


# --- metrics and export --------------------------------------------------------------------


class MetricsPage(_Out):
    """Task records of the window, newest first, one page at a time."""

    time_window_hours: float
    model_type: str | None
    success_only: bool
    total: int = Field(description="Tasks matching the filters, all pages.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, null on the last.")
    metrics: list[TaskOut]


class BottleneckOut(_Out):
    resource: str = Field(description="vram, ram, cpu, model_loading, disk, thermal, offload")
    severity: str = Field(description="info, warning or critical")
    summary: str
    evidence: dict[str, Any] = {}
    affected_count: int = 0
    affected_share: float | None = None
    affected_tasks: list[str] = []


class BottleneckAnalysisOut(_Out):
    status: str = Field(description="no_data, ok or bottlenecks_found")
    message: str
    bottlenecks: list[BottleneckOut]
    checks: dict[str, str]
    primary_bottleneck: str | None
    task_count: int


class RecommendationOut(_Out):
    id: str
    category: str = Field(description="hardware, configuration, workflow or targets")
    priority: str = Field(description="high, medium or low")
    action: str
    evidence: str
    expected_effect: str
    affected_count: int
    suggests: list[str] = []


class TrendOut(_Out):
    metric: str
    resolution_class: str | None = None
    direction: str = Field(description="improving, degrading, stable or insufficient_data")
    better: str
    tasks: int
    points: int
    bucketed: bool
    slope_per_hour: float | None = None
    start_value: float | None = None
    end_value: float | None = None
    change: float | None = None
    relative_change: float | None = None
    z: float | None = None


class TrendsOut(_Out):
    generation_time: dict[str, TrendOut]
    success_rate: TrendOut
    peak_vram_percent: TrendOut
    model_load_time: TrendOut


class BenchmarkOut(_Out):
    name: str
    unit: str
    better: str
    statistic: str
    value: float | None
    target: float
    acceptable: float
    limit: float | None
    status: str = Field(description="target_met, acceptable, marginal, below_minimum or no_data")
    tasks: int


class EfficiencyOut(_Out):
    score: float | None
    success: float | None
    on_time: float | None
    gpu_utilization: float | None
    memory_headroom: float | None
    formula: str


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


# --- health --------------------------------------------------------------------------------


class WhoAmIOut(BaseModel):
    role: Literal["read", "write", "admin"]


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    status: Literal["ready"] = "ready"
    database: Literal["ok"] = "ok"
