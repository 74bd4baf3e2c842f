"""InfluxDB line protocol: one point per task, one per sample, one per GPU per sample.

Points (measurement, tags, fields)::

    genperf_task,node=..,model_type=..,resolution_class=..,status=..,error_category=..
        run_id="..",task_id="..",generation_time_seconds=..,steps=20i,success=true,
        phase_denoise_seconds=..,phase_denoise_peak_vram_mb=.., ...   <started_at in ns>
    genperf_sample,node=.. cpu_percent=..,ram_used_bytes=..i, ...       <taken_at in ns>
    genperf_gpu,node=..,gpu=0,gpu_name=.. memory_used_bytes=..i, ...    <taken_at in ns>

Tags are the bounded dimensions a dashboard groups by; everything with unbounded values
(task and run ids, messages) is a field, so the series count does not grow with the task
count. A task's fields are every field of :class:`~genperf.records.TaskRecord` that is not a
tag or its time, typed by the record's own annotations (so a field's InfluxDB type never
changes between points), plus ``success`` and each phase's duration and peaks. Lists are JSON
text, as in the CSV export. Unknown values (None, NaN) are left out: InfluxDB has no null.

A task's time is its ``started_at``, with the nanoseconds below its microsecond taken from a
hash of ``run_id``: two tasks of the same series that start in the same microsecond stay two
points, and writing the same run again (a retry after an outage) replaces its point rather
than adding one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from genperf.records import GPU_METRICS, HOST_METRICS, SystemSample, TaskRecord, TaskStatus
from genperf.storage.base import SampleQuery

TASK_MEASUREMENT = "genperf_task"
SAMPLE_MEASUREMENT = "genperf_sample"
GPU_MEASUREMENT = "genperf_gpu"
TASK_TAGS = ("node", "model_type", "resolution_class", "status", "error_category")
# Not fields: the tags, the point's time, and phases (spread into phase_* fields below).
_NOT_FIELDS = frozenset({*TASK_TAGS, "started_at", "phases"})
CHUNK_LINES = 500
_SLICE = timedelta(hours=1)
UNKNOWN = "unknown"  # an empty tag value (line protocol has none)
NO_ERROR = "none"  # error_category of a task that did not fail (a tag value cannot be empty)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TAG_ESCAPE = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_MEASUREMENT_ESCAPE = str.maketrans({",": r"\,", " ": r"\ "})


def _kind(annotation: Any) -> str:
    """The line-protocol type of a TaskRecord annotation: int, float, bool or string."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = args[0] if isinstance(annotation, types.UnionType) and len(args) == 1 else annotation
    if base is bool:
        return "bool"
    if base is int:
        return "int"
    if base is float:
        return "float"
    return "string"


_HINTS = typing.get_type_hints(TaskRecord)
# TaskRecord field -> its line-protocol type, in declaration order.
TASK_FIELD_KINDS: dict[str, str] = {
    f.name: _kind(_HINTS[f.name])
    for f in dataclasses.fields(TaskRecord)
    if f.name not in _NOT_FIELDS
}
# Per phase: field suffix -> PhaseRecord attribute.
PHASE_FIELDS = {
    "seconds": "duration_seconds",
    "peak_vram_mb": "peak_vram_mb",
    "peak_vram_allocated_mb": "peak_vram_allocated_mb",
    "peak_ram_mb": "peak_ram_mb",
}


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text)


def escape_tag(text: str) -> str:
    """A tag key or value (or field key): control characters become spaces and ``, = space``
    are escaped. A trailing backslash would escape the separator after it and line protocol
    has no escape for it, so it is dropped."""
    return _clean(text).rstrip("\\").translate(_TAG_ESCAPE)


def _string_field(text: str) -> str:
    # Inside a quoted field value only " and \ are escaped; InfluxDB 1.x keeps a newline
    # in a string field as it is.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_value(value: Any, kind: str) -> str | None:
    """One field value in line protocol, or None when it is unknown (None, NaN, infinity)."""
    if value is None:
        return None
    if kind == "bool":
        return "true" if value else "false"
    if kind == "int":
        return f"{int(value)}i"
    if kind == "float":
        number = float(value)
        return repr(number) if math.isfinite(number) else None
    if isinstance(value, tuple | list):
        value = json.dumps(list(value), separators=(",", ":"), allow_nan=False)
    elif isinstance(value, datetime):
        value = value.isoformat()
    return _string_field(str(getattr(value, "value", value)))


def _ns(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def task_timestamp_ns(record: TaskRecord) -> int:
    """``started_at`` in nanoseconds, its last three digits from ``run_id`` (see above)."""
    return _ns(record.started_at) + zlib.crc32(record.run_id.encode()) % 1000


def _line(measurement: str, tags: dict[str, str], fields: list[str], ns: int) -> str:
    tag_text = "".join(f",{escape_tag(k)}={escape_tag(v) or UNKNOWN}" for k, v in tags.items())
    return f"{measurement.translate(_MEASUREMENT_ESCAPE)}{tag_text} {','.join(fields)} {ns}"


def task_tags(record: TaskRecord) -> dict[str, str]:
    category = record.error_category if record.status is not TaskStatus.COMPLETED else None
    return {
        "node": record.node,
        "model_type": record.model_type,
        "resolution_class": record.resolution_class,
        "status": record.status.value,
        "error_category": category or NO_ERROR,
    }


def task_line(record: TaskRecord) -> str:
    """The point of one task."""
    fields: list[str] = []
    for name, kind in TASK_FIELD_KINDS.items():
        text = format_value(getattr(record, name), kind)
        if text is not None:
            fields.append(f"{escape_tag(name)}={text}")
    fields.append(f"success={format_value(record.success, 'bool')}")
    for phase_name in dict.fromkeys(p.name for p in record.phases):
        phase = record.phase(phase_name)  # the last of that name, as in the CSV export
        assert phase is not None
        for suffix, attribute in PHASE_FIELDS.items():
            text = format_value(getattr(phase, attribute), "float")
            if text is not None:
                fields.append(f"{escape_tag(f'phase_{phase_name}_{suffix}')}={text}")
    return _line(TASK_MEASUREMENT, task_tags(record), fields, task_timestamp_ns(record))


_HOST_KINDS = {spec.name: ("float" if spec.unit != "bytes" else "int") for spec in HOST_METRICS}
_GPU_KINDS = {
    spec.name: ("int" if spec.unit in ("bytes", "megahertz") else "float") for spec in GPU_METRICS
}


def sample_lines(sample: SystemSample) -> list[str]:
    """The points of one sample: the host's, then one per GPU. A part with no known value
    has no point (a point needs at least one field)."""
    ns = _ns(sample.taken_at)
    lines: list[str] = []
    host = [
        f"{name}={text}"
        for name, kind in (*_HOST_KINDS.items(), ("cpu_count", "int"))
        if (text := format_value(getattr(sample, name), kind)) is not None
    ]
    if host:
        lines.append(_line(SAMPLE_MEASUREMENT, {"node": sample.node}, host, ns))
    for gpu in sample.gpus:
        fields = [
            f"{name}={text}"
            for name, kind in _GPU_KINDS.items()
            if (text := format_value(getattr(gpu, name), kind)) is not None
        ]
        if gpu.throttle_reasons is not None:
            fields.append(f"throttle_reasons={format_value(gpu.throttle_reasons, 'string')}")
        if fields:
            tags = {"node": sample.node, "gpu": str(gpu.index), "gpu_name": gpu.name or "unknown"}
            lines.append(_line(GPU_MEASUREMENT, tags, fields, ns))
    return lines


class SampleSource(Protocol):
    def query_samples(self, query: SampleQuery = SampleQuery()) -> list[SystemSample]: ...


def stored_samples(
    store: SampleSource, since: datetime, until: datetime, *, slice_: timedelta = _SLICE
) -> Iterator[SystemSample]:
    """The samples of [since, until], oldest first, read an hour at a time so that a long
    window's samples never sit in memory together."""
    start = since
    while start <= until:
        end = min(start + slice_, until)
        for sample in store.query_samples(SampleQuery(since=start, until=end)):
            if sample.taken_at < end or end == until:  # [start, end): each sample once
                yield sample
        if end == until:
            return
        start = end


def render(
    tasks: Iterable[TaskRecord],
    samples: Iterable[SystemSample] = (),
    *,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[str]:
    """Yield line protocol (tasks, then samples), ``chunk_lines`` lines at a time, each line
    ending in a newline. Memory is bounded by the chunk whatever the iterables hold."""
    chunk: list[str] = []

    def lines() -> Iterator[str]:
        for record in tasks:
            yield task_line(record)
        for sample in samples:
            yield from sample_lines(sample)

    for line in lines():
        chunk.append(line)
        if len(chunk) >= chunk_lines:
            yield "\n".join(chunk) + "\n"
            chunk = []
    if chunk:
        yield "\n".join(chunk) + "\n"


__all__ = [
    "GPU_MEASUREMENT",
    "SAMPLE_MEASUREMENT",
    "TASK_FIELD_KINDS",
    "TASK_MEASUREMENT",
    "TASK_TAGS",
    "render",
    "sample_lines",
    "stored_samples",
    "task_line",
    "task_timestamp_ns",
]
