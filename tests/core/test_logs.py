"""Repeated log lines are summarised: the first, then one a window with a count (issue 10)."""

from __future__ import annotations

import logging
import sqlite3

from genperf.config import Settings
from genperf.logs import RepeatFilter, Throttle
from genperf.monitor import PerformanceMonitor
from genperf.storage import SqlStore
from genperf.testing import FakeCollector, ManualClock


def test_a_throttle_reports_once_a_window_with_what_it_held_back():
    clock = ManualClock()
    throttle = Throttle(10.0, clock=clock)
    assert throttle.ready() == 0
    assert [throttle.ready() for _ in range(500)] == [None] * 500
    clock.advance(10.0)
    assert throttle.ready() == 500
    assert throttle.ready() is None


def _record(msg: str, *args: object, name: str = "uvicorn.error") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_the_filter_passes_the_first_and_then_one_a_window_with_a_count():
    clock = ManualClock()
    repeat = RepeatFilter(10.0, clock=clock)
    passed = [repeat.filter(_record("Invalid HTTP request received.")) for _ in range(3000)]
    assert passed.count(True) == 1
    assert repeat.filter(_record("another line")) is True  # other lines are not held back
    clock.advance(10.0)
    later = _record("Invalid HTTP request received.")
    assert repeat.filter(later) is True
    assert later.getMessage() == (
        "Invalid HTTP request received. [2999 more like this in the last 10 s]"
    )


def test_the_filter_keys_on_the_template_and_keeps_arguments_working():
    clock = ManualClock()
    repeat = RepeatFilter(10.0, clock=clock, max_keys=4)
    assert repeat.filter(_record("task %s dropped", "a"))
    assert not repeat.filter(_record("task %s dropped", "b"))
    clock.advance(11.0)
    record = _record("task %s dropped", "c")
    assert repeat.filter(record)
    assert record.getMessage() == "task c dropped [1 more like this in the last 10 s]"
    for n in range(100):  # many templates: the memory stays bounded
        repeat.filter(_record(f"line {n}"))
    assert len(repeat._throttles) == 4


def test_an_outage_logs_one_queued_line_not_one_per_task(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="genperf.monitor.writer")
    path = tmp_path / "down.db"
    url = f"sqlite:///{path}"
    store = SqlStore(url, engine_kwargs={"connect_args": {"timeout": 0.01}})
    monitor = PerformanceMonitor(
        Settings(database_url=url, monitoring_interval_seconds=3600, sample_flush_seconds=3600),
        collectors=[FakeCollector({"cpu_percent": 1.0})],
        store=store,
    )
    monitor.start()
    locker = sqlite3.connect(path, timeout=0.01, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(40):
            monitor.start_task_monitoring(f"q{i}", "m", "720p", 4)
            monitor.complete_task_monitoring(f"q{i}")
        queued = [r for r in caplog.records if "queued until the store is back" in r.getMessage()]
        assert len(queued) == 1
        assert monitor.self_stats()["tasks_pending"] == 40
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        monitor.close()
        store.close()
