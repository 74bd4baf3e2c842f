"""GET /metrics: the Prometheus text exposition, read from the monitor at scrape time."""

from __future__ import annotations

from fastapi import APIRouter, Response

from genperf.api.auth import RequireRead
from genperf.api.deps import Context
from genperf.exporters.prometheus import CONTENT_TYPE, render

router = APIRouter(tags=["prometheus"], dependencies=[RequireRead])


@router.get(
    "/metrics",
    response_class=Response,
    response_model=str,
    summary="Prometheus metrics",
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
def prometheus_metrics(context: Context) -> Response:
    """Host and per-GPU gauges, the database's tasks by status and error category, this
    process's task duration histograms and finished tasks, and the monitor's own overhead."""
    # Not async: the database's task counts are a query (cached a few seconds), in the pool.
    return Response(render(context.registry), media_type=CONTENT_TYPE)
