"""What each optimisation did, measured on history: the same work with and without it.

For every model type x resolution class and every optimisation token seen there, the median
generation time and peak memory of the completed tasks that ran with the token against those
that ran without it ("vae_tiling: peak −38 %, time +6 %, 42 vs 40 tasks"). And the impact of
a configuration change: the same medians in a window before it against the window after.

Peak memory is VRAM where both sides measured it, else the process's peak RSS (a CPU
service); each answer says which. Confidence is how far the change stands above the noise of
two medians (standard error of a median ~ 1.25 sigma / sqrt(n)): "high" beyond three
standard errors with 20 tasks a side, "medium" beyond two with 5 a side, else "low".
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from genperf import optimizations as opt
from genperf.analysis.stats import median, quantile
from genperf.records import TaskRecord

MIN_TASKS = 3  # a side with fewer tasks gives no median worth comparing
HIGH, MEDIUM, LOW = "high", "medium", "low"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Medians of two groups of tasks and how the second differs from the first."""

    count_a: int
    count_b: int
    time_a_seconds: float | None
    time_b_seconds: float | None
    time_change_percent: float | None
    time_confidence: str
    peak_metric: str | None  # "peak_vram_usage_mb" or "peak_process_rss_mb"
    peak_a_mb: float | None
    peak_b_mb: float | None
    peak_change_percent: float | None
    peak_confidence: str


@dataclass(frozen=True, slots=True)
class OptimizationImpact:
    """One token on one model type x resolution class: without (a) against with (b)."""

    token: str
    model_type: str
    resolution_class: str
    comparison: Comparison

    @property
    def summary(self) -> str:
        c = self.comparison
        parts = [self.token + ":"]
        if c.peak_change_percent is not None:
            parts.append(f"peak {_signed(c.peak_change_percent)},")
        if c.time_change_percent is not None:
            parts.append(f"time {_signed(c.time_change_percent)},")
        parts.append(f"{c.count_b} vs {c.count_a} tasks")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """What one model type x resolution class did in one window: finished tasks, how many
    completed, and the completed tasks' median and p95 time and median peaks."""

    tasks: int
    completed: int
    success_rate: float | None
    median_time_seconds: float | None
    p95_time_seconds: float | None
    median_peak_vram_mb: float | None
    median_peak_rss_mb: float | None


@dataclass(frozen=True, slots=True)
class ChangeImpact:
    """A configuration change: the window before (a) against the window after (b).
    ``comparison`` compares the completed tasks; ``before`` / ``after`` count failures too."""

    changed_at: datetime
    model_type: str
    resolution_class: str
    comparison: Comparison
    before: WindowFigures
    after: WindowFigures


def optimization_impact(records: Iterable[TaskRecord]) -> list[OptimizationImpact]:
    """Each token's impact per model type x resolution class, largest groups first.

    Only completed tasks count; a token present in every task of a group (or in none) has no
    comparison there and is left out.
    """
    groups: dict[tuple[str, str], list[tuple[TaskRecord, frozenset[str]]]] = defaultdict(list)
    for r in records:
        if r.success:
            groups[(r.model_type, r.resolution_class)].append(
                (r, opt.normalize(r.optimizations_applied))
            )
    out: list[OptimizationImpact] = []
    for (model_type, cls), tasks in groups.items():
        tokens = sorted(set().union(*(t for _, t in tasks)))
        for token in tokens:
            with_ = [r for r, t in tasks if token in t]
            without = [r for r, t in tasks if token not in t]
            if len(with_) < MIN_TASKS or len(without) < MIN_TASKS:
                continue
            out.append(OptimizationImpact(token, model_type, cls, compare(without, with_)))
    out.sort(key=lambda i: (-(i.comparison.count_a + i.comparison.count_b), i.token))
    return out


def change_impact(
    records: Iterable[TaskRecord],
    changed_at: datetime,
    window: timedelta,
    *,
    model_type: str | None = None,
) -> list[ChangeImpact]:
    """Per model type x resolution class (``model_type`` only, when given), finished tasks
    started in ``window`` before ``changed_at`` against those started in ``window`` after
    it. A group shows when both windows finished a task there; its comparison needs
    :data:`MIN_TASKS` completed tasks a side (else its changes are None, confidence low)."""
    before: dict[tuple[str, str], list[TaskRecord]] = defaultdict(list)
    after: dict[tuple[str, str], list[TaskRecord]] = defaultdict(list)
    for r in records:
        if not r.finished or (model_type is not None and r.model_type != model_type):
            continue
        key = (r.model_type, r.resolution_class)
        if changed_at - window <= r.started_at < changed_at:
            before[key].append(r)
        elif changed_at <= r.started_at < changed_at + window:
            after[key].append(r)
    out = []
    for key in sorted(set(before) & set(after)):
        ok_before = [r for r in before[key] if r.success]
        ok_after = [r for r in after[key] if r.success]
        out.append(
            ChangeImpact(
                changed_at,
                key[0],
                key[1],
                compare(ok_before, ok_after),
                window_figures(before[key]),
                window_figures(after[key]),
            )
        )
    return out


def window_figures(records: Sequence[TaskRecord]) -> WindowFigures:
    """The figures of one window's finished tasks (times and peaks of the completed ones)."""
    ok = [r for r in records if r.success]
    times = _values(ok, "generation_time_seconds")
    return WindowFigures(
        tasks=len(records),
        completed=len(ok),
        success_rate=len(ok) / len(records) if records else None,
        median_time_seconds=median(times),
        p95_time_seconds=quantile(times, 0.95),
        median_peak_vram_mb=median(_values(ok, "peak_vram_usage_mb")),
        median_peak_rss_mb=median(_values(ok, "peak_process_rss_mb")),
    )


def compare(a: Sequence[TaskRecord], b: Sequence[TaskRecord]) -> Comparison:
    """Group ``b`` against group ``a``: medians, change in percent, confidence."""
    time_a = _values(a, "generation_time_seconds")
    time_b = _values(b, "generation_time_seconds")
    metric = "peak_vram_usage_mb"
    peak_a, peak_b = _values(a, metric), _values(b, metric)
    if len(peak_a) < MIN_TASKS or len(peak_b) < MIN_TASKS:
        metric = "peak_process_rss_mb"
        peak_a, peak_b = _values(a, metric), _values(b, metric)
    t = _change(time_a, time_b)
    p = _change(peak_a, peak_b)
    return Comparison(
        count_a=len(a),
        count_b=len(b),
        time_a_seconds=t[0],
        time_b_seconds=t[1],
        time_change_percent=t[2],
        time_confidence=t[3],
        peak_metric=metric if p[2] is not None else None,
        peak_a_mb=p[0],
        peak_b_mb=p[1],
        peak_change_percent=p[2],
        peak_confidence=p[3],
    )


def _values(records: Sequence[TaskRecord], field: str) -> list[float]:
    values = (getattr(r, field) for r in records)
    return [v for v in values if v is not None and math.isfinite(v)]


def _change(a: list[float], b: list[float]) -> tuple[float | None, float | None, float | None, str]:
    if len(a) < MIN_TASKS or len(b) < MIN_TASKS:
        return None, None, None, LOW
    ma, mb = statistics.median(a), statistics.median(b)
    if ma <= 0:
        return ma, mb, None, LOW
    change = 100.0 * (mb / ma - 1.0)
    se = math.hypot(_median_se(a), _median_se(b))
    diff = abs(mb - ma)
    small = min(len(a), len(b))
    if small >= 20 and diff > 3 * se:
        confidence = HIGH
    elif small >= 5 and diff > 2 * se:
        confidence = MEDIUM
    else:
        confidence = LOW
    return ma, mb, change, confidence


def _median_se(values: list[float]) -> float:
    return 1.2533 * statistics.stdev(values) / math.sqrt(len(values))


def _signed(percent: float) -> str:
    sign = "+" if percent > 0 else "−" if percent < 0 else "±"
    return f"{sign}{abs(percent):.0f} %"
