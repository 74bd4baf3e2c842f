"""Durability against real failures: a real kill -9 of a real process, a really locked database."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.records import TaskStatus
from genperf.storage import SqlStore
from genperf.storage.base import TaskQuery
from genperf.testing import FakeCollector, wait_until

CHILD = textwrap.dedent(
    """
    import sys, time
    from genperf.config import Settings
    from genperf.monitor import PerformanceMonitor

    settings = Settings(database_url=sys.argv[1], monitoring_interval_seconds=0.05,
                        sample_flush_seconds=0.05, node_name="kill-test")
    monitor = PerformanceMonitor(settings)
    n = 0
    while True:
        monitor.start_task_monitoring(f"t{n}", "tiny-wan", "832x480", 4)
        print("started", n, flush=True)
        with monitor.phase(f"t{n}", "denoise"):
            time.sleep(0.02)
        monitor.complete_task_monitoring(f"t{n}", success=True)
        print("done", n, flush=True)
        n += 1
    """
)


@pytest.mark.slow
def test_kill_9_keeps_every_completed_task_and_marks_the_one_in_flight(tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    child = subprocess.Popen([sys.executable, "-c", CHILD, url], stdout=subprocess.PIPE, text=True)
    done: list[str] = []
    in_flight = None
    assert child.stdout is not None
    try:
        for line in child.stdout:
            event, n = line.split()
            if event == "done":
                done.append(f"t{n}")
            elif len(done) >= 30:
                in_flight = f"t{n}"
                time.sleep(0.005)  # inside the task; its start row is written off the hot path
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    restarted = PerformanceMonitor(
        Settings(database_url=url, node_name="kill-test", monitoring_interval_seconds=3600),
        collectors=[FakeCollector({})],
    )
    restarted.start()
    try:
        store = restarted.store
        assert store is not None
        for task_id in done:
            record = store.get_task(task_id)
            assert record is not None and record.status is TaskStatus.COMPLETED, task_id
            assert record.generation_time_seconds and record.generation_time_seconds > 0
        statuses = {r.task_id: r.status for r in store.query_tasks(TaskQuery())}
        assert TaskStatus.RUNNING not in statuses.values()
        interrupted = [t for t, s in statuses.items() if s is TaskStatus.INTERRUPTED]
        assert len(interrupted) <= 1
        if interrupted:  # the start row of the task in flight had reached the database
            assert interrupted == [in_flight]
            record = store.get_task(in_flight)
            assert record.error_category == "interrupted"
            assert record.failed_phase == "denoise"  # the phase it was in when killed
            assert record.recovery_suggestions
    finally:
        restarted.close()


def test_tasks_of_a_live_process_on_the_same_node_are_not_marked_interrupted(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = Settings(database_url=url, node_name="n", monitoring_interval_seconds=3600)
    first = PerformanceMonitor(settings, collectors=[FakeCollector({})])
    first.start_task_monitoring("long", "m", "720p", 50)
    first.flush()
    second = PerformanceMonitor(settings, collectors=[FakeCollector({})])
    try:
        # same pid here, but a different instance: the owner is alive, so it is left alone
        second.start()
        assert second.store.get_task("long").status is TaskStatus.RUNNING
    finally:
        second.close()
        first.complete_task_monitoring("long")
        first.close()


def test_a_locked_database_never_fails_the_caller_and_nothing_is_lost(tmp_path, caplog):
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    store = SqlStore(url, engine_kwargs={"connect_args": {"timeout": 0.1}})
    monitor = PerformanceMonitor(
        Settings(database_url=url, monitoring_interval_seconds=3600, sample_flush_seconds=0.05),
        collectors=[FakeCollector({"cpu_percent": 1.0})],
        store=store,
    )
    monitor.start()
    locker = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        records = []
        for i in range(5):
            monitor.start_task_monitoring(f"l{i}", "m", "720p", 4)
            records.append(monitor.complete_task_monitoring(f"l{i}"))  # must not raise
        assert all(r.status is TaskStatus.COMPLETED for r in records)
        stats = monitor.self_stats()
        assert stats["tasks_pending"] == 5
        assert stats["store_errors"] >= 5
        assert "queued until the store is back" in caplog.text
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_until(lambda: monitor.self_stats()["tasks_pending"] == 0, what="the queue to drain")
    for i in range(5):
        assert store.get_task(f"l{i}").status is TaskStatus.COMPLETED
    monitor.close()


def test_a_full_queue_drops_the_oldest_and_counts_it(tmp_path, caplog):
    path = tmp_path / "down.db"
    url = f"sqlite:///{path}"
    store = SqlStore(url, engine_kwargs={"connect_args": {"timeout": 0.05}})
    monitor = PerformanceMonitor(
        Settings(
            database_url=url,
            monitoring_interval_seconds=3600,
            pending_task_queue_size=3,
            sample_flush_seconds=3600,
        ),
        collectors=[FakeCollector({})],
        store=store,
    )
    locker = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(5):
            monitor.start_task_monitoring(f"q{i}", "m", "720p", 4)
            monitor.complete_task_monitoring(f"q{i}")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    stats = monitor.self_stats()
    assert stats["tasks_dropped"] == 2
    assert stats["tasks_pending"] == 3
    assert "dropped task q0" in caplog.text
    monitor.flush()
    assert [store.get_task(f"q{i}") is not None for i in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    monitor.close()
