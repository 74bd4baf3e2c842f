"""The window under analysis: exact totals (a :class:`Tally`), failure counts, and the tasks.

Every analysis reads a :class:`Window`. Built from records (:meth:`Window.of`), everything in
it is exact. Built by ``genperf.storage.aggregates`` from a large SQL store, the tally and the
failure counts are still exact (computed by the database), while ``tasks`` is a pseudo-random
sample of the window's tasks (``sample_fraction`` < 1) that feeds what needs individual tasks:
medians and p95s, trends, breakdowns, examples of affected tasks.

The tally's definitions are written twice, here in Python and in ``storage/aggregates.py`` in
SQL; tests/analysis/test_sql_aggregates.py checks both give the same numbers.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from genperf.analysis import optimizations as opt
from genperf.analysis.failures import FailureCount, count_failures, failure_category
from genperf.config import Band, Settings
from genperf.numbers import highest, lowest, percent
from genperf.records import SystemSample, TaskRecord, TaskStatus

# Thresholds of the tally. Settings carry the spec's bands and targets; these are genperf's.
LOAD_SLOW_SECONDS = 60.0  # a model load this long is slow on any storage
LOAD_SHARE = 0.25  # a load taking this share of the task's generation time dominates it
LOAD_MIN_SECONDS = 5.0  # ... if it takes this long at all: a 0.1 s load is never a bottleneck
LOW_GPU_UTILIZATION_PERCENT = 50.0  # a GPU busy less than this while generating waits on something
GPU_HOT_CELSIUS = 85.0  # most data-centre GPUs start to slow down around here
GPU_CRITICAL_CELSIUS = 90.0
THERMAL_THROTTLE_MARKERS = ("thermal", "hw_slowdown")  # NVML reasons: sw_thermal, hw_thermal ...
POWER_THROTTLE_MARKERS = ("power",)  # sw_power_cap, hw_power_brake


def load_dominates(load: float, generation: float | None) -> bool:
    """Does a model load of ``load`` seconds dominate a task of ``generation`` seconds?"""
    return (
        load >= LOAD_MIN_SECONDS and bool(generation) and load >= LOAD_SHARE * (generation or 0.0)
    )


def thermal_throttled(reasons: Iterable[str]) -> bool:
    return any(m in r.lower() for r in reasons for m in THERMAL_THROTTLE_MARKERS)


def power_throttled(reasons: Iterable[str]) -> bool:
    return any(m in r.lower() for r in reasons for m in POWER_THROTTLE_MARKERS)


def generation_targets(settings: Settings) -> dict[str, float]:
    """Target generation time (seconds) per resolution class, from the thresholds."""
    return settings.performance_thresholds.generation_time_targets()


@dataclass(frozen=True, slots=True)
class Tally:
    """Exact counts and sums over the finished tasks of a window. All fields add up.

    Resource fields count every finished task that reports the value (failed runs peak too);
    generation-time fields count completed tasks only. ``*_ge_*`` count tasks at or above a
    band of ``settings.benchmark_targets`` (VRAM and RAM: peak percent; CPU: mean percent).
    """

    tasks: int = 0
    completed: int = 0
    failed: int = 0
    interrupted: int = 0
    gpu_tasks: int = 0  # tasks that ran with a known GPU (vram_total_mb)
    # generation time, completed tasks
    gen_n: int = 0
    gen_sum: float = 0.0
    gen_min: float | None = None
    gen_max: float | None = None
    target_n: int = 0  # ... of a class with a generation-time target
    over_target: int = 0
    over_acceptable: int = 0
    time_score_sum: float = 0.0  # sum of min(1, target / generation time)
    # model loading, all tasks that report a load time
    load_n: int = 0
    load_sum: float = 0.0
    load_max: float | None = None
    load_slow: int = 0  # >= LOAD_SLOW_SECONDS
    load_dominant: int = 0  # >= LOAD_SHARE of the task's generation time
    # peak VRAM, percent of the device
    vram_n: int = 0
    vram_sum: float = 0.0
    vram_max: float | None = None
    vram_ge_acceptable: int = 0
    vram_ge_maximum: int = 0
    # peak host RAM, percent
    ram_n: int = 0
    ram_sum: float = 0.0
    ram_max: float | None = None
    ram_ge_acceptable: int = 0
    ram_ge_maximum: int = 0
    # mean CPU percent
    cpu_n: int = 0
    cpu_sum: float = 0.0
    cpu_max: float | None = None
    cpu_ge_acceptable: int = 0
    cpu_ge_maximum: int = 0
    cpu_busy_gpu_idle: int = 0  # CPU >= acceptable while the GPU is under LOW_GPU_UTILIZATION
    # mean GPU utilisation
    util_n: int = 0
    util_sum: float = 0.0
    # memory over the maximum band (VRAM or RAM), for efficiency
    memory_n: int = 0
    memory_over: int = 0
    # temperature and throttling
    temp_n: int = 0
    temp_max: float | None = None
    temp_hot: int = 0
    temp_critical: int = 0
    throttle_thermal: int = 0
    throttle_power: int = 0
    # offloading
    offload_n: int = 0
    offload_sequential: int = 0
    offload_util_n: int = 0
    offload_util_sum: float = 0.0
    offload_util_low: int = 0

    def __add__(self, other: Tally) -> Tally:
        values: dict[str, float | int | None] = {}
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name.endswith(("_max", "_min")):
                values[f.name] = (highest if f.name.endswith("_max") else lowest)(a, b)
            else:
                values[f.name] = a + b
        return Tally(**values)  # type: ignore[arg-type]


def _band_counts(prefix: str, value: float | None, band: Band, out: Counter[str]) -> None:
    if value is None:
        return
    out[f"{prefix}_n"] += 1
    out[f"{prefix}_ge_acceptable"] += value >= band.acceptable
    out[f"{prefix}_ge_maximum"] += value >= band.maximum


_SUMS = tuple(f.name for f in dataclasses.fields(Tally) if f.name.endswith("_sum"))
_EXTREMES = tuple(f.name for f in dataclasses.fields(Tally) if f.name.endswith(("_max", "_min")))


class Tallier:
    """Builds a :class:`Tally` one task at a time (for streaming a store in bounded memory)."""

    def __init__(self, settings: Settings) -> None:
        self._bt = settings.benchmark_targets
        self._targets = generation_targets(settings)
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
            c["load_slow"] += load >= LOAD_SLOW_SECONDS
            c["load_dominant"] += load_dominates(load, gen)
        vram = percent(t.peak_vram_usage_mb, t.vram_total_mb)
        ram = percent(t.peak_ram_usage_mb, t.ram_total_mb)
        for key, value, band in (
            ("vram", vram, bt.vram_usage_percent),
            ("ram", ram, bt.ram_usage_percent),
            ("cpu", t.avg_cpu_percent, bt.cpu_usage_percent),
        ):
            if value is not None:
                sums[f"{key}_sum"] += value
                peak(f"{key}_max", value)
            _band_counts(key, value, band, c)
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
        temp = t.peak_gpu_temperature_celsius
        if temp is not None:
            c["temp_n"] += 1
            peak("temp_max", temp)
            c["temp_hot"] += temp >= GPU_HOT_CELSIUS
            c["temp_critical"] += temp >= GPU_CRITICAL_CELSIUS
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
