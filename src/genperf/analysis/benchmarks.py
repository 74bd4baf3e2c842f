"""The spec's "Performance Benchmarks": each current value against its target, from config.

Statuses, for a higher-is-better value (success rate, efficiency: target >= acceptable >= minimum)
and, mirrored, for a lower-is-better one (usage bands optimal <= acceptable <= maximum):

    target_met     at or better than the target (optimal)
    acceptable     at or better than "acceptable"
    marginal       between acceptable and the limit (minimum / maximum): still inside it
    below_minimum  under the limit of a higher-is-better value (success rate, efficiency)
    over_limit     over the limit of a lower-is-better value (usage, generation time)
    no_data        nothing to measure

The limits of VRAM, RAM and success rate are the spec's ``performance_thresholds``
(``max_vram_usage_percent``, ``max_ram_usage_percent``, ``min_success_rate``): see
``Settings._thresholds_are_the_limits``.
Generation time has a target (``max_generation_time_<class>``) and an acceptable bound
(``generation_time_acceptable_factor`` x target, the spec's 1.5x) and no third line: slower than
acceptable is over_limit. Which statistic each benchmark reads is in its ``statistic`` field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from genperf.analysis.efficiency import Efficiency, resource_efficiency
from genperf.analysis.stats import finite, median, quantile, ratio
from genperf.analysis.window import TaskSource, Window, as_window, generation_targets
from genperf.config import Band, QualityBand, Settings
from genperf.numbers import percent
from genperf.records import JsonFields, TaskStatus


class BenchmarkStatus(enum.StrEnum):
    TARGET_MET = "target_met"
    ACCEPTABLE = "acceptable"
    MARGINAL = "marginal"
    BELOW_MINIMUM = "below_minimum"
    OVER_LIMIT = "over_limit"

    @property
    def beyond_limit(self) -> bool:
        """Past the last line, whichever way is worse."""
        return self in (BenchmarkStatus.BELOW_MINIMUM, BenchmarkStatus.OVER_LIMIT)

    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class Benchmark(JsonFields):
    """One benchmark.

    Attributes:
        name: e.g. generation_time_720p, vram_usage_percent, success_rate.
        unit: seconds, percent or fraction.
        better: "lower" or "higher".
        statistic: what ``value`` is, e.g. "median of completed tasks".
        value: the current value, None without data.
        target, acceptable: the configured lines.
        limit: the last line (maximum for usage, minimum for quality), None for times.
        status: see the module docstring.
        tasks: how many tasks the value rests on (scaled to the window when sampled).
    """

    name: str
    unit: str
    better: str
    statistic: str
    value: float | None
    target: float
    acceptable: float
    limit: float | None
    status: BenchmarkStatus
    tasks: int


def _status(
    value: float | None, target: float, acceptable: float, limit: float | None, better: str
) -> BenchmarkStatus:
    if value is None:
        return BenchmarkStatus.NO_DATA
    sign = 1.0 if better == "lower" else -1.0

    def within(line: float) -> bool:
        return sign * value <= sign * line

    if within(target):
        return BenchmarkStatus.TARGET_MET
    if within(acceptable):
        return BenchmarkStatus.ACCEPTABLE
    if limit is not None and within(limit):
        return BenchmarkStatus.MARGINAL
    return BenchmarkStatus.OVER_LIMIT if better == "lower" else BenchmarkStatus.BELOW_MINIMUM


def _measured(
    name: str,
    statistic: str,
    value: float | None,
    n: int,
    *,
    unit: str,
    better: Literal["lower", "higher"],
    lines: tuple[float, float, float | None],
) -> Benchmark:
    """A benchmark of ``value`` against its ``lines`` (target, acceptable, limit)."""
    value = finite(value)
    status = _status(value, *lines, better)
    # Benchmark's fields in order: the lines are its target, acceptable and limit.
    return Benchmark(name, unit, better, statistic, value, *lines, status, n)


def _usage(name: str, value: float | None, band: Band, statistic: str, n: int) -> Benchmark:
    lines = (band.optimal, band.acceptable, band.maximum)
    return _measured(name, statistic, value, n, unit="percent", better="lower", lines=lines)


def _quality(
    name: str, value: float | None, band: QualityBand, statistic: str, n: int
) -> Benchmark:
    lines = (band.target, band.acceptable, band.minimum)
    return _measured(name, statistic, value, n, unit="fraction", better="higher", lines=lines)


def _generation_times(w: Window, settings: Settings) -> list[Benchmark]:
    factor = settings.benchmark_targets.generation_time_acceptable_factor
    out = []
    for cls, target in sorted(generation_targets(settings).items(), key=lambda kv: kv[1]):
        times = [
            t.generation_time_seconds
            for t in w.tasks
            if t.resolution_class == cls
            and t.status is TaskStatus.COMPLETED
            and t.generation_time_seconds is not None
        ]
        out.append(
            _measured(
                f"generation_time_{cls}",
                f"median generation time of completed {cls} tasks",
                median(times),
                w.scale(len(times)),
                unit="seconds",
                better="lower",
                lines=(target, target * factor, None),
            )
        )
    return out


def evaluate_benchmarks(
    tasks: TaskSource, settings: Settings, *, efficiency: Efficiency | None = None
) -> tuple[Benchmark, ...]:
    """Every benchmark of ``settings.benchmark_targets`` with its current value and status.

    Args:
        tasks: the window's task records, or a prepared Window.
        settings: targets, bands and the acceptable factor come from here.
        efficiency: the window's efficiency if already computed (else it is computed).
    """
    w = as_window(tasks, settings)
    bt = settings.benchmark_targets
    t = w.tally
    vram = [p for x in w.tasks if (p := percent(x.peak_vram_usage_mb, x.vram_total_mb)) is not None]
    ram = [p for x in w.tasks if (p := percent(x.peak_ram_usage_mb, x.ram_total_mb)) is not None]
    eff = efficiency if efficiency is not None else resource_efficiency(w, settings)
    return (
        *_generation_times(w, settings),
        _usage(
            "vram_usage_percent",
            quantile(vram, 0.95),
            bt.vram_usage_percent,
            "p95 of task peak VRAM",
            t.vram_n,
        ),
        _usage(
            "ram_usage_percent",
            quantile(ram, 0.95),
            bt.ram_usage_percent,
            "p95 of task peak RAM",
            t.ram_n,
        ),
        _usage(
            "cpu_usage_percent",
            ratio(t.cpu_sum, t.cpu_n),
            bt.cpu_usage_percent,
            "mean of task mean CPU",
            t.cpu_n,
        ),
        _quality(
            "success_rate",
            ratio(t.completed, t.tasks),
            bt.success_rate,
            "completed / finished tasks",
            t.tasks,
        ),
        _quality(
            "resource_efficiency",
            eff.score,
            bt.resource_efficiency,
            "efficiency score (see efficiency.py)",
            t.tasks,
        ),
    )
