"""POST /api/v1/performance/export: the window's tasks as JSON (the spec's shape) or CSV.

The response streams: records are read from the store in batches and written as they come,
so a million tasks export in bounded memory. The count and the records use one window,
closed at the moment of the request, so ``metrics_count`` matches ``metrics`` even while
tasks are being ingested.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from genperf.api.auth import RequireAdmin
from genperf.api.deps import Context, StoreDep, TimeWindowHours
from genperf.api.report_view import report_dict
from genperf.api.schemas import ExportDocument
from genperf.exporters import csv as csv_exporter
from genperf.exporters import elastic as elastic_exporter
from genperf.exporters import influx as influx_exporter
from genperf.exporters import json as json_exporter
from genperf.records import utc_now
from genperf.storage.base import TaskQuery

router = APIRouter(tags=["export"], dependencies=[RequireAdmin])

CSV_TYPE = "text/csv; charset=utf-8"
JSON_TYPE = "application/json"
INFLUX_TYPE = "text/plain; charset=utf-8"
BATCH = 1000


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
    context: Context,
    store: StoreDep,
    time_window_hours: TimeWindowHours = 24.0,
    export_format: Annotated[
        ExportFormat,
        Query(
            alias="format",
            description="json (the spec's shape), csv, influx (line protocol) or ndjson "
            "(an Elasticsearch _bulk body)",
        ),
    ] = ExportFormat.JSON,
) -> StreamingResponse:
    now = utc_now()
    query = TaskQuery(since=now - timedelta(hours=time_window_hours), until=now, newest_first=False)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    filename = f"genperf-export-{stamp}.{export_format.value}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if export_format is ExportFormat.CSV:
        body = csv_exporter.render(store.iter_tasks(query, batch_size=BATCH))
        return StreamingResponse(body, media_type=CSV_TYPE, headers=headers)
    if export_format is ExportFormat.INFLUX:
        lines = influx_exporter.render(
            store.iter_tasks(query, batch_size=BATCH),
            influx_exporter.stored_samples(store, now - timedelta(hours=time_window_hours), now),
        )
        return StreamingResponse(lines, media_type=INFLUX_TYPE, headers=headers)
    if export_format is ExportFormat.NDJSON:
        bulk = elastic_exporter.render_ndjson(
            store.iter_tasks(query, batch_size=BATCH), context.settings.elasticsearch_index
        )
        return StreamingResponse(bulk, media_type=elastic_exporter.NDJSON_TYPE, headers=headers)
    analysis = report_dict(context, store, time_window_hours, now=now)
    count = store.count_tasks(query)
    document = json_exporter.render(
        export_timestamp=now,
        time_window_hours=time_window_hours,
        metrics_count=count,
        performance_analysis=analysis,
        metrics=store.iter_tasks(query, batch_size=BATCH),
    )
    return StreamingResponse(document, media_type=JSON_TYPE, headers=headers)
