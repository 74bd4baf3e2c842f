"""The Sampler: one daemon thread that asks every collector for a reading each interval.

The schedule does not drift: the next tick is due at ``previous due + interval``, whatever
the collectors cost. When ticks are missed (a suspended laptop, a stalled process) the sampler
skips ahead instead of firing a burst of catch-up samples. ``stop()`` wakes the thread at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from genperf.collectors.base import Collector
from genperf.records import SAMPLE_FIELDS, SystemSample, utc_now

logger = logging.getLogger("genperf.monitor.sampler")

SampleSink = Callable[[SystemSample, float], None]


class Sampler:
    """Takes a :class:`SystemSample` every ``interval`` seconds and hands it to ``sink``.

    Args:
        collectors: what to read each tick; a failing one is logged once and skipped.
        interval: seconds between ticks.
        sink: called with (sample, monotonic time) on the sampler thread; must not block.
        history_size: how many recent samples to keep in memory.
        clock: monotonic seconds (tests pass a ManualClock).
        wall_clock: UTC stamps for samples.
        wait: ``wait(timeout) -> bool`` that returns True when stopping; tests pass one that
            advances a manual clock instead of sleeping.
    """

    def __init__(
        self,
        collectors: Sequence[Collector],
        interval: float,
        sink: SampleSink,
        *,
        node: str,
        history_size: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], Any] = utc_now,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.collectors = list(collectors)
        self.interval = interval
        self.node = node
        self.history: deque[SystemSample] = deque(maxlen=history_size)
        self.samples_taken = 0
        self.collector_errors = 0
        self.busy_seconds = 0.0  # time spent collecting: the monitor's own overhead
        self._sink = sink
        self._clock = clock
        self._wall_clock = wall_clock
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failing: set[str] = set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def latest(self) -> SystemSample | None:
        return self.history[-1] if self.history else None

    def start(self) -> None:
        """Start the thread; a no-op when it already runs."""
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="genperf-sampler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait for it (at most one interval); a no-op when stopped."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.interval + 1.0 if timeout is None else timeout)

    def sample_once(self) -> SystemSample:
        """Read every collector now, keep the sample in history and hand it to the sink."""
        began = time.perf_counter()
        values: dict[str, Any] = {}
        for collector in self.collectors:
            try:
                reading = collector.collect()
            except Exception as exc:  # a broken collector must never stop sampling
                self._collector_failed(collector, exc)
                continue
            self._failing.discard(collector.name)
            values.update((k, v) for k, v in reading.items() if k in SAMPLE_FIELDS)
        t = self._clock()
        sample = SystemSample(taken_at=self._wall_clock(), node=self.node, **values)
        self.history.append(sample)
        self.samples_taken += 1
        try:
            self._sink(sample, t)
        except Exception:
            logger.exception("handling a sample failed; sampling goes on")
        self.busy_seconds += time.perf_counter() - began
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "sample %d: cpu=%s%% ram=%s%% gpus=%d",
                self.samples_taken,
                sample.cpu_percent,
                sample.ram_percent,
                len(sample.gpus),
            )
        return sample

    def _collector_failed(self, collector: Collector, exc: Exception) -> None:
        self.collector_errors += 1
        if collector.name not in self._failing:  # log once per failure streak, not every tick
            self._failing.add(collector.name)
            logger.warning(
                "collector %s failed (%s: %s); its fields are unknown until it recovers",
                collector.name,
                type(exc).__name__,
                exc,
            )

    def _run(self) -> None:
        due = self._clock()
        while not self._stop.is_set():
            self.sample_once()
            due += self.interval
            now = self._clock()
            if due < now:  # missed ticks: skip ahead rather than burst
                missed = int((now - due) // self.interval) + 1
                due += missed * self.interval
            if self._wait(due - now):
                break
