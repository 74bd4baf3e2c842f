"""Forecasts at the current trend: when each resolution class's p95 crosses its lines, and
what the fleet can do per hour.

* **p95 crossing.** The window's completed tasks of a class are cut into equal time buckets;
  each bucket with enough tasks gives a p95; a least-squares line through them (seconds per
  day) is the trend. From the line's value now, the day it reaches the target and the
  acceptable line (``target x generation_time_acceptable_factor``) is the forecast; a flat or
  falling trend, or a crossing past the horizon, is "not within 30 days". Fewer than three
  buckets: no trend, said so.
* **Capacity.** Each node runs one generation at a time (the reference service's worker), so
  at the window's mix a node does ``3600 / mean generation time`` tasks an hour; the fleet is
  the sum over nodes. The queue (tasks waiting and running) then takes
  ``queue / capacity`` hours.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from genperf.records import TaskRecord

HORIZON_DAYS = 30.0
BUCKETS = 8
MIN_PER_BUCKET = 5
MIN_BUCKETS = 3


@dataclass(frozen=True, slots=True)
class Crossing:
    """When a line is reached: ``at`` (None: not within the horizon), or ``already``."""

    line_seconds: float
    already: bool
    at: datetime | None

    @property
    def text(self) -> str:
        if self.already:
            return "already above"
        if self.at is None:
            return f"not within {HORIZON_DAYS:g} days"
        return self.at.isoformat(timespec="minutes")


@dataclass(frozen=True, slots=True)
class ClassForecast:
    resolution_class: str
    tasks: int
    p95_now_seconds: float | None
    trend_seconds_per_day: float | None
    target: Crossing | None
    acceptable: Crossing | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Capacity:
    tasks_per_hour: float | None
    nodes: int
    queue: int
    queue_hours: float | None


def forecast_p95(
    records: Iterable[TaskRecord],
    targets: Mapping[str, float],
    acceptable_factor: float,
    *,
    since: datetime,
    now: datetime,
) -> list[ClassForecast]:
    """Per resolution class with a target: its p95 trend and when it crosses its lines."""
    by_class: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for r in records:
        if r.success and r.generation_time_seconds is not None:
            by_class[r.resolution_class].append((r.started_at, r.generation_time_seconds))
    out = []
    for cls in sorted(by_class):
        target = targets.get(cls)
        if target is None:
            continue
        out.append(_one(cls, by_class[cls], target, acceptable_factor, since, now))
    return out


def _one(  # noqa: PLR0917 - private, called once
    cls: str,
    points: list[tuple[datetime, float]],
    target: float,
    factor: float,
    since: datetime,
    now: datetime,
) -> ClassForecast:
    span = (now - since).total_seconds()
    buckets: list[list[float]] = [[] for _ in range(BUCKETS)]
    for at, value in points:
        i = min(int((at - since).total_seconds() / span * BUCKETS), BUCKETS - 1)
        if i >= 0:
            buckets[i].append(value)
    xs, ys = [], []
    for i, values in enumerate(buckets):
        if len(values) >= MIN_PER_BUCKET:
            xs.append((i + 0.5) * span / BUCKETS / 86400.0)  # days since the window began
            ys.append(_p95(values))
    if len(xs) < MIN_BUCKETS:
        return ClassForecast(
            cls,
            len(points),
            None,
            None,
            None,
            None,
            note=f"too few tasks for a trend: {MIN_BUCKETS} stretches of the window need "
            f"{MIN_PER_BUCKET} completed tasks each",
        )
    slope, intercept = _line(xs, ys)
    today = span / 86400.0
    now_p95 = intercept + slope * today
    return ClassForecast(
        cls,
        len(points),
        now_p95,
        slope,
        _crossing(target, now_p95, slope, now),
        _crossing(target * factor, now_p95, slope, now),
    )


def _crossing(line: float, value: float, slope: float, now: datetime) -> Crossing:
    if value >= line:
        return Crossing(line, True, None)
    if slope <= 0:
        return Crossing(line, False, None)
    days = (line - value) / slope
    return Crossing(line, False, now + timedelta(days=days) if days <= HORIZON_DAYS else None)


def capacity(records: Sequence[TaskRecord], queue: int) -> Capacity:
    """Tasks per hour at the window's mix, summed over nodes, and how long ``queue`` takes."""
    times: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.finished and r.generation_time_seconds is not None and r.generation_time_seconds > 0:
            times[r.node].append(r.generation_time_seconds)
    if not times:
        return Capacity(None, 0, queue, None)
    per_hour = sum(3600.0 / statistics.fmean(v) for v in times.values())
    return Capacity(per_hour, len(times), queue, queue / per_hour if per_hour else None)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    k = 0.95 * (len(ordered) - 1)
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return slope, my - slope * mx
