"""Request bodies and the API's own small answers; the response models of reads are
:mod:`genperf.queries.models` (derived from the records), imported here for the routers.

Inputs refuse NaN and infinities, unknown fields and lax coercion.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from genperf.queries.models import (
    ActiveTaskOut,
    AnalysisOut,
    BenchmarksOut,
    ExportDocument,
    GpuOut,
    MetricsPage,
    MonitoringOut,
    MonitorStatsOut,
    PhaseOut,
    RecommendationsOut,
    SampleOut,
    StatusOut,
    TaskOut,
)
from genperf.records import TEXT_LIMITS, ErrorCategory


def _json_integer(value: Any) -> Any:
    """JSON has numbers, not integers: 81.0 is the integer 81 (as JSON Schema says); text
    and booleans are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10_000_000), BeforeValidator(_json_integer)]
Percent = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
Label = Annotated[str, Field(min_length=1, max_length=100)]
ShortText = Annotated[str, Field(max_length=200)]
TaskId = Annotated[
    str,
    Field(min_length=1, max_length=TEXT_LIMITS["task_id"], pattern=r"^[^/\x00-\x1f]+$"),
]


# Short text fields, as long as their database columns allow (records.TEXT_LIMITS).
ModelType = Annotated[str, Field(min_length=1, max_length=TEXT_LIMITS["model_type"])]
ModelUsed = Annotated[str, Field(min_length=1, max_length=TEXT_LIMITS["model_used"])]
ResolutionText = Annotated[str, Field(min_length=1, max_length=TEXT_LIMITS["resolution"])]
ErrorCategoryText = Annotated[str, Field(min_length=1, max_length=TEXT_LIMITS["error_category"])]
PhaseName = Annotated[str, Field(min_length=1, max_length=TEXT_LIMITS["phase"])]
FailedPhase = Annotated[str, Field(min_length=1, max_length=TEXT_LIMITS["failed_phase"])]


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
    phases: Annotated[list[PhaseIn], Field(max_length=1000)] | None = None
    step_times_seconds: Annotated[list[NonNegative], Field(max_length=100_000)] | None = None
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
    error_message: Annotated[str, Field(max_length=2000)] | None = None
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
    error: Annotated[str, Field(max_length=2000)] | None = Field(
        default=None, description="The error message of a failed generation; never a prompt."
    )
    error_category: Annotated[ErrorCategory, Field(strict=False)] | None = None
    failed_phase: FailedPhase | None = None


# --- health --------------------------------------------------------------------------------


class WhoAmIOut(BaseModel):
    role: Literal["read", "write", "admin"]


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    status: Literal["ready"] = "ready"
    database: Literal["ok"] = "ok"


__all__ = [
    "ActiveTaskOut",
    "AnalysisOut",
    "BenchmarksOut",
    "ExportDocument",
    "GpuOut",
    "HealthOut",
    "MetricsPage",
    "MonitorStatsOut",
    "MonitoringOut",
    "PhaseIn",
    "PhaseOut",
    "ReadyOut",
    "RecommendationsOut",
    "SampleOut",
    "StatusOut",
    "TaskCompleteIn",
    "TaskMetricsIn",
    "TaskOut",
    "TaskStartIn",
    "WhoAmIOut",
]
