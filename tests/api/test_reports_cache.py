"""ReportCache: fresh entries served, stale ones served while one rebuild runs, one build
for concurrent first requests."""

from __future__ import annotations

import threading
import time

import pytest

from genperf.api.reports import ReportCache, ReportsBusyError
from genperf.queries.reads import normalise_window
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


# --- bounds and invalidation (issue 10) ------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "normal"),
    [
        (24.0, 24.0),
        (24.3, 25.0),
        (1.0, 1.0),
        (1.0000001, 1.0),
        (0.5, 0.5),
        (0.26, 16 / 60),
        (1e-300, 1 / 60),
    ],
)
def test_windows_are_normalised_up_to_whole_minutes_or_hours(hours, normal):
    assert normalise_window(hours) == pytest.approx(normal)
    assert normalise_window(hours) >= min(hours, 1.0) - 1e-6


def test_many_keys_leave_no_locks_and_a_bounded_cache():
    cache: ReportCache[int] = ReportCache(5.0, max_entries=16)
    build = Builder()
    for n in range(2000):
        cache.get(("report", n), build)
    assert cache.key_locks == 0
    assert len(cache._entries) == 16
    assert build.calls == 2000


def test_the_least_recently_used_report_goes_first():
    cache: ReportCache[int] = ReportCache(5.0, max_entries=2)
    build = Builder()
    cache.get("a", build)
    cache.get("b", build)
    cache.get("a", build)  # a is used again: b is now the oldest
    cache.get("c", build)
    assert build.calls == 3
    assert cache.get("a", build) == 1  # still cached
    assert cache.get("b", build) == 4  # was evicted


def test_a_finished_task_invalidates_every_report_at_once():
    clock = ManualClock()
    cache: ReportCache[int] = ReportCache(60.0, clock=clock)
    build = Builder()
    assert cache.get("k", build) == 1
    cache.invalidate()
    assert cache.get("k", build) == 2  # rebuilt before answering, not served stale
    assert cache.get("k", build) == 2


def test_builds_are_bounded_and_a_request_that_cannot_start_one_is_told_to_retry():
    cache: ReportCache[int] = ReportCache(5.0, max_concurrent_builds=2, busy_wait_seconds=0.2)
    release = threading.Event()
    started = threading.Semaphore(0)

    def slow() -> int:
        started.release()
        release.wait(10)
        return 7

    threads = [threading.Thread(target=cache.get, args=(f"slow{n}", slow)) for n in range(2)]
    for t in threads:
        t.start()
    for _ in threads:
        assert started.acquire(timeout=10)  # both slots are taken now
    with pytest.raises(ReportsBusyError) as info:
        cache.get("third", Builder())
    assert info.value.status_code == 503
    assert int(info.value.headers["Retry-After"]) > 0
    release.set()
    for t in threads:
        t.join()
    assert cache.get("third", Builder()) == 1


def test_analysis_agrees_with_metrics_as_soon_as_a_task_finishes(make_app):
    from api_support import BASE, LOOPBACK, P
    from fastapi.testclient import TestClient

    with TestClient(make_app(report_cache_seconds=600.0), base_url=BASE, client=LOOPBACK) as c:
        assert c.get(f"{P}/analysis").json()["task_count"] == 0
        start = {"task_id": "fresh", "model_type": "t2v-A14B", "resolution": "720p"}
        assert c.post(f"{P}/tasks", json=start).status_code == 201
        assert c.post(f"{P}/tasks/fresh/complete").status_code == 200
        assert c.get(f"{P}/metrics").json()["total"] == 1
        assert c.get(f"{P}/analysis").json()["task_count"] == 1  # not the cached 0


def test_varying_the_window_does_not_bust_the_cache(make_app):
    from api_support import BASE, LOOPBACK, P
    from fastapi.testclient import TestClient

    app = make_app(report_cache_seconds=600.0)
    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        windows = [24 + n / 100 for n in range(1, 100)]  # 24.01 ... 24.99 hours
        answers = [c.get(f"{P}/analysis", params={"time_window_hours": w}) for w in windows]
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["time_window_hours"] for a in answers} == {25.0}
        reports = app.state.genperf.reports
        assert reports.builds == 1
        assert reports.key_locks == 0


class GatedBuilder:
    """A build that starts, says so, and finishes when the test lets it."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> int:
        self.calls += 1
        self.started.set()
        assert self.release.wait(30)
        return self.calls


@pytest.mark.parametrize("finished", ["after the request came", "before the request came"])
def test_a_waiter_takes_the_build_it_waited_for_unless_a_task_finished_before_it_asked(
    finished,
):
    cache: ReportCache[int] = ReportCache(60.0)
    build = GatedBuilder()
    first = threading.Thread(target=cache.get, args=("k", build))
    first.start()
    assert build.started.wait(30)
    if finished == "before the request came":
        cache.invalidate()  # the running build may miss this task
    results: list[int] = []
    waiter = threading.Thread(target=lambda: results.append(cache.get("k", build)))
    waiter.start()
    wait_until(lambda: cache._building["k"].users == 2)  # the waiter waits on the build
    if finished == "after the request came":
        cache.invalidate()  # began after the waiter asked: the build holds all it needs
    build.release.set()
    first.join(30)
    waiter.join(30)
    # Steady ingestion must not make every waiter rebuild in turn; a task finished before
    # the request came must be in its answer.
    assert results == ([1] if finished == "after the request came" else [2])
