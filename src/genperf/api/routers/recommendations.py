"""GET /api/v1/performance/recommendations: what to change, grouped by category."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.auth import RequireRead
from genperf.api.deps import NodeFilter, QueriesDep, TimeWindowHours
from genperf.api.schemas import RecommendationsOut

router = APIRouter(tags=["performance"], dependencies=[RequireRead])


@router.get(
    "/recommendations",
    response_model=RecommendationsOut,
    summary="Categorized optimization recommendations",
)
def recommendations(
    queries: QueriesDep,
    time_window_hours: TimeWindowHours = 24.0,
    node: NodeFilter = [],  # noqa: B006 (FastAPI copies defaults)
) -> RecommendationsOut:
    """The analysis' recommendations, most important first, and the same grouped by
    category (hardware, configuration, workflow, targets)."""
    return queries.recommendations(time_window_hours, nodes=node)
