"""GET /api/v1/performance/analysis: the spec's performance analysis of a window."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.auth import RequireRead
from genperf.api.deps import (
    ModelTypeFilter,
    NodeFilter,
    QueriesDep,
    SuccessOnly,
    TimeWindowHours,
)
from genperf.api.schemas import AnalysisOut
from genperf.queries import Filters

router = APIRouter(tags=["performance"], dependencies=[RequireRead])


@router.get("/analysis", response_model=AnalysisOut, summary="Performance analysis")
def analysis(
    queries: QueriesDep,
    time_window_hours: TimeWindowHours = 24.0,
    model_type: ModelTypeFilter = None,
    success_only: SuccessOnly = False,
    node: NodeFilter = [],  # noqa: B006 (FastAPI copies defaults)
) -> AnalysisOut:
    """Average generation time, success rate, resource efficiency, bottlenecks, optimisation
    recommendations and trends of the tasks finished in the window, with genperf's extras
    (benchmarks, summary). Reports are cached for a few seconds per window and filters."""
    return queries.analysis(time_window_hours, Filters(model_type, success_only, node))
