"""Small, robust statistics: quantiles, Theil–Sen slope, Mann–Kendall test. Pure Python.

Generation times on a shared box carry outliers of up to 20x, so trends use the Theil–Sen
estimator (the median of all pairwise slopes; up to ~29 % of the points can be arbitrary
without moving it far) and the Mann–Kendall test (signs of pairwise differences only) to say
whether a trend is there at all. Medians and means are the standard library's
(:mod:`statistics`); quantiles interpolate linearly, as numpy does.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Two-sided levels of the standard normal: |z| at or above these is significant at 5 % / 1 %.
Z_95 = 1.959963984540054
Z_99 = 2.5758293035489004


def finite(value: float | None) -> float | None:
    """The value, or None when it is None, NaN or infinite (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def ratio(part: float, whole: float) -> float | None:
    """part / whole, or None when whole is 0."""
    return part / whole if whole else None


def quantile(values: Iterable[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation (numpy's default), None when empty."""
    data = sorted(values)
    if not data:
        return None
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    pos = q * (len(data) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Iterable[float]) -> float | None:
    """The median, None when empty."""
    data = list(values)
    return float(statistics.median(data)) if data else None


def mean(values: Iterable[float]) -> float | None:
    """The mean (as a float), None when empty."""
    data = list(values)
    return statistics.fmean(data) if data else None


@dataclass(frozen=True, slots=True)
class Fit:
    """A robust straight line through (x, y) points and whether it is significant.

    Attributes:
        slope: Theil–Sen slope (y units per x unit).
        intercept: median of y - slope * x.
        z: the Mann–Kendall statistic, normalised (|z| >= 2.58: significant at 1 %).
        n: number of points.
    """

    slope: float
    intercept: float
    z: float
    n: int

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x

    def significant(self, z: float = Z_99) -> bool:
        """Whether the Mann–Kendall test finds a monotonic trend (|z| >= z; default 1 %)."""
        return abs(self.z) >= z


def robust_fit(xs: Sequence[float], ys: Sequence[float]) -> Fit | None:
    """Theil–Sen slope with a Mann–Kendall z, over points sorted by x. None under 3 points.

    O(n^2) in the number of points: callers bucket long series first (see trends.py).
    Pairs with equal x give no slope; ties in y count as no change.
    """
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    pts = sorted(zip(xs, ys, strict=True))
    n = len(pts)
    if n < 3:
        return None
    slopes: list[float] = []
    s = 0
    for i in range(n - 1):
        xi, yi = pts[i]
        for j in range(i + 1, n):
            xj, yj = pts[j]
            dy = yj - yi
            if xj != xi:
                slopes.append(dy / (xj - xi))
                s += (dy > 0) - (dy < 0)
    if not slopes:
        return None
    slope = statistics.median(slopes)
    intercept = statistics.median([y - slope * x for x, y in pts])
    return Fit(slope=slope, intercept=intercept, z=_mk_z(s, [y for _, y in pts]), n=n)


def _mk_z(s: int, ys: Sequence[float]) -> float:
    """Mann–Kendall z from the statistic S, with the usual correction for tied values."""
    n = len(ys)
    counts: dict[float, int] = {}
    for y in ys:
        counts[y] = counts.get(y, 0) + 1
    ties = sum(t * (t - 1) * (2 * t + 5) for t in counts.values() if t > 1)
    var = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    if var <= 0 or s == 0:
        return 0.0
    return (s - 1) / math.sqrt(var) if s > 0 else (s + 1) / math.sqrt(var)
