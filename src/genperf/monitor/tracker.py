"""The Tracker: the running state of every open task, fed by each system sample.

Each open task keeps O(1) running statistics per metric (see :class:`RunningStats`), so a
sample costs the same whether a task has run for one second or one hour. The tracker is
thread-safe: many generation threads start, update and complete tasks while the sampler
thread feeds samples.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from genperf.errors import TaskStateError, UnknownTaskError
from genperf.monitor.build import record_builder
from genperf.monitor.stats import RunningStats
from genperf.numbers import highest
from genperf.records import (
    MIB,
    GpuReading,
    PhaseRecord,
    SystemSample,
    TaskRecord,
    TaskStatus,
)

# Metrics every open task follows, and how to read each from a sample and its busiest GPU
# (found once per sample, not once per metric).
_SAMPLE_METRICS: dict[str, Callable[[SystemSample, GpuReading | None], float | None]] = {
    "cpu": lambda s, g: s.cpu_percent,
    "ram_mb": lambda s, g: None if s.ram_used_bytes is None else s.ram_used_bytes / MIB,
    "rss_mb": lambda s, g: None if s.process_rss_bytes is None else s.process_rss_bytes / MIB,
    "vram_mb": lambda s, g: _gpu(g, "memory_used_bytes", MIB),
    "gpu_util": lambda s, g: _gpu(g, "utilization_percent"),
    "gpu_temp": lambda s, g: _gpu(g, "temperature_celsius"),
}

# Where a task runs, which says what this process's samples can tell about it:
#   this_process: everything (host, GPUs, this process's memory, exact allocator peaks);
#   this_host:    another process on this machine (a worker subprocess, a client of the REST
#                 API on loopback): host and GPU readings, not this process's memory;
#   elsewhere:    another machine: nothing; the caller reports its own metrics.
RunsIn = Literal["this_process", "this_host", "elsewhere"]
_HOST_METRICS = tuple(name for name in _SAMPLE_METRICS if name != "rss_mb")

# A caller-given peak never lowers the measured one; other fields given by the caller win.
_PEAK_FIELDS = {
    "peak_vram_usage_mb",
    "peak_vram_reserved_mb",
    "peak_ram_usage_mb",
    "peak_process_rss_mb",
    "peak_cpu_percent",
    "peak_gpu_utilization_percent",
    "peak_gpu_temperature_celsius",
}

_RECENTLY_COMPLETED = 4096  # ids remembered to tell "completed twice" from "never started"

build_task_record = record_builder(TaskRecord)


def _gpu(gpu: GpuReading | None, attr: str, scale: float = 1.0) -> float | None:
    value = None if gpu is None else getattr(gpu, attr)
    return None if value is None else value / scale


@dataclass(slots=True)
class OpenPhase:
    """A phase in progress, with its own sample-based peaks."""

    name: str
    start_t: float
    started_offset_seconds: float
    vram_mb: RunningStats = field(default_factory=RunningStats)
    rss_mb: RunningStats = field(default_factory=RunningStats)
    # Exact peaks from the torch allocator and VmHWM, folded in whenever they are read.
    allocated_mb: float | None = None
    reserved_mb: float | None = None
    ram_mb: float | None = None


@dataclass(slots=True)
class OpenTask:
    """Mutable state of one task while it runs. Only the Tracker touches it, under its lock."""

    base: dict[str, Any]  # every field of the record at its start (see started_fields), by name
    start_t: float
    stats: dict[str, RunningStats] = field(
        default_factory=lambda: {name: RunningStats() for name in _SAMPLE_METRICS}
    )
    fields: dict[str, Any] = field(default_factory=dict)  # set by update_task_metrics
    phases: list[PhaseRecord] = field(default_factory=list)
    open_phases: list[OpenPhase] = field(default_factory=list)
    throttle_reasons: set[str] = field(default_factory=set)
    vram_total_mb: float | None = None
    ram_total_mb: float | None = None
    samples: int = 0
    # True while this is the only open task: only then may process-wide peak counters
    # (torch allocator, VmHWM) be reset and read for it.
    exclusive: bool = False
    failed_phase: str | None = None
    runs_in: RunsIn = "this_process"

    @property
    def task_id(self) -> str:
        return str(self.base["task_id"])

    def observe(self, sample: SystemSample, t: float) -> None:
        if self.runs_in == "elsewhere":
            return
        gpu = sample.busiest_gpu
        names = _SAMPLE_METRICS if self.runs_in == "this_process" else _HOST_METRICS
        for name in names:
            self.stats[name].add(_SAMPLE_METRICS[name](sample, gpu), t)
        for phase in self.open_phases:
            phase.vram_mb.add(self.stats["vram_mb"].last, t)
            phase.rss_mb.add(self.stats["rss_mb"].last, t)
        if gpu is not None:
            if gpu.memory_total_bytes:
                self.vram_total_mb = gpu.memory_total_bytes / MIB
            if gpu.throttle_reasons:
                self.throttle_reasons.update(gpu.throttle_reasons)
        if sample.ram_total_bytes:
            self.ram_total_mb = sample.ram_total_bytes / MIB
        self.samples += 1

    @property
    def current_phase(self) -> str | None:
        return self.open_phases[-1].name if self.open_phases else None

    def snapshot(self, now_t: float, **final: Any) -> TaskRecord:
        """The task as a record at ``now_t``: measured values, then the caller's fields."""
        return build_task_record(self.snapshot_fields(now_t, **final))

    def snapshot_fields(self, now_t: float, **final: Any) -> dict[str, Any]:
        """What :meth:`snapshot` is made of, every field of the record by name: a completion
        builds its record and the returned ``CompletedTask`` from one dict (building a record
        costs a few µs: it is built once per snapshot, never copied with ``replace``; see
        :mod:`genperf.monitor.build`)."""
        stats = self.stats
        measured: dict[str, Any] = {
            **self.base,
            "generation_time_seconds": max(0.0, now_t - self.start_t),
            "phases": tuple(self.phases),
            "peak_vram_usage_mb": stats["vram_mb"].peak,
            "avg_vram_usage_mb": stats["vram_mb"].mean(now_t),
            "vram_total_mb": self.vram_total_mb,
            "peak_ram_usage_mb": stats["ram_mb"].peak,
            "avg_ram_usage_mb": stats["ram_mb"].mean(now_t),
            "ram_total_mb": self.ram_total_mb,
            "peak_process_rss_mb": stats["rss_mb"].peak,
            "peak_cpu_percent": stats["cpu"].peak,
            "avg_cpu_percent": stats["cpu"].mean(now_t),
            "peak_gpu_utilization_percent": stats["gpu_util"].peak,
            "avg_gpu_utilization_percent": stats["gpu_util"].mean(now_t),
            "peak_gpu_temperature_celsius": stats["gpu_temp"].peak,
            "avg_gpu_temperature_celsius": stats["gpu_temp"].mean(now_t),
            "gpu_throttle_reasons": tuple(sorted(self.throttle_reasons)),
            "samples_count": self.samples,
            "current_phase": self.current_phase,
        }
        for name, value in self.fields.items():
            if name in _PEAK_FIELDS and measured.get(name) is not None and value is not None:
                measured[name] = max(measured[name], value)
            else:
                measured[name] = value
        measured.update(final)
        return measured


class Tracker:
    """All open tasks, keyed by task id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, OpenTask] = {}
        self._completed: OrderedDict[str, None] = OrderedDict()
        self._last_sample: tuple[SystemSample, float] | None = None

    def open(
        self,
        base: dict[str, Any],
        start_t: float,
        runs_in: RunsIn = "this_process",
        fields: dict[str, Any] | None = None,
    ) -> OpenTask:
        """Open a task from its start fields (:func:`started_fields`) and the caller's."""
        task = OpenTask(base=base, start_t=start_t, runs_in=runs_in, fields=dict(fields or {}))
        task_id = task.task_id
        with self._lock:
            if task_id in self._open:
                raise TaskStateError(f"task {task_id!r} is already being monitored")
            self._completed.pop(task_id, None)
            if runs_in == "this_process":  # only tasks of this process share its counters
                local = [t for t in self._open.values() if t.runs_in == "this_process"]
                task.exclusive = not local
                for other in local:
                    other.exclusive = False
            if self._last_sample is not None:
                # Seed with the latest reading so a task shorter than one interval has values.
                task.observe(self._last_sample[0], start_t)
                task.samples = 0
            self._open[task_id] = task
        return task

    def update(self, task_id: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self._get(task_id).fields.update(fields)

    def observe(self, sample: SystemSample, t: float) -> None:
        with self._lock:
            self._last_sample = (sample, t)
            for task in self._open.values():
                task.observe(sample, t)

    def begin_phase(self, task_id: str, name: str, t: float) -> None:
        with self._lock:
            task = self._get(task_id)
            phase = OpenPhase(name, t, max(0.0, t - task.start_t))
            last = task.stats["vram_mb"].last, task.stats["rss_mb"].last
            phase.vram_mb.add(last[0], t)
            phase.rss_mb.add(last[1], t)
            task.open_phases.append(phase)

    def exclusive_task(self) -> str | None:
        """The id of the task running alone in this process, if there is one."""
        with self._lock:
            return next((i for i, t in self._open.items() if t.exclusive), None)

    def is_exclusive(self, task_id: str) -> bool:
        with self._lock:
            task = self._open.get(task_id)
            return task is not None and task.exclusive

    def fold_exact_peaks(
        self,
        task_id: str,
        *,
        allocated_mb: float | None,
        reserved_mb: float | None,
        ram_mb: float | None,
    ) -> None:
        """Add exact peaks read since the last reset to the task and all its open phases."""
        with self._lock:
            task = self._open.get(task_id)
            if task is None:
                return
            for phase in task.open_phases:
                phase.allocated_mb = highest(phase.allocated_mb, allocated_mb)
                phase.reserved_mb = highest(phase.reserved_mb, reserved_mb)
                phase.ram_mb = highest(phase.ram_mb, ram_mb)
            fields = task.fields
            for key, value in (
                ("peak_vram_usage_mb", reserved_mb),
                ("peak_vram_reserved_mb", reserved_mb),
                ("peak_process_rss_mb", ram_mb),
            ):
                if value is not None:
                    fields[key] = highest(fields.get(key), value)

    def end_phase(self, task_id: str, t: float, *, failed: bool = False) -> PhaseRecord | None:
        """Close the innermost open phase; exact peaks join the sampled ones."""
        with self._lock:
            task = self._open.get(task_id)
            if task is None or not task.open_phases:
                return None
            return self._end_innermost(task, t, failed)

    def finish(self, task_id: str, t: float, *, failed: bool) -> OpenTask:
        """End the phases the task left open (failed with it) and close it, in one step."""
        with self._lock:
            task = self._get(task_id)
            while task.open_phases:
                self._end_innermost(task, t, failed)
            self._close(task_id)
            return task

    def _end_innermost(self, task: OpenTask, t: float, failed: bool) -> PhaseRecord:
        """Under ``_lock``: close the innermost open phase."""
        phase = task.open_phases.pop()
        record = PhaseRecord(
            name=phase.name,
            started_offset_seconds=phase.started_offset_seconds,
            duration_seconds=max(0.0, t - phase.start_t),
            peak_vram_allocated_mb=phase.allocated_mb,
            peak_vram_mb=highest(phase.reserved_mb, phase.vram_mb.peak),
            peak_ram_mb=highest(phase.ram_mb, phase.rss_mb.peak),
            failed=failed,
        )
        task.phases.append(record)
        if failed and task.failed_phase is None:
            task.failed_phase = phase.name  # the innermost phase that failed
        return record

    def _close(self, task_id: str) -> None:
        """Under ``_lock``: forget an open task, remembering that it completed."""
        del self._open[task_id]
        self._completed[task_id] = None
        while len(self._completed) > _RECENTLY_COMPLETED:
            self._completed.popitem(last=False)

    def snapshot(self, task_id: str, now_t: float) -> TaskRecord:
        with self._lock:
            return self._get(task_id).snapshot(now_t)

    def snapshots(
        self, now_t: float, limit: int | None = None
    ) -> list[tuple[TaskRecord, str | None]]:
        """Open tasks as records, oldest first (at most ``limit``), with their phase now."""
        with self._lock:
            tasks = itertools.islice(self._open.values(), limit)
            return [(t.snapshot(now_t), t.current_phase) for t in tasks]

    def open_ids(self) -> list[str]:
        with self._lock:
            return list(self._open)

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def _get(self, task_id: str) -> OpenTask:
        task = self._open.get(task_id)
        if task is None:
            if task_id in self._completed:
                raise TaskStateError(f"task {task_id!r} is already complete")
            raise UnknownTaskError(task_id)
        return task


# Every field of a record at its default: what a starting task's own fields complete.
_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(TaskRecord)
    if f.default is not dataclasses.MISSING
}


def started_fields(
    *,
    run_id: str,
    task_id: str,
    node: str,
    model_type: str,
    resolution: str,
    resolution_class: str,
    steps: int | None,
    started_at: datetime,
    monitor_instance: str,
) -> dict[str, Any]:
    """A starting task's record as its fields by name, every one of them: each snapshot builds
    a record from these and what was measured since."""
    return {
        **_DEFAULTS,
        "run_id": run_id,
        "task_id": task_id,
        "node": node,
        "model_type": model_type,
        "resolution": resolution,
        "resolution_class": resolution_class,
        "steps": steps,
        "status": TaskStatus.RUNNING,
        "started_at": started_at,
        "model_used": model_type,
        "monitor_instance": monitor_instance,
    }
