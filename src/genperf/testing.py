"""Fakes shipped with genperf, for tests of genperf and of the services that embed it.

They stand only where this machine lacks the real thing (a GPU) or where a test needs
control of time; everything else in tests is real (psutil, SQLite, PostgreSQL, diffusers).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from genperf.records import TaskRecord, TaskStatus, resolution_class


class ManualClock:
    """A monotonic clock that only moves when told to. ``clock()`` returns seconds."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class FakeCollector:
    """A collector that returns fixed (or scripted) readings, or raises when told to."""

    def __init__(
        self,
        values: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        *,
        name: str = "fake",
        error: BaseException | None = None,
    ) -> None:
        self.name = name
        self._values = values if values is not None else {}
        self.error = error
        self.calls = 0

    def collect(self) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return dict(self._values() if callable(self._values) else self._values)


_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_task(**overrides: Any) -> TaskRecord:
    """A completed 720p task record with plausible values; override any field."""
    started = overrides.pop("started_at", _EPOCH)
    gen_time = overrides.get("generation_time_seconds", 240.0)
    resolution = overrides.get("resolution", "1280x720")
    status = overrides.pop("status", TaskStatus.COMPLETED)
    defaults: dict[str, Any] = {
        "run_id": uuid.uuid4().hex,
        "task_id": uuid.uuid4().hex[:12],
        "node": "test-node",
        "model_type": "t2v-A14B",
        "resolution": resolution,
        "resolution_class": resolution_class(resolution),
        "steps": 20,
        "status": status,
        "started_at": started,
        "completed_at": started + timedelta(seconds=gen_time or 0),
        "model_used": "t2v-A14B",
        "generation_time_seconds": gen_time,
        "model_load_time_seconds": 20.0,
        "peak_vram_usage_mb": 40_000.0,
        "avg_vram_usage_mb": 30_000.0,
        "vram_total_mb": 81_920.0,
        "peak_ram_usage_mb": 20_000.0,
        "avg_ram_usage_mb": 15_000.0,
        "ram_total_mb": 65_536.0,
        "peak_cpu_percent": 50.0,
        "avg_cpu_percent": 30.0,
        "peak_gpu_utilization_percent": 98.0,
        "avg_gpu_utilization_percent": 90.0,
        "peak_gpu_temperature_celsius": 70.0,
        "avg_gpu_temperature_celsius": 65.0,
        "optimizations_applied": ("dtype:bf16",),
    }
    defaults.update(overrides)
    return TaskRecord(**defaults)


def make_tasks(count: int, *, every: timedelta = timedelta(minutes=10), **overrides: Any) -> list[TaskRecord]:
    """``count`` tasks started ``every`` apart from the default epoch, oldest first."""
    start = overrides.pop("started_at", _EPOCH)
    return [make_task(started_at=start + i * every, **overrides) for i in range(count)]


def collect_all(items: Iterable[Any]) -> list[Any]:
    """list(items): reads well in tests that drain an iterator."""
    return list(items)
