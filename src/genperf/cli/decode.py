"""JSON payloads back into records: the inverse of ``to_jsonable`` / ``TaskRecord.to_dict``.

Sources hand the CLI the API's JSON, whether it came over HTTP or was built from the local
store; the renderers draw records. Keys this genperf does not know (a newer server's) are
dropped; a payload that cannot be a record raises :class:`PayloadError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from genperf.errors import GenperfError
from genperf.records import GpuReading, PhaseRecord, SystemSample, TaskRecord, TaskStatus

T = TypeVar("T")


class PayloadError(GenperfError):
    """Data from a source that is not what genperf expects (a server of another version)."""


_TASK_FIELDS = {f.name: f for f in dataclasses.fields(TaskRecord)}
_SAMPLE_FIELDS = {f.name: f for f in dataclasses.fields(SystemSample)}
_GPU_FIELDS = {f.name for f in dataclasses.fields(GpuReading)}
_PHASE_FIELDS = {f.name for f in dataclasses.fields(PhaseRecord)}


def _tuple_fields(fields: Mapping[str, dataclasses.Field[Any]]) -> set[str]:
    return {name for name, f in fields.items() if f.default == ()}


_TASK_TUPLES = _tuple_fields(_TASK_FIELDS) - {"phases"}


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def task_from_json(data: Mapping[str, Any]) -> TaskRecord:
    return _decoded("a task record", _task, data)


def sample_from_json(data: Mapping[str, Any]) -> SystemSample:
    return _decoded("a system sample", _sample, data)


def _decoded(what: str, decode: Callable[[Mapping[str, Any]], T], data: Mapping[str, Any]) -> T:
    """``decode(data)``, or one PayloadError naming ``what`` could not be read and why."""
    try:
        return decode(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PayloadError(f"{what} could not be read ({type(exc).__name__}: {exc})") from None


def _task(data: Mapping[str, Any]) -> TaskRecord:
    values = {k: v for k, v in data.items() if k in _TASK_FIELDS}
    values["status"] = TaskStatus(values["status"])
    values["started_at"] = _time(values["started_at"])
    values["completed_at"] = _time(values.get("completed_at"))
    values["phases"] = tuple(
        PhaseRecord(**{k: v for k, v in p.items() if k in _PHASE_FIELDS})
        for p in values.get("phases") or ()
    )
    for name in _TASK_TUPLES & values.keys():
        values[name] = tuple(values[name] or ())
    return TaskRecord(**values)


def _sample(data: Mapping[str, Any]) -> SystemSample:
    values = {k: v for k, v in data.items() if k in _SAMPLE_FIELDS}
    values["taken_at"] = _time(values["taken_at"])
    cores = values.get("cpu_per_core_percent")
    if cores is not None:
        values["cpu_per_core_percent"] = tuple(cores)
    values["gpus"] = tuple(_gpu(g) for g in values.get("gpus") or ())
    return SystemSample(**values)


def _gpu(data: Mapping[str, Any]) -> GpuReading:
    values = {k: v for k, v in data.items() if k in _GPU_FIELDS}
    if values.get("throttle_reasons") is not None:
        values["throttle_reasons"] = tuple(values["throttle_reasons"])
    return GpuReading(**values)
