"""monitor.predict and POST /api/v1/performance/predict, over a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from history_support import history, record

from genperf.api import create_app
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.prediction import Workload
from genperf.storage import SqlStore

P = "/api/v1/performance/predict"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'genperf.db'}")
    yield s
    s.close()


@pytest.fixture
def monitor(tmp_path: Path, store: SqlStore) -> Iterator[PerformanceMonitor]:
    settings = Settings(data_dir=tmp_path, monitoring_interval_seconds=3600.0, node_name="n1")
    m = PerformanceMonitor(settings, collectors=[], store=store)
    yield m
    m.close()


def test_monitor_predict_learns_from_the_store_and_refits_when_it_grows(monitor, store):
    p = monitor.predict("tiny-wan-t2v", "128x128", 9, 4)
    assert not p.answerable
    for r in history(repeats=1, steps=(2, 4)):
        store.save_task(r)
    first = monitor.predict("tiny-wan-t2v", "128x128", 9, 4)
    assert first.answerable
    assert monitor.predict("tiny-wan-t2v", "128x128", 9, 4) == first  # kept, not refitted
    # A run far slower than the law at that configuration moves the answer: refitted.
    slow = record(Workload(128, 128, 9, 4), generation_time_seconds=50.0)
    for _ in range(5):
        store.save_task(_fresh(slow))
    again = monitor.predict("tiny-wan-t2v", "128x128", 9, 4)
    assert again.tasks == first.tasks + 5
    assert again.generation_time_seconds.value > first.generation_time_seconds.value


def _fresh(r):
    import dataclasses
    import uuid

    return dataclasses.replace(r, run_id=uuid.uuid4().hex)


def test_a_node_without_history_is_answered_from_the_fleet_and_says_so(monitor, store):
    for r in history(repeats=1, steps=(2, 4)):
        store.save_task(r)
    p = monitor.predict("tiny-wan-t2v", "128x128", 9, 4, node="other-node")
    assert p.answerable
    assert "no completed run of tiny-wan-t2v on node other-node" in p.reasons[0]
    assert monitor.predict("tiny-wan-t2v", "128x128", 9, 4, node="test-node").reasons == ()


def test_the_api_predicts_and_says_when_it_cannot(monitor, store):
    for r in history(repeats=1, steps=(2, 4)):
        store.save_task(r)
    app = create_app(monitor.settings, monitor=monitor, store=store, environ={})
    with TestClient(app, base_url="http://localhost", client=("127.0.0.1", 5000)) as client:
        body = {"model_type": "tiny-wan-t2v", "resolution": "128x128", "frames": 9, "steps": 4}
        r = client.post(P, json=body)
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["answerable"] is True
        t = data["generation_time_seconds"]
        assert 0 < t["low"] <= t["value"] <= t["high"]
        assert set(data["phases"]) == {"text_encode", "denoise", "vae_decode"}
        assert data["peak_ram_mb"]["value"] > 0 and data["interval_level"] == 0.9

        thin = client.post(P, json={**body, "model_type": "t2v-A14B", "resolution": "720p"})
        assert thin.status_code == 200
        assert thin.json()["answerable"] is False
        assert thin.json()["generation_time_seconds"] is None
        assert thin.json()["suggested_runs"][0]["resolution"] == "1280x720"

        for bad, field in (
            ({"resolution": "1280 by 720"}, "resolution"),
            ({"frames": 0}, "frames"),
            ({"optimizations": ["x"] * 17}, "optimizations"),
            ({"extra": 1}, "extra"),
        ):
            r = client.post(P, json={**body, **bad})
            assert r.status_code == 422, bad
            assert field in r.text


def test_the_api_shows_each_optimisations_impact(monitor, store):
    import dataclasses

    from genperf.records import utc_now

    now = utc_now()
    base = history(repeats=1, sizes=((128, 128),), frames=(9,), steps=(2, 4, 8))
    tiled = history(repeats=1, sizes=((128, 128),), frames=(9,), steps=(2, 4, 8), tiling=(True,))
    for r in base + tiled:
        store.save_task(dataclasses.replace(r, started_at=now))
    app = create_app(monitor.settings, monitor=monitor, store=store, environ={})
    with TestClient(app, base_url="http://localhost", client=("127.0.0.1", 5000)) as client:
        r = client.get("/api/v1/performance/impact", params={"time_window_hours": 1})
        assert r.status_code == 200, r.text
        (row,) = [i for i in r.json()["optimizations"] if i["token"] == "vae_tiling"]
        assert (row["count_with"], row["count_without"]) == (3, 3)
        assert row["peak_metric"] == "peak_process_rss_mb"
        assert row["peak_change_percent"] < 0
        assert row["summary"].startswith("vae_tiling: peak −")
        assert r.json()["tasks"] == 6


def test_the_api_forecasts_and_counts_the_queue(monitor, store):
    import dataclasses
    from datetime import timedelta

    from genperf.records import TaskStatus, utc_now
    from genperf.testing import make_task

    now = utc_now()
    for i in range(60):
        at = now - timedelta(hours=167) + timedelta(hours=i * 2.7)
        store.save_task(make_task(started_at=at, generation_time_seconds=200.0 + i, node="n1"))
    store.save_task(
        dataclasses.replace(make_task(started_at=now), status=TaskStatus.RUNNING, node="n2")
    )
    app = create_app(monitor.settings, monitor=monitor, store=store, environ={})
    with TestClient(app, base_url="http://localhost", client=("127.0.0.1", 5000)) as client:
        r = client.get("/api/v1/performance/forecast")
        assert r.status_code == 200, r.text
        (c720,) = r.json()["classes"]
        assert c720["resolution_class"] == "720p" and c720["tasks"] == 60
        assert c720["trend_seconds_per_day"] > 0
        assert c720["target"]["text"] != "already above"
        cap = r.json()["capacity"]
        assert cap["nodes"] == 1 and cap["queue"] == 1
        assert cap["tasks_per_hour"] == pytest.approx(3600 / 229.5, rel=0.01)
