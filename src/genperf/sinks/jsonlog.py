"""Structured JSON log lines, one per finished task, for any log shipper (Filebeat, Fluent Bit,
Vector, Promtail, the CloudWatch agent ...).

``task_log`` is ``stdout``, ``stderr`` or a file path. A line is one JSON object::

    {"time": "<completed_at>", "level": "info"|"error", "logger": "genperf.task",
     "message": "task job-42 completed in 241.3 s (t2v-A14B, 720p)", <every TaskRecord field>,
     "success": true}

Lines are written by the sink's own thread in batches (``sink_flush_seconds``), never on
the generation's thread. A file is opened for each batch (append, created with mode 0600), so
a log rotated by renaming is followed without a signal; a write that fails (disk full) is
retried like any other sink's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from genperf.records import SystemSample, TaskRecord, TaskStatus, to_jsonable
from genperf.sinks.base import BatchingSink, QueueLimits, SinkRetryError

STREAMS = ("stdout", "stderr")


def log_entry(record: TaskRecord) -> dict[str, Any]:
    """The JSON object of one finished task."""
    if record.status is TaskStatus.COMPLETED:
        seconds = record.generation_time_seconds
        what = f"completed in {seconds:.1f} s" if seconds is not None else "completed"
    else:
        what = f"{record.status.value} ({record.error_category or 'unknown'})"
    entry: dict[str, Any] = {
        "time": to_jsonable(record.completed_at or record.started_at),
        "level": "info" if record.success else "error",
        "logger": "genperf.task",
        "message": f"task {record.task_id} {what} ({record.model_type}, {record.resolution_class})",
    }
    entry.update(record.to_dict())
    return entry


def log_line(record: TaskRecord) -> str:
    return json.dumps(log_entry(record), separators=(",", ":"), allow_nan=False)


class JsonLogSink(BatchingSink[bytes]):
    """One JSON line per finished task to stdout, stderr or a file."""

    def __init__(self, target: str, limits: QueueLimits) -> None:
        super().__init__("task-log", limits, takes_samples=False)
        self.target = target

    def encode(self, tasks: Sequence[TaskRecord], samples: Sequence[SystemSample]) -> bytes:
        return "".join(log_line(record) + "\n" for record in tasks).encode("utf-8")

    def send(self, payload: bytes) -> None:
        if not payload:
            return
        try:
            if self.target in STREAMS:
                stream = sys.stdout if self.target == "stdout" else sys.stderr
                stream.buffer.write(payload)
                stream.buffer.flush()
                return
            fd = os.open(self.target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError as exc:
            raise SinkRetryError(f"cannot write {self.target}: {exc.strerror or exc}") from exc
