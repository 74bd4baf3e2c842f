"""ReportCache: fresh entries served, stale ones served while one rebuild runs, one build
for concurrent first requests."""

from __future__ import annotations

import threading
import time

import pytest

from genperf.api.reports import ReportCache
from genperf.testing import ManualClock, wait_until


class Builder:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self) -> int:
        time.sleep(self.delay)
        with self.lock:
            self.calls += 1
            return self.calls


def test_fresh_entries_are_served_from_the_cache():
    clock = ManualClock()
    cache: ReportCache[int] = ReportCache(5.0, clock=clock)
    build = Builder()
    assert cache.get("k", build) == 1
    clock.advance(4.9)
    assert cache.get("k", build) == 1
    assert build.calls == 1
    assert cache.get("other", build) == 2


def test_a_stale_entry_is_served_while_one_rebuild_runs():
    clock = ManualClock()
    cache: ReportCache[int] = ReportCache(5.0, clock=clock)
    build = Builder()
    cache.get("k", build)
    clock.advance(6.0)
    slow = Builder(delay=0.2)
    slow.calls = 1
    assert cache.get("k", slow) == 1  # stale, at once
    assert cache.get("k", slow) == 1  # still stale; no second rebuild
    wait_until(lambda: cache.get("k", slow) == 2)
    assert slow.calls == 2


def test_a_too_old_entry_is_rebuilt_before_answering():
    clock = ManualClock()
    cache: ReportCache[int] = ReportCache(5.0, max_stale_seconds=10.0, clock=clock)
    build = Builder()
    cache.get("k", build)
    clock.advance(20.0)
    assert cache.get("k", build) == 2


def test_concurrent_first_requests_share_one_build():
    cache: ReportCache[int] = ReportCache(5.0)
    build = Builder(delay=0.2)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", build))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1] * 8
    assert build.calls == 1


def test_ttl_zero_builds_every_time_and_errors_propagate():
    cache: ReportCache[int] = ReportCache(0.0)
    build = Builder()
    assert [cache.get("k", build) for _ in range(3)] == [1, 2, 3]

    def fail() -> int:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        ReportCache[int](5.0).get("k", fail)


def test_a_failed_background_rebuild_keeps_the_stale_entry(caplog):
    clock = ManualClock()
    cache: ReportCache[int] = ReportCache(5.0, clock=clock)
    cache.get("k", Builder())
    clock.advance(6.0)

    def fail() -> int:
        raise RuntimeError("database down")

    assert cache.get("k", fail) == 1
    wait_until(lambda: "refreshing a cached report failed" in caplog.text)
    assert cache.get("k", Builder()) == 1
