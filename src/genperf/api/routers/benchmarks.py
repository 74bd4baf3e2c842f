"""GET /api/v1/performance/benchmarks: the configured targets and where the service stands."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.auth import RequireRead
from genperf.api.deps import Context, StoreDep, TimeWindowHours
from genperf.api.report_view import report_dict
from genperf.api.schemas import BenchmarksOut

router = APIRouter(tags=["performance"], dependencies=[RequireRead])


@router.get(
    "/benchmarks",
    response_model=BenchmarksOut,
    summary="Performance benchmarks and current performance against targets",
)
def benchmarks(
    context: Context, store: StoreDep, time_window_hours: TimeWindowHours = 24.0
) -> BenchmarksOut:
    """Each benchmark (generation time per resolution class, VRAM, RAM, CPU, success rate,
    resource efficiency) with its target lines, the current value and its status."""
    report = report_dict(context, store, time_window_hours)
    settings = context.settings
    times = settings.performance_thresholds.generation_time_targets()
    return BenchmarksOut.model_validate(
        {
            "time_window_hours": report.get("time_window_hours", time_window_hours),
            "targets": {
                "generation_time_seconds": times,
                **settings.benchmark_targets.model_dump(mode="json"),
            },
            "benchmarks": report.get("benchmarks") or [],
        }
    )
