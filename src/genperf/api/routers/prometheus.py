"""GET /metrics: the Prometheus text exposition, read from the monitor at scrape time."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from genperf.api.auth import RequireRead
from genperf.api.deps import Context
from genperf.exporters.prometheus import CONTENT_TYPE, negotiate

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

router = APIRouter(tags=["prometheus"], dependencies=[RequireRead])


@router.get(
    "/metrics",
    response_class=Response,
    response_model=str,
    summary="Prometheus metrics",
    responses={
        200: {
            "content": {
                CONTENT_TYPE: {"schema": {"type": "string"}},
                OPENMETRICS: {"schema": {"type": "string"}},
            }
        }
    },
)
def prometheus_metrics(context: Context, request: Request) -> Response:
    """Host and per-GPU gauges, the database's tasks by status and error category, this
    process's task duration histograms and finished tasks, the monitor's own overhead and
    ``genperf_info``. OpenMetrics when the ``Accept`` header asks for it."""
    # Not async: the database's task counts are a query (cached a few seconds), in the pool.
    body, content_type = negotiate(context.registry, request.headers.get("accept"))
    return Response(body, media_type=content_type)
