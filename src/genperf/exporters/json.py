"""The spec's JSON export, streamed as text chunks.

Shape (the spec's "JSON Export Format")::

    {"export_timestamp": "...", "time_window_hours": 24, "metrics_count": 150,
     "performance_analysis": {...}, "metrics": [{...}, ...]}

``metrics`` is written one record at a time from any iterable, so memory stays bounded
whatever the number of tasks. NaN and infinity are written as null.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from genperf.records import TaskRecord, to_jsonable

CHUNK_RECORDS = 200  # records per chunk handed to the server: fewer, larger writes


def _dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"), allow_nan=False)


def render(
    *,
    export_timestamp: datetime,
    time_window_hours: float,
    metrics_count: int,
    performance_analysis: Mapping[str, Any],
    metrics: Iterable[TaskRecord],
    chunk_records: int = CHUNK_RECORDS,
) -> Iterator[str]:
    """Yield the export document in pieces; joined, they are one JSON object."""
    yield (
        f'{{"export_timestamp":{_dumps(export_timestamp)},'
        f'"time_window_hours":{_dumps(time_window_hours)},'
        f'"metrics_count":{_dumps(metrics_count)},'
        f'"performance_analysis":{_dumps(performance_analysis)},'
        '"metrics":['
    )
    chunk: list[str] = []
    first = True
    for record in metrics:
        chunk.append(_dumps(record.to_dict()))
        if len(chunk) >= chunk_records:
            yield ("" if first else ",") + ",".join(chunk)
            first = False
            chunk = []
    if chunk:
        yield ("" if first else ",") + ",".join(chunk)
    yield "]}"
