"""Records <-> table rows: the one place that knows how a field is stored.

Scalars map one to one; tuple fields become JSON text; status is its string value;
datetimes are left to :class:`genperf.storage.schema.UtcDateTime`.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Callable, Mapping
from typing import Any

from genperf.errors import StoreError
from genperf.records import (
    SAMPLE_FIELDS,
    TASK_FIELDS,
    GpuReading,
    PhaseRecord,
    SystemSample,
    TaskRecord,
    TaskStatus,
)
from genperf.storage.schema import TASK_JSON_COLUMNS

_GPU_FIELDS = frozenset(f.name for f in dataclasses.fields(GpuReading))
_PHASE_FIELDS = frozenset(f.name for f in dataclasses.fields(PhaseRecord))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _known(data: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    # Drop keys a newer genperf may have written, so an older reader still reads the row.
    return {k: v for k, v in data.items() if k in fields}


def task_to_row(record: TaskRecord) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(record, name) for name in TASK_FIELDS}
    row["status"] = record.status.value
    row["phases"] = _dumps([dataclasses.asdict(p) for p in record.phases])
    for name in TASK_JSON_COLUMNS - {"phases"}:
        row[name] = _dumps(list(row[name]))
    return row


def row_to_task(row: Mapping[Any, Any]) -> TaskRecord:
    try:
        values = {name: row[name] for name in TASK_FIELDS}
        values["status"] = TaskStatus(values["status"])
        values["phases"] = tuple(
            PhaseRecord(**_known(p, _PHASE_FIELDS)) for p in json.loads(values["phases"] or "[]")
        )
        values["step_times_seconds"] = tuple(
            float(t) for t in json.loads(values["step_times_seconds"] or "[]")
        )
        for name in TASK_JSON_COLUMNS - {"phases", "step_times_seconds"}:
            values[name] = tuple(json.loads(values[name] or "[]"))
        values["samples_count"] = values["samples_count"] or 0
        return TaskRecord(**values)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"run {row.get('run_id')!r}: cannot decode the stored task: {exc}"
        ) from exc


def _cores_json(sample: SystemSample) -> str | None:
    cores = sample.cpu_per_core_percent
    return None if cores is None else _dumps(list(cores))


def _gpus_json(sample: SystemSample) -> str:
    return _dumps([dataclasses.asdict(g) for g in sample.gpus])


# How each stored column of a sample is read off the record: the field itself, or its JSON.
# The sample insert (storage/sample_insert.py) goes through these column by column, with no
# row dict in between.
SAMPLE_ENCODERS: dict[str, Callable[[SystemSample], Any]] = {
    name: operator.attrgetter(name) for name in ("taken_at", "node", *SAMPLE_FIELDS)
}
SAMPLE_ENCODERS["cpu_per_core_percent"] = _cores_json
SAMPLE_ENCODERS["gpus"] = _gpus_json


def sample_to_row(sample: SystemSample) -> dict[str, Any]:
    return {name: encode(sample) for name, encode in SAMPLE_ENCODERS.items()}


def row_to_sample(row: Mapping[Any, Any]) -> SystemSample:
    try:
        values = {name: row[name] for name in ("taken_at", "node", *SAMPLE_FIELDS)}
        cores = values["cpu_per_core_percent"]
        values["cpu_per_core_percent"] = (
            None if cores is None else tuple(float(c) for c in json.loads(cores))
        )
        values["gpus"] = tuple(_gpu(g) for g in json.loads(values["gpus"] or "[]"))
        return SystemSample(**values)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"cannot decode the stored sample: {exc}") from exc


def _gpu(data: Mapping[str, Any]) -> GpuReading:
    values = _known(data, _GPU_FIELDS)
    reasons = values.get("throttle_reasons")
    if reasons is not None:
        values["throttle_reasons"] = tuple(reasons)
    return GpuReading(**values)
