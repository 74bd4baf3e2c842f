"""Trends over a window: is it getting better, worse, or holding steady?

Series: generation time per resolution class, success rate, peak VRAM (percent of the GPU)
and model load time. Each is fitted with a robust line (Theil–Sen slope, see stats.py) over
the tasks themselves when there are at most ``max_points``, else over the medians of equal
time buckets; a success rate is always fitted over buckets (a single task is 0 or 1).

A direction is called only when both hold:
  * the Mann–Kendall test finds a monotonic trend at the 1 % level (a monitor that reads
    dozens of series a day must not cry wolf: at 5 % a flat ±30 % noise "trends" 1 time in 15), and
  * the fitted change over the window is large: at least :data:`MIN_RELATIVE_CHANGE` of the
    series' median (times, VRAM), or :data:`MIN_RATE_CHANGE` (success rate, absolute).
Otherwise the series is "stable"; under :data:`MIN_POINTS` points it is "insufficient_data".
A few 20x outliers cannot flip a direction: the slope is a median of pairwise slopes and the
test reads only the signs of differences.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from genperf.analysis.stats import Fit, finite, median, robust_fit
from genperf.analysis.window import Window
from genperf.numbers import percent
from genperf.records import JsonFields, TaskRecord, TaskStatus

MIN_POINTS = 4
MIN_RELATIVE_CHANGE = 0.10
MIN_RATE_CHANGE = 0.02
MAX_POINTS = 120  # fit individual tasks up to this many; bucket beyond
BUCKETS = 24
MIN_BUCKET_TASKS = 3
MIN_RATE_BUCKET_TASKS = 10


class Direction(enum.StrEnum):
    IMPROVING = "improving"
    DEGRADING = "degrading"
    STABLE = "stable"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True, slots=True)
class Trend(JsonFields):
    """One series' trend. Values in the metric's unit (seconds, fraction, percent).

    Attributes:
        metric: generation_time_seconds, success_rate, peak_vram_percent, model_load_time_seconds.
        resolution_class: the class of a generation-time series, else None.
        direction: improving, degrading, stable or insufficient_data.
        better: "lower" or "higher": which way is an improvement.
        tasks: tasks in the series; points: points fitted (tasks, or time buckets).
        slope_per_hour: robust slope, metric units per hour.
        start_value, end_value: the fitted line at the first and last point.
        change: end_value - start_value.
        relative_change: change / start_value, as people read "from 237 ms to 1.1 s" (None for
            rates, and when the fitted start is not above zero). The direction's own test
            still measures the change against the series' median, which outliers cannot move.
        z: Mann–Kendall z (|z| >= 2.58: a monotonic trend at the 1 % level).
    """

    metric: str
    resolution_class: str | None
    direction: Direction
    better: str
    tasks: int
    points: int
    bucketed: bool
    slope_per_hour: float | None = None
    start_value: float | None = None
    end_value: float | None = None
    change: float | None = None
    relative_change: float | None = None
    z: float | None = None


@dataclass(frozen=True, slots=True)
class Trends(JsonFields):
    """All trends of a window; generation_time is keyed by resolution class."""

    generation_time: Mapping[str, Trend]
    success_rate: Trend
    peak_vram_percent: Trend
    model_load_time: Trend

    def all(self) -> tuple[Trend, ...]:
        return (
            *self.generation_time.values(),
            self.success_rate,
            self.peak_vram_percent,
            self.model_load_time,
        )


def _hours(t: datetime, t0: datetime) -> float:
    return (t - t0).total_seconds() / 3600.0


def _buckets(
    points: Sequence[tuple[float, float]], count: int, min_tasks: int
) -> list[tuple[float, list[float]]]:
    """Points grouped into ``count`` equal spans of x: (mean x, ys) of buckets with enough."""
    lo, hi = points[0][0], points[-1][0]
    width = (hi - lo) / count or 1.0
    groups: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for x, y in points:
        groups[min(int((x - lo) / width), count - 1)].append((x, y))
    out = []
    for key in sorted(groups):
        g = groups[key]
        if len(g) >= min_tasks:
            out.append((sum(x for x, _ in g) / len(g), [y for _, y in g]))
    return out


def _classify(fit: Fit, change: float, scale: float | None, better: str, rate: bool) -> Direction:
    if not fit.significant():
        return Direction.STABLE
    if rate:
        large = abs(change) >= MIN_RATE_CHANGE
    else:
        large = scale is not None and scale > 0 and abs(change) / scale >= MIN_RELATIVE_CHANGE
    if not large:
        return Direction.STABLE
    up = change > 0
    return Direction.IMPROVING if up == (better == "higher") else Direction.DEGRADING


def _trend(
    metric: str,
    points: list[tuple[float, float]],
    *,
    better: str = "lower",
    resolution_class: str | None = None,
    rate: bool = False,
    max_points: int = MAX_POINTS,
) -> Trend:
    points.sort()
    n = len(points)
    bucketed = rate or n > max_points
    if bucketed:
        min_tasks = MIN_RATE_BUCKET_TASKS if rate else MIN_BUCKET_TASKS
        count = max(1, min(BUCKETS, n // min_tasks)) if rate else BUCKETS
        groups = _buckets(points, count, min_tasks) if points else []
        agg: Callable[[list[float]], float | None] = (
            (lambda ys: sum(ys) / len(ys)) if rate else median
        )
        fitted = [(x, v) for x, ys in groups if (v := agg(ys)) is not None]
    else:
        fitted = points
    base = Trend(
        metric, resolution_class, Direction.INSUFFICIENT_DATA, better, n, len(fitted), bucketed
    )
    if len(fitted) < MIN_POINTS:
        return base
    xs = [x for x, _ in fitted]
    ys = [y for _, y in fitted]
    fit = robust_fit(xs, ys)
    if fit is None:
        return base
    start, end = fit.at(xs[0]), fit.at(xs[-1])
    change = end - start
    scale = median(ys)
    relative = change / start if (start > 0 and not rate) else None
    return Trend(
        metric=metric,
        resolution_class=resolution_class,
        direction=_classify(fit, change, abs(scale) if scale else None, better, rate),
        better=better,
        tasks=n,
        points=len(fitted),
        bucketed=bucketed,
        slope_per_hour=finite(fit.slope),
        start_value=finite(start),
        end_value=finite(end),
        change=finite(change),
        relative_change=finite(relative),
        z=finite(fit.z),
    )


def _finished(tasks: Iterable[TaskRecord]) -> list[TaskRecord]:
    return [t for t in tasks if t.status is not TaskStatus.RUNNING]


def compute_trends(tasks: Sequence[TaskRecord] | Window, *, max_points: int = MAX_POINTS) -> Trends:
    """Trends of generation time (per resolution class), success rate, peak VRAM and load time.

    Args:
        tasks: the window's task records (running ones are ignored), or a prepared Window
            (its tasks, possibly a sample, are used).
        max_points: fit individual tasks up to this many per series, time buckets beyond.
    """
    finished = _finished(tasks.tasks if isinstance(tasks, Window) else tasks)
    t0 = min((t.started_at for t in finished), default=None)
    by_class: dict[str, list[tuple[float, float]]] = defaultdict(list)
    success: list[tuple[float, float]] = []
    vram: list[tuple[float, float]] = []
    load: list[tuple[float, float]] = []
    for t in finished:
        x = _hours(t.started_at, t0) if t0 is not None else 0.0
        success.append((x, 1.0 if t.status is TaskStatus.COMPLETED else 0.0))
        gen = t.generation_time_seconds
        if t.status is TaskStatus.COMPLETED and gen is not None:
            by_class[t.resolution_class].append((x, gen))
        if (v := percent(t.peak_vram_usage_mb, t.vram_total_mb)) is not None:
            vram.append((x, v))
        if t.model_load_time_seconds is not None:
            load.append((x, t.model_load_time_seconds))
    return Trends(
        generation_time={
            cls: _trend("generation_time_seconds", pts, resolution_class=cls, max_points=max_points)
            for cls, pts in sorted(by_class.items())
        },
        success_rate=_trend("success_rate", success, better="higher", rate=True),
        peak_vram_percent=_trend("peak_vram_percent", vram, max_points=max_points),
        model_load_time=_trend("model_load_time_seconds", load, max_points=max_points),
    )
