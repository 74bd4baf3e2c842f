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
async def prometheus_metrics(context: Context) -> Response:
    """Host and per-GPU gauges, task duration histograms by model type and resolution class,
    finished tasks by status and error category, and the monitor's own overhead."""
    # async: the collector reads memory only (a fraction of a millisecond of CPU).
    return Response(render(context.registry), media_type=CONTENT_TYPE)
