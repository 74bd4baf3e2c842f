"""Arithmetic on values that may be unknown: ``None`` is "not measured", never a zero.

The monitor's peaks, the analysis' tallies and the records' percentages all combine values
that may be missing; these few helpers are their one definition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

N = TypeVar("N", int, float)


def _known(pick: Callable[[N, N], N], a: N | None, b: N | None) -> N | None:
    if a is None:
        return b
    return a if b is None else pick(a, b)


def highest(a: N | None, b: N | None) -> N | None:
    """The larger of two values, either of which may be unknown (None only when both are)."""
    return _known(max, a, b)


def lowest(a: N | None, b: N | None) -> N | None:
    """The smaller of two values, either of which may be unknown (None only when both are)."""
    return _known(min, a, b)


def percent(used: float | None, total: float | None) -> float | None:
    """used as a percentage of total, or None when either is unknown or total is 0."""
    if used is None or not total:
        return None
    return 100.0 * used / total
