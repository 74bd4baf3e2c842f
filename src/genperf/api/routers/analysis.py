"""GET /api/v1/performance/analysis: the spec's performance analysis of a window."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.auth import RequireRead
from genperf.api.deps import FiltersDep, QueriesDep, TimeWindowHours
from genperf.api.schemas import AnalysisOut

router = APIRouter(tags=["performance"], dependencies=[RequireRead])


@router.get("/analysis", response_model=AnalysisOut, summary="Performance analysis")
def analysis(
    queries: QueriesDep,
    filters: FiltersDep,
    time_window_hours: TimeWindowHours = 24.0,
) -> AnalysisOut:
    """Average generation time, success rate, resource efficiency, bottlenecks, optimisation
    recommendations and trends of the tasks finished in the window, with genperf's extras
    (benchmarks, summary). Reports are cached for a few seconds per window and filters."""
    return queries.analysis(time_window_hours, filters)
