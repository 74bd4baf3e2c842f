"""One CSV row per task, every metric a column, streamed as text chunks.

Columns are the fields of :class:`genperf.records.TaskRecord` in declaration order, then
``success`` and the duration of each standard phase (``phase_<name>_seconds``), so a
spreadsheet sees where the time went without parsing ``phases``. List fields (phases,
optimizations_applied ...) are JSON text. Unknown values are empty cells.

Text that a spreadsheet would run as a formula (starting with ``= + - @`` or a tab) is
prefixed with ``'``: error messages come from outside and must not become formulas.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

from genperf.records import STANDARD_PHASES, TASK_FIELDS, TaskRecord, to_jsonable

CHUNK_ROWS = 500
PHASE_COLUMNS = tuple(f"phase_{name}_seconds" for name in STANDARD_PHASES)
COLUMNS: tuple[str, ...] = (*TASK_FIELDS, "success", *PHASE_COLUMNS)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, int):
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def row(record: TaskRecord) -> list[str | int | float]:
    data = record.to_dict()
    cells = [_cell(to_jsonable(data[name])) for name in (*TASK_FIELDS, "success")]
    for name in STANDARD_PHASES:
        phase = record.phase(name)
        cells.append(_cell(phase.duration_seconds if phase is not None else None))
    return cells


def render(metrics: Iterable[TaskRecord], *, chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
    """Yield the CSV text (header first) in pieces of ``chunk_rows`` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    rows = 0
    for record in metrics:
        writer.writerow(row(record))
        rows += 1
        if rows >= chunk_rows:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            rows = 0
    yield buffer.getvalue()
