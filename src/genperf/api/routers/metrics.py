"""GET /api/v1/performance/metrics: task records of a window, filtered, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from genperf.api.auth import RequireRead
from genperf.api.deps import FiltersDep, QueriesDep, TimeWindowHours
from genperf.api.errors import ErrorResponse
from genperf.api.schemas import MetricsPage

router = APIRouter(tags=["performance"], dependencies=[RequireRead])

MAX_PAGE = 1000
MAX_OFFSET = 10_000_000


@router.get(
    "/metrics",
    response_model=MetricsPage,
    summary="Detailed performance metrics",
    responses={404: {"model": ErrorResponse, "description": "No stored task run is the cursor"}},
)
def metrics(
    *,
    queries: QueriesDep,
    time_window_hours: TimeWindowHours = 24.0,
    filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Tasks per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Tasks to skip.")] = 0,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="A page's next_cursor: the tasks after it (offset is then ignored).",
        ),
    ] = None,
) -> MetricsPage:
    """Every metric of each task started in the window (running ones included), newest
    first. ``total`` counts all pages; follow ``next_cursor`` (an index seek however deep)
    or ``next_offset`` for the next one."""
    return queries.metrics_page(
        time_window_hours, limit=limit, offset=offset, cursor=cursor, filters=filters
    )
