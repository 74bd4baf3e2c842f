"""The tally of a window of tasks: its fields, thresholds and bands, declared once.

Two implementations count it: ``genperf.analysis.window.Tallier`` in Python, one record at a
time, and ``genperf.storage.aggregates`` in SQL, for large windows. Both read the same
definitions from here (the thresholds, the :data:`BANDS` and :data:`RESOURCES`), so they
cannot disagree on what a band is; tests/analysis/test_sql_aggregates.py checks that they
give the same numbers field by field. This module is plain data: the store returns a
:class:`Tally` and :class:`FailureRow` values without importing ``analysis``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from genperf.config import Settings
from genperf.numbers import highest, lowest
from genperf.records import TaskRecord

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


# The per-task values the bands compare. Each tally names them the same way: the Python
# tally as keys of a dict per record, the SQL tally as the columns of its per-row subquery.
Value = Literal["load_seconds", "vram_percent", "ram_percent", "cpu_percent", "temperature_celsius"]


@dataclass(frozen=True, slots=True)
class BandRule:
    """A count of the tally: the tasks whose ``value`` is at or above ``bound(settings)``."""

    field: str  # the Tally field it counts into
    value: Value
    bound: Callable[[Settings], float]


def _band(resource: str, edge: Literal["acceptable", "maximum"]) -> Callable[[Settings], float]:
    def bound(settings: Settings) -> float:
        band = getattr(settings.benchmark_targets, f"{resource}_usage_percent")
        return float(getattr(band, edge))

    return bound


# Resources tallied as count, sum, max and the two bands of settings.benchmark_targets:
# (prefix of the Tally fields, the per-task value).
RESOURCES: tuple[tuple[str, Value], ...] = (
    ("vram", "vram_percent"),  # peak VRAM, percent of the device
    ("ram", "ram_percent"),  # peak host RAM, percent
    ("cpu", "cpu_percent"),  # mean CPU percent
)

BANDS: tuple[BandRule, ...] = (
    BandRule("load_slow", "load_seconds", lambda _: LOAD_SLOW_SECONDS),
    *(
        BandRule(f"{prefix}_ge_{edge}", value, _band(prefix, edge))
        for prefix, value in RESOURCES
        for edge in ("acceptable", "maximum")
    ),
    BandRule("temp_hot", "temperature_celsius", lambda _: GPU_HOT_CELSIUS),
    BandRule("temp_critical", "temperature_celsius", lambda _: GPU_CRITICAL_CELSIUS),
)


class ResourceCounts(NamedTuple):
    """The tally of one of :data:`RESOURCES`, typed (``Tally.resource``)."""

    n: int
    total: float
    max: float | None
    ge_acceptable: int
    ge_maximum: int


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

    def resource(self, prefix: Literal["vram", "ram", "cpu"]) -> ResourceCounts:
        """The counts of one of :data:`RESOURCES` (typed, where ``getattr`` would not be)."""
        t = self
        counts = {
            "vram": (t.vram_n, t.vram_sum, t.vram_max, t.vram_ge_acceptable, t.vram_ge_maximum),
            "ram": (t.ram_n, t.ram_sum, t.ram_max, t.ram_ge_acceptable, t.ram_ge_maximum),
            "cpu": (t.cpu_n, t.cpu_sum, t.cpu_max, t.cpu_ge_acceptable, t.cpu_ge_maximum),
        }
        return ResourceCounts(*counts[prefix])


class FailureRow(NamedTuple):
    """Failed or interrupted runs as the store groups them, before analysis names them."""

    error_category: str | None
    failed_phase: str | None
    optimizations: tuple[str, ...]
    status: str
    runs: int


class Aggregate(NamedTuple):
    """A window totalled by the store itself: what ``analysis.report.AggregatingStore``
    returns."""

    tally: Tally
    failures: tuple[FailureRow, ...]
    tasks: tuple[TaskRecord, ...]  # about ``fraction`` of the finished tasks, oldest first


__all__ = [
    "BANDS",
    "GPU_CRITICAL_CELSIUS",
    "GPU_HOT_CELSIUS",
    "LOAD_MIN_SECONDS",
    "LOAD_SHARE",
    "LOAD_SLOW_SECONDS",
    "LOW_GPU_UTILIZATION_PERCENT",
    "POWER_THROTTLE_MARKERS",
    "RESOURCES",
    "THERMAL_THROTTLE_MARKERS",
    "Aggregate",
    "BandRule",
    "FailureRow",
    "ResourceCounts",
    "Tally",
    "load_dominates",
    "power_throttled",
    "thermal_throttled",
]
