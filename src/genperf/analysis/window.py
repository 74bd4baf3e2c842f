"""The window under analysis: exact totals (a :class:`Tally`), failure counts, and the tasks.

Every analysis reads a :class:`Window`. Built from records (:meth:`Window.of`), everything in
it is exact. Built by ``genperf.storage.aggregates`` from a large SQL store, the tally and the
failure counts are still exact (computed by the database), while ``tasks`` is a pseudo-random
sample of the window's tasks (``sample_fraction`` < 1) that feeds what needs individual tasks:
medians and p95s, trends, breakdowns, examples of affected tasks.

The tally (:class:`genperf.tally.Tally`) is counted twice, here in Python and in
``storage/aggregates.py`` in SQL, from the same declared thresholds and bands
(``genperf.tally``); tests/analysis/test_sql_aggregates.py checks both give the same numbers.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from genperf import optimizations as opt
from genperf.analysis.failures import FailureCount, count_failures, failure_category
from genperf.config import Settings
from genperf.numbers import highest, lowest, percent
from genperf.records import SystemSample, TaskRecord, TaskStatus
from genperf.tally import (
    BANDS,
    LOW_GPU_UTILIZATION_PERCENT,
    RESOURCES,
    Tally,
    Value,
    load_dominates,
    power_throttled,
    thermal_throttled,
)


def generation_targets(settings: Settings) -> dict[str, float]:
    """Target generation time (seconds) per resolution class, from the thresholds."""
    return settings.performance_thresholds.generation_time_targets()


_SUMS = tuple(f.name for f in dataclasses.fields(Tally) if f.name.endswith("_sum"))
_EXTREMES = tuple(f.name for f in dataclasses.fields(Tally) if f.name.endswith(("_max", "_min")))


class Tallier:
    """Builds a :class:`Tally` one task at a time (for streaming a store in bounded memory)."""

    def __init__(self, settings: Settings) -> None:
        self._bt = settings.benchmark_targets
        self._targets = generation_targets(settings)
        self._bands = [(rule, rule.bound(settings)) for rule in BANDS]
        self._c: Counter[str] = Counter()
        self._sums: dict[str, float] = dict.fromkeys(_SUMS, 0.0)
        self._extremes: dict[str, float | None] = dict.fromkeys(_EXTREMES)

    def _peak(self, key: str, value: float, low: bool = False) -> None:
        self._extremes[key] = (lowest if low else highest)(self._extremes[key], value)

    def add(self, t: TaskRecord) -> None:
        """Count one task; a running one is skipped."""
        if t.status is TaskStatus.RUNNING:
            return
        bt, c, sums, peak = self._bt, self._c, self._sums, self._peak
        c["tasks"] += 1
        c["completed"] += t.status is TaskStatus.COMPLETED
        c["failed"] += t.status is TaskStatus.FAILED
        c["interrupted"] += t.status is TaskStatus.INTERRUPTED
        c["gpu_tasks"] += bool(t.vram_total_mb)
        gen = t.generation_time_seconds
        if t.status is TaskStatus.COMPLETED and gen is not None:
            c["gen_n"] += 1
            sums["gen_sum"] += gen
            peak("gen_min", gen, low=True)
            peak("gen_max", gen)
            target = self._targets.get(t.resolution_class)
            if target is not None:
                c["target_n"] += 1
                c["over_target"] += gen > target
                c["over_acceptable"] += gen > target * bt.generation_time_acceptable_factor
                sums["time_score_sum"] += 1.0 if gen <= target else target / gen
        load = t.model_load_time_seconds
        if load is not None:
            c["load_n"] += 1
            sums["load_sum"] += load
            peak("load_max", load)
            c["load_dominant"] += load_dominates(load, gen)
        vram = percent(t.peak_vram_usage_mb, t.vram_total_mb)
        ram = percent(t.peak_ram_usage_mb, t.ram_total_mb)
        temp = t.peak_gpu_temperature_celsius
        values: dict[Value, float | None] = {
            "load_seconds": load,
            "vram_percent": vram,
            "ram_percent": ram,
            "cpu_percent": t.avg_cpu_percent,
            "temperature_celsius": temp,
        }
        for prefix, name in RESOURCES:
            value = values[name]
            if value is not None:
                c[f"{prefix}_n"] += 1
                sums[f"{prefix}_sum"] += value
                peak(f"{prefix}_max", value)
        for rule, bound in self._bands:
            value = values[rule.value]
            c[rule.field] += value is not None and value >= bound
        util = t.avg_gpu_utilization_percent
        if util is not None:
            c["util_n"] += 1
            sums["util_sum"] += util
        cpu = t.avg_cpu_percent
        if cpu is not None and util is not None:
            busy = cpu >= bt.cpu_usage_percent.acceptable
            c["cpu_busy_gpu_idle"] += busy and util < LOW_GPU_UTILIZATION_PERCENT
        if vram is not None or ram is not None:
            c["memory_n"] += 1
            over_v = vram is not None and vram >= bt.vram_usage_percent.maximum
            over_r = ram is not None and ram >= bt.ram_usage_percent.maximum
            c["memory_over"] += over_v or over_r
        if temp is not None:
            c["temp_n"] += 1
            peak("temp_max", temp)
        c["throttle_thermal"] += thermal_throttled(t.gpu_throttle_reasons)
        c["throttle_power"] += power_throttled(t.gpu_throttle_reasons)
        if opt.is_applied(t.optimizations_applied, (opt.OFFLOAD,)):
            c["offload_n"] += 1
            c["offload_sequential"] += opt.is_applied(
                t.optimizations_applied, (opt.OFFLOAD_SEQUENTIAL,)
            )
            if util is not None:
                c["offload_util_n"] += 1
                sums["offload_util_sum"] += util
                c["offload_util_low"] += util < LOW_GPU_UTILIZATION_PERCENT

    def result(self) -> Tally:
        values: dict[str, Any] = {**self._c, **self._sums, **self._extremes}
        return Tally(**values)


def tally(tasks: Iterable[TaskRecord], settings: Settings) -> Tally:
    """The exact :class:`Tally` of the finished tasks among ``tasks`` (running ones are skipped)."""
    tallier = Tallier(settings)
    for t in tasks:
        tallier.add(t)
    return tallier.result()


@dataclass(frozen=True, slots=True)
class Window:
    """What the analysis reads. See the module docstring for exact versus sampled parts.

    Attributes:
        tally: exact totals over the finished tasks.
        failures: exact failure counts.
        tasks: the finished tasks, or a pseudo-random sample of them.
        samples: system samples of the window (disk, CPU temperature, swap).
        start, end: the window's bounds (UTC), where known.
        method: "records" (built from task records) or "sql" (aggregated by the database).
    """

    tally: Tally
    failures: tuple[FailureCount, ...] = ()
    tasks: tuple[TaskRecord, ...] = ()
    samples: tuple[SystemSample, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    method: str = "records"

    @classmethod
    def of(
        cls,
        tasks: Iterable[TaskRecord],
        settings: Settings,
        samples: Iterable[SystemSample] = (),
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Window:
        """An exact window of these records (running ones are left out)."""
        finished = tuple(t for t in tasks if t.status is not TaskStatus.RUNNING)
        return cls(
            tally=tally(finished, settings),
            failures=count_failures(finished),
            tasks=finished,
            samples=tuple(samples),
            start=start,
            end=end,
        )

    @property
    def sample_fraction(self) -> float:
        """len(tasks) / tally.tasks: 1.0 when every task is at hand."""
        if not self.tally.tasks:
            return 1.0
        return min(1.0, len(self.tasks) / self.tally.tasks)

    @property
    def sampled(self) -> bool:
        return len(self.tasks) < self.tally.tasks

    def scale(self, count: int) -> int:
        """A count over ``tasks`` scaled to the whole window (itself when nothing is sampled)."""
        if not self.sampled or not self.tasks:
            return count
        return round(count * self.tally.tasks / len(self.tasks))


__all__ = [
    "FailureCount",
    "Tallier",
    "Tally",
    "TaskSource",
    "Window",
    "as_window",
    "count_failures",
    "failure_category",
    "generation_targets",
    "tally",
]

TaskSource = Sequence[TaskRecord] | Window
"""What the public analysis functions accept: task records, or a prepared Window."""


def as_window(
    source: TaskSource, settings: Settings, samples: Iterable[SystemSample] = ()
) -> Window:
    """``source`` itself when it is a Window, else an exact window of the records."""
    if isinstance(source, Window):
        return source
    return Window.of(source, settings, samples)
