"""complete_task_monitoring tells the caller whether the record is stored; a stalled write
never makes every completion wait; restart recovery and the writer's newest-wins guard."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import threading

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.monitor.core import _instance_id
from genperf.records import Durability, TaskStatus, utc_now
from genperf.storage import MemoryStore, SqlStore
from genperf.testing import FakeCollector, make_task


def _monitor(tmp_path, store, **settings):
    return PerformanceMonitor(
        Settings(monitoring_interval_seconds=3600, data_dir=tmp_path, **settings),
        collectors=[FakeCollector({})],
        store=store,
    )


def test_the_returned_record_says_whether_it_is_durable(tmp_path):
    path = tmp_path / "g.db"
    store = SqlStore(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 0.2}})
    m = _monitor(tmp_path, store)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        m.start_task_monitoring("stored", "m", "720p", 1)
        done = m.complete_task_monitoring("stored")
        assert done.durable and done.durability is Durability.DURABLE
        assert done == store.get_task("stored")  # durability is not part of the record

        m.start_task_monitoring("queued", "m", "720p", 1)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        queued = m.complete_task_monitoring("queued")
        assert not queued.durable and queued.durability is Durability.QUEUED
        assert queued.status is TaskStatus.COMPLETED
        assert m.finished_task("queued").durability is Durability.QUEUED
        other.execute("ROLLBACK")
        m.flush()
        assert m.finished_task("queued").durable
        assert store.get_task("queued").status is TaskStatus.COMPLETED
    finally:
        other.close()
        m.close()
        store.close()


def test_a_record_the_store_refuses_says_so(tmp_path):
    store = MemoryStore()
    m = _monitor(tmp_path, store)
    m.start_task_monitoring("doomed", "m", "720p", 1)
    store.close()
    assert m.complete_task_monitoring("doomed").durability is Durability.REFUSED
    m.close()


class StalledStore(MemoryStore):
    """A store whose first completed write stalls (a database that never answers) until the
    test opens the gate."""

    def __init__(self):
        super().__init__()
        self.stalled = threading.Event()
        self.gate = threading.Event()

    def save_task(self, record):
        if record.finished and not self.stalled.is_set():
            self.stalled.set()
            self.gate.wait(30)
        super().save_task(record)


def test_a_stalled_write_queues_the_next_completion_instead_of_holding_it(tmp_path):
    store = StalledStore()
    m = _monitor(tmp_path, store)
    m.start_task_monitoring("first", "m", "720p", 1)
    m.start_task_monitoring("second", "m", "720p", 1)
    first = threading.Thread(target=m.complete_task_monitoring, args=("first",))
    first.start()
    assert store.stalled.wait(5)
    try:
        # Bounded by the writer's lock wait (2 s), not by the stalled write (30 s).
        second = m.complete_task_monitoring("second")
        assert second.durability is Durability.QUEUED
        assert store.get_task("second") is None
    finally:
        store.gate.set()
        first.join()
    m.flush()
    assert store.get_task("second").status is TaskStatus.COMPLETED
    m.close()


def _dead_instance() -> str:
    """The instance id of a process that has exited."""
    code = "from genperf.monitor.core import _instance_id; print(_instance_id('n'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_restart_marks_a_dead_process_running_task_interrupted_and_leaves_live_ones(tmp_path):
    store = MemoryStore()
    dead = make_task(
        task_id="dead",
        node="n",
        status=TaskStatus.RUNNING,
        completed_at=None,
        current_phase="denoise",
        monitor_instance=_dead_instance(),
    )
    alive = make_task(
        task_id="alive",
        node="n",
        status=TaskStatus.RUNNING,
        completed_at=None,
        monitor_instance=_instance_id("n"),  # this very process: still running
    )
    other_node = make_task(
        task_id="elsewhere", node="other", status=TaskStatus.RUNNING, completed_at=None
    )
    # Posted to this node's API by a service on gpu-3: its recording process is gone too.
    ingested = dataclasses.replace(dead, task_id="ingested", run_id="ingested-run", node="gpu-3")
    # This node's task, posted to an API elsewhere: only that process's node can tell
    # whether it lives (a pid here means nothing), so it is left to that API.
    posted = dataclasses.replace(
        dead, task_id="posted", run_id="posted-run", monitor_instance="api-host:1:1.0"
    )
    for record in (dead, alive, other_node, ingested, posted):
        store.save_task(record)
    m = _monitor(tmp_path, store, node_name="n")
    m.start()
    try:
        found = store.get_task("dead")
        assert found.status is TaskStatus.INTERRUPTED
        assert found.failed_phase == "denoise" and found.error_category == "interrupted"
        assert found.completed_at is not None and found.completed_at <= utc_now()
        assert store.get_task("alive").status is TaskStatus.RUNNING
        assert store.get_task("elsewhere").status is TaskStatus.RUNNING
        assert store.get_task("ingested").status is TaskStatus.INTERRUPTED
        assert store.get_task("posted").status is TaskStatus.RUNNING
        assert m.recover_interrupted() == 0  # once per start
    finally:
        m.close()


class WritesDuring(MemoryStore):
    """Calls ``hook`` (once) in the middle of writing the record of task ``during``."""

    def __init__(self, during, hook):
        super().__init__()
        self.during, self.hook, self.log = during, hook, []

    def save_task(self, record):
        if record.task_id == self.during and self.hook is not None:
            hook, self.hook = self.hook, None
            hook()
        self.log.append((record.task_id, record.status))
        super().save_task(record)


def test_a_superseded_queued_running_record_is_never_written_over_the_completed_one(tmp_path):
    """The writer's round takes its list of queued records, then writes them one by one. The
    task completes (durably) between the two: its stale "running" record must be skipped."""
    m = None

    def complete_x_meanwhile():
        # On the writer's own thread, which holds the (re-entrant) write lock: the completed
        # record lands now, deterministically between the round's list and its write of x.
        assert m.complete_task_monitoring("x").durable

    store = WritesDuring("a", complete_x_meanwhile)
    m = _monitor(tmp_path, store)
    m.start_task_monitoring("a", "m", "720p", 1)
    m.start_task_monitoring("x", "m", "720p", 1)
    m.flush()
    m.flush()
    assert store.get_task("x").status is TaskStatus.COMPLETED
    x_writes = [status for task_id, status in store.log if task_id == "x"]
    assert x_writes[-1] is TaskStatus.COMPLETED
    m.close()


def test_a_store_that_cannot_be_opened_costs_one_caller_not_every_caller():
    """Opening a down or stalled database costs the connect timeout: after a failure only the
    writer's next round tries again; callers meanwhile queue at once."""
    from genperf.errors import StoreUnavailableError
    from genperf.monitor.writer import StoreWriter

    attempts = []

    def open_store():
        attempts.append(1)
        raise StoreUnavailableError("connection timeout expired")

    writer = StoreWriter(open_store, flush_seconds=3600)
    for i in range(3):
        record = make_task(task_id=f"t{i}", run_id=f"r{i}")
        assert writer.save_task(record) is Durability.QUEUED
    assert len(attempts) == 1
    writer.flush()  # the writer's round tries again
    assert len(attempts) == 2
    assert writer.pending_tasks == 3


class TasksTableDamaged(MemoryStore):
    """Samples are written; finished task records are not (a damaged tasks table)."""

    def save_task(self, record):
        from genperf.errors import StoreUnavailableError

        if record.finished:
            raise StoreUnavailableError("database disk image is malformed")
        super().save_task(record)


def test_not_writable_while_finished_records_wait_even_if_samples_are_written(tmp_path):
    m = _monitor(tmp_path, TasksTableDamaged())
    m.start_task_monitoring("t", "m", "720p", 1)
    assert m.complete_task_monitoring("t").durability is Durability.QUEUED
    m._sampler.sample_once()
    m.flush()  # the samples land, the record still waits
    assert m.write_error() is not None
    m.close()
