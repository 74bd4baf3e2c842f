"""O(1) running statistics of one metric over one task: peak, time-weighted mean, last."""

from __future__ import annotations


class RunningStats:
    """Peak and time-weighted mean of a step signal fed sample by sample.

    Each value holds until the next one (sample-and-hold), so a task that spends 9 s at 10 %
    and 1 s at 100 % averages 19 %, not the 55 % a plain mean of two samples would give.
    Unknown readings (None) are skipped: they never drag the mean to 0.
    """

    __slots__ = ("_area", "_first_t", "_last_t", "count", "last", "peak")

    def __init__(self) -> None:
        self.peak: float | None = None
        self.last: float | None = None
        self.count = 0
        self._area = 0.0
        self._first_t = 0.0
        self._last_t = 0.0

    def add(self, value: float | None, t: float) -> None:
        """Feed one reading taken at monotonic time ``t`` (seconds)."""
        if value is None:
            return
        if self.last is None:
            self._first_t = t
        else:
            self._area += self.last * max(0.0, t - self._last_t)
        self.last = value
        self._last_t = max(t, self._last_t)
        self.peak = value if self.peak is None else max(self.peak, value)
        self.count += 1

    def mean(self, end_t: float) -> float | None:
        """Time-weighted mean up to ``end_t``; the only reading if no time has passed."""
        if self.last is None:
            return None
        duration = max(end_t, self._last_t) - self._first_t
        if duration <= 0:
            return self.last
        area = self._area + self.last * (max(end_t, self._last_t) - self._last_t)
        return area / duration
