"""GET /api/v1/performance/benchmarks: the configured targets and where the service stands."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.auth import RequireRead
from genperf.api.deps import NodeFilter, QueriesDep, TimeWindowHours
from genperf.api.schemas import BenchmarksOut

router = APIRouter(tags=["performance"], dependencies=[RequireRead])


@router.get(
    "/benchmarks",
    response_model=BenchmarksOut,
    summary="Performance benchmarks and current performance against targets",
)
def benchmarks(
    queries: QueriesDep,
    time_window_hours: TimeWindowHours = 24.0,
    node: NodeFilter = [],  # noqa: B006 (FastAPI copies defaults)
) -> BenchmarksOut:
    """Each benchmark (generation time per resolution class, VRAM, RAM, CPU, success rate,
    resource efficiency) with its target lines, the current value and its status."""
    return queries.benchmarks(time_window_hours, nodes=node)
