"""What a completion's answer promises: 200 only when the record is stored, 202 (durable:
false) while it is only queued in memory, an error when the database refuses it; readiness
says whether writes succeed. Against a real SQLite file, really locked by another connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import BASE, LOOPBACK, P, readings
from fastapi.testclient import TestClient

from genperf.api import ApiSettings, create_app
from genperf.collectors import ProcessPeakMemory, TorchMemoryProbe
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.storage import SqlStore
from genperf.testing import FakeCollector, FakeTorchCuda

START = {"task_id": "job-1", "model_type": "t2v-A14B", "resolution": "1280x720", "steps": 20}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "genperf.db"


@pytest.fixture
def quick_store(db_path: Path) -> Iterator[SqlStore]:
    # A short busy timeout: a locked database fails a write in 0.2 s, not 15.
    opened = SqlStore(f"sqlite:///{db_path}", engine_kwargs={"connect_args": {"timeout": 0.2}})
    yield opened
    opened.close()


@pytest.fixture
def monitor(settings: Settings, quick_store: SqlStore) -> Iterator[PerformanceMonitor]:
    m = PerformanceMonitor(
        settings,
        collectors=[FakeCollector(readings, name="scripted")],
        store=quick_store,
        torch_probe=TorchMemoryProbe(FakeTorchCuda(available=False)),
        process_memory=ProcessPeakMemory(),
    )
    yield m
    m.close()


@pytest.fixture
def client(settings: Settings, monitor: PerformanceMonitor) -> Iterator[TestClient]:
    app = create_app(
        settings, monitor=monitor, api_settings=ApiSettings(report_cache_seconds=0), environ={}
    )
    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        yield c


@pytest.fixture
def write_lock(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection, able to hold SQLite's write lock."""
    other = sqlite3.connect(db_path, isolation_level=None)
    yield other
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


def test_a_completion_queued_behind_a_locked_database_is_202_not_durable_then_200(
    client, monitor, write_lock
):
    assert client.post(f"{P}/tasks", json=START).status_code == 201
    assert client.get("/readyz").status_code == 200
    write_lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock

    r = client.post(f"{P}/tasks/job-1/complete")
    assert r.status_code == 202, r.text
    assert r.json()["durable"] is False and r.json()["status"] == "completed"
    assert int(r.headers["retry-after"]) > 0
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"
    # Asking again tells the same truth: still queued.
    again = client.post(f"{P}/tasks/job-1/complete")
    assert again.status_code == 202 and again.json()["durable"] is False

    write_lock.execute("ROLLBACK")
    monitor.flush()  # the writer's next round
    stored = client.post(f"{P}/tasks/job-1/complete")
    assert stored.status_code == 200 and stored.json()["durable"] is True
    assert stored.json()["run_id"] == r.json()["run_id"]
    assert client.get("/readyz").status_code == 200


def test_a_record_the_database_refuses_is_an_error_never_200(client, quick_store):
    assert client.post(f"{P}/tasks", json=START).status_code == 201
    quick_store.close()  # a closed store refuses every write for good
    r = client.post(f"{P}/tasks/job-1/complete")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "store_refused"
    assert "job-1" in r.json()["error"]["message"]


def test_readiness_follows_the_last_write_not_only_a_ping(client, monitor, write_lock):
    """A locked database still answers SELECT 1: readiness must not say ok while writes fail."""
    monitor._sampler.sample_once()  # the sampler's tick: a sample for the writer
    write_lock.execute("BEGIN IMMEDIATE")
    monitor.flush()  # the sample batch cannot be written
    assert client.get("/readyz").status_code == 503
    write_lock.execute("ROLLBACK")
    monitor._sampler.sample_once()
    monitor.flush()
    assert client.get("/readyz").status_code == 200
