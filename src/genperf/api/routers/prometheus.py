"""GET /metrics: this process's gauges read at scrape time, and the database's task families
(cached bytes, refreshed off the scrape path)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from genperf.api.auth import RequireRead
from genperf.api.deps import Context
from genperf.exporters.gzip_join import accepts_gzip
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
    """This process's host and per-GPU gauges, its monitor's overhead and ``genperf_info``
    (labelled with its node), and the database's task families: finished tasks by node,
    status and error category, duration histograms, phases, steps and peak VRAM, for every
    process writing to the database. OpenMetrics when the ``Accept`` header asks for it."""
    # Not async: a stale task family waits (bounded) for its refresh thread, in the pool.
    gzip = accepts_gzip(request.headers.get("accept-encoding"))
    accept = request.headers.get("accept")
    body, content_type = negotiate(context.process_families, accept, context.store_tasks, gzip=gzip)
    headers = {"Vary": "Accept-Encoding"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=content_type, headers=headers)
