"""POST /api/v1/performance/export: the window's tasks as JSON (the spec's shape) or CSV.

The response streams: records are read from the store in batches and written as they come,
so a million tasks export in bounded memory. The count and the records use one window,
closed at the moment of the request, so ``metrics_count`` matches ``metrics`` even while
tasks are being ingested.
"""

from __future__ import annotations

import enum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from genperf.api.auth import RequireAdmin
from genperf.api.deps import NodeFilter, QueriesDep, TimeWindowHours
from genperf.api.schemas import ExportDocument

router = APIRouter(tags=["export"], dependencies=[RequireAdmin])


class ExportFormat(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    INFLUX = "influx"  # line protocol: the window's tasks, then its samples
    NDJSON = "ndjson"  # an Elasticsearch _bulk body: an action and a document per task


@router.post(
    "/export",
    response_model=ExportDocument,
    summary="Export performance data (JSON, CSV, InfluxDB line protocol, Elasticsearch NDJSON)",
    responses={
        200: {
            "description": "The export, streamed: JSON in the spec's shape, or CSV",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
def export(
    queries: QueriesDep,
    time_window_hours: TimeWindowHours = 24.0,
    export_format: Annotated[
        ExportFormat,
        Query(
            alias="format",
            description="json (the spec's shape), csv, influx (line protocol) or ndjson "
            "(an Elasticsearch _bulk body)",
        ),
    ] = ExportFormat.JSON,
    node: NodeFilter = [],  # noqa: B006 (FastAPI copies defaults)
) -> StreamingResponse:
    document = queries.export(export_format.value, time_window_hours, nodes=node)
    headers = {"Content-Disposition": f'attachment; filename="{document.filename}"'}
    return StreamingResponse(document.chunks, media_type=document.media_type, headers=headers)
