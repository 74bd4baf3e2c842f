"""The local side of ``genperf export``: the exporters' documents, written from the store.

The formats themselves are :mod:`genperf.exporters.json`, :mod:`genperf.exporters.csv` and
:mod:`genperf.exporters.influx` (tasks, then the window's samples) and
:mod:`genperf.exporters.elastic` (an Elasticsearch ``_bulk`` body), the same generators the
API's export streams; this module only feeds them the window's tasks
(streamed from the store in batches, so memory stays bounded) and counts them for the bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING

from genperf.config import Settings
from genperf.records import TaskRecord
from genperf.storage.base import Store, TaskQuery

if TYPE_CHECKING:
    from genperf.cli.source import ExportProgress, ExportResult

EXPORT_BATCH = 1000


def export_query(hours: float, now: datetime) -> TaskQuery:
    """The tasks an export of the last ``hours`` holds, oldest first. The window ends at
    ``now`` so that tasks started while the export runs do not change its count."""
    return TaskQuery(since=now - timedelta(hours=hours), until=now, newest_first=False)


def counted(records: Iterable[TaskRecord], progress: ExportProgress) -> Iterator[TaskRecord]:
    for record in records:
        yield record
        progress.advance(1)


def export_local(
    store: Store,
    settings: Settings,
    fmt: str,
    *,
    hours: float,
    out: IO[bytes],
    progress: ExportProgress,
    now: datetime,
) -> ExportResult:
    """Write the export of the last ``hours`` to ``out``; ``progress`` hears of each task."""
    from genperf.cli.source import ExportResult

    query = export_query(hours, now)
    total = store.count_tasks(query)
    records = store.iter_tasks(query, batch_size=EXPORT_BATCH)
    chunks: Iterable[str]
    if fmt == "csv":
        from genperf.exporters import csv as csv_export

        progress.start(total, "tasks")
        chunks = csv_export.render(counted(records, progress))
    elif fmt == "influx":
        from genperf.exporters import influx

        progress.start(total, "tasks")
        samples = influx.stored_samples(store, query.since or now, now)
        chunks = influx.render(counted(records, progress), samples)
    elif fmt == "ndjson":
        from genperf.exporters import elastic

        progress.start(total, "tasks")
        chunks = elastic.render_ndjson(counted(records, progress), settings.elasticsearch_index)
    else:
        from genperf.analysis import build_report
        from genperf.exporters import json as json_export

        report = build_report(store, settings, time_window_hours=hours, now=now)
        progress.start(total, "tasks")
        chunks = json_export.render(
            export_timestamp=now,
            time_window_hours=hours,
            metrics_count=total,
            performance_analysis=report.to_dict(),
            metrics=counted(records, progress),
        )
    written = 0
    for chunk in chunks:
        data = chunk.encode("utf-8")
        out.write(data)
        written += len(data)
    return ExportResult(total, written)
