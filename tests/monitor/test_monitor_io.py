"""The monitor against real stores: batching, retention, an unreachable server, defaults."""

from __future__ import annotations

import threading
from datetime import timedelta

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.records import SystemSample, TaskStatus, utc_now
from genperf.storage import MemoryStore
from genperf.testing import FakeCollector


def test_samples_are_written_in_batches_off_the_hot_path(tmp_path):
    store = MemoryStore()
    m = PerformanceMonitor(
        Settings(monitoring_interval_seconds=3600, data_dir=tmp_path),
        collectors=[FakeCollector({"cpu_percent": 3.0})],
        store=store,
    )
    for _ in range(5):
        m._sampler.sample_once()
    assert store.query_samples() == []  # buffered, not written on the sampler's path
    m.flush()
    written = store.query_samples()
    assert len(written) == 5 and all(s.cpu_percent == 3.0 for s in written)
    m.close()


def test_old_samples_are_pruned_by_retention(tmp_path):
    store = MemoryStore()
    now = utc_now()
    store.save_samples(
        [SystemSample(taken_at=now - timedelta(hours=h), node="n") for h in (1, 30, 50)]
    )
    m = PerformanceMonitor(
        Settings(monitoring_interval_seconds=3600, sample_retention_hours=24, data_dir=tmp_path),
        collectors=[FakeCollector({})],
        store=store,
    )
    m.flush()
    assert [s.taken_at for s in store.query_samples()] == [now - timedelta(hours=1)]
    m.close()


def test_an_unreachable_database_never_reaches_the_caller(tmp_path):
    url = "postgresql://genperf:secret@127.0.0.1:1/none"  # nothing listens on port 1
    m = PerformanceMonitor(
        Settings(database_url=url, monitoring_interval_seconds=3600, data_dir=tmp_path),
        collectors=[FakeCollector({})],
    )
    with m.track("t", model_type="m", resolution="720p", steps=1) as task:
        pass
    assert task.record.status is TaskStatus.COMPLETED
    stats = m.self_stats()
    assert stats["tasks_pending"] == 1 and stats["store_errors"] >= 1
    assert m.store is None
    m.close()


def test_no_argument_monitor_uses_config_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GENPERF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GENPERF_MONITORING_INTERVAL_SECONDS", "0.5")
    m = PerformanceMonitor()
    try:
        assert m.settings.monitoring_interval_seconds == 0.5
        m.start_task_monitoring("x", "m", "720p", 1)
        m.complete_task_monitoring("x")
        assert m.store.get_task("x").status is TaskStatus.COMPLETED
        assert (tmp_path / "genperf.db").exists()
    finally:
        m.close()


def test_a_failing_collector_never_reaches_the_caller(tmp_path):
    m = PerformanceMonitor(
        Settings(monitoring_interval_seconds=0.01, data_dir=tmp_path),
        collectors=[FakeCollector(error=OSError("no /proc"))],
        store=MemoryStore(),
    )
    with m:
        with m.track("t", model_type="m", resolution="720p", steps=1):
            pass
    assert m.self_stats()["collector_errors"] >= 1


def test_a_record_the_store_refuses_for_good_is_dropped_counted_and_logged(tmp_path, caplog):
    store = MemoryStore()
    m = PerformanceMonitor(
        Settings(monitoring_interval_seconds=3600, data_dir=tmp_path),
        collectors=[FakeCollector({})],
        store=store,
    )
    m.start_task_monitoring("doomed", "m", "720p", 1)
    m.flush()  # the start row is written
    store.close()  # a closed store refuses every write: not an outage to wait out
    record = m.complete_task_monitoring("doomed")
    assert record.status is TaskStatus.COMPLETED
    stats = m.self_stats()
    assert stats["tasks_dropped"] == 1 and stats["tasks_pending"] == 0
    assert "task doomed dropped" in caplog.text
    m.close()


class SlowRunningRowStore(MemoryStore):
    """A store whose first write of a "running" row blocks until the test opens the gate."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def save_task(self, record):
        if record.status is TaskStatus.RUNNING and not self.entered.is_set():
            self.entered.set()
            self.gate.wait(5)
        super().save_task(record)


def _start_row_being_written(store, tmp_path, task_id):
    """A monitor on ``store`` with task ``task_id`` started and its start row in mid-write on
    another thread (the flusher, returned to be joined)."""
    m = PerformanceMonitor(
        Settings(monitoring_interval_seconds=3600, data_dir=tmp_path),
        collectors=[FakeCollector({})],
        store=store,
    )
    m.start_task_monitoring(task_id, "m", "720p", 1)
    flusher = threading.Thread(target=m.flush)
    flusher.start()
    assert store.entered.wait(5)
    return m, flusher


def test_a_queued_start_row_never_lands_after_the_completed_record(tmp_path):
    """The race: the writer thread has picked up a task's queued "running" row when the task
    completes. The completed record must win, whatever the interleaving."""
    store = SlowRunningRowStore()
    m, flusher = _start_row_being_written(store, tmp_path, "race")
    completer = threading.Thread(target=m.complete_task_monitoring, args=("race",))
    completer.start()
    completer.join(0.5)  # completes now, or waits for the write in progress
    store.gate.set()
    flusher.join()
    completer.join()
    m.flush()
    assert store.get_task("race").status is TaskStatus.COMPLETED
    m.close()


def test_a_newer_running_row_queued_during_a_write_is_not_forgotten(tmp_path):
    """The phase entered while the start row is being written must still reach the store:
    it is what a restart reads to say which phase a killed task was in."""
    store = SlowRunningRowStore()
    m, flusher = _start_row_being_written(store, tmp_path, "phased")
    with m.phase("phased", "denoise"):
        store.gate.set()
        flusher.join()
        m.flush()
        assert store.get_task("phased").current_phase == "denoise"
    m.complete_task_monitoring("phased")
    m.close()
