"""The local side of ``genperf export``: the exporters' documents, written from the store.

The formats themselves are :mod:`genperf.exporters.json` and :mod:`genperf.exporters.csv`, the
same generators the API's export streams; this module only feeds them the window's tasks
(streamed from the store in batches, so memory stays bounded) and counts them for the bar.
:class:`ExportProgress` and :class:`ExportResult` are defined here, below ``source.py``,
which imports this module (never the other way round).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Protocol

from genperf.config import Settings
from genperf.records import TaskRecord
from genperf.storage.base import Store, TaskQuery

EXPORT_BATCH = 1000


class ExportProgress(Protocol):
    """Told how an export advances: ``start`` once, then ``advance`` as units are written."""

    def start(self, total: int | None, unit: str) -> None: ...

    def advance(self, amount: int) -> None: ...


@dataclass(frozen=True)
class ExportResult:
    tasks: int | None  # None when the server does not say
    bytes_written: int


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
    query = export_query(hours, now)
    total = store.count_tasks(query)
    records = store.iter_tasks(query, batch_size=EXPORT_BATCH)
    chunks: Iterable[str]
    if fmt == "csv":
        from genperf.exporters import csv as csv_export

        progress.start(total, "tasks")
        chunks = csv_export.render(counted(records, progress))
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
