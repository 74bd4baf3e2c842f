"""The spec's read endpoints over a real SQLite store: status, metrics, analysis,
recommendations, benchmarks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_support import P

from genperf.analysis import SPEC_KEYS
from genperf.records import TaskStatus, utc_now
from genperf.testing import make_task


@pytest.fixture
def history(store):
    """30 tasks over the last 30 hours (newest first by index): 3 failed, 5 of another model."""
    now = utc_now()
    records = []
    for i in range(30):
        records.append(
            make_task(
                task_id=f"t{i:02d}",
                started_at=now - timedelta(hours=i, minutes=30),
                model_type="i2v-A14B" if i % 6 == 5 else "t2v-A14B",
                status=TaskStatus.FAILED if i in (1, 2, 3) else TaskStatus.COMPLETED,
                error_category="out_of_memory_gpu" if i in (1, 2, 3) else None,
                generation_time_seconds=200.0 + i,
            )
        )
    for r in records:
        store.save_task(r)
    return records


def test_status_reports_the_sample_each_gpu_and_the_monitor(client):
    body = client.get(f"{P}/status").json()
    system = body["system"]
    assert system["cpu_percent"] == 12.5
    assert system["ram_total_bytes"] == 16000 * 2**20
    assert [g["index"] for g in system["gpus"]] == [0, 1]
    assert system["gpus"][0]["name"] == "NVIDIA H200"
    assert system["gpus"][0]["memory_percent"] == pytest.approx(100 * 20_000 / 143_771)
    assert system["gpus"][1]["utilization_percent"] is None  # unknown stays null, never 0
    assert body["monitoring"]["node"] == "api-node"
    assert body["monitoring"]["running"] is True
    assert body["monitor"]["samples_taken"] >= 1
    assert body["active_tasks"] == []


def test_metrics_are_paginated_newest_first(client, history):
    page = client.get(f"{P}/metrics", params={"limit": 10}).json()
    assert page["total"] == 24  # started within the last 24 hours
    assert [m["task_id"] for m in page["metrics"]] == [f"t{i:02d}" for i in range(10)]
    assert page["next_offset"] == 10
    last = client.get(f"{P}/metrics", params={"limit": 10, "offset": 20}).json()
    assert [m["task_id"] for m in last["metrics"]] == [f"t{i:02d}" for i in range(20, 24)]
    assert last["next_offset"] is None


def test_metrics_pages_by_cursor_as_by_offset(client, history):
    """A cursor (the last run of a page) gives the same pages as offsets, by an index seek."""
    by_offset, offset = [], 0
    while offset is not None:
        page = client.get(f"{P}/metrics", params={"limit": 7, "offset": offset}).json()
        by_offset.append([m["run_id"] for m in page["metrics"]])
        offset = page["next_offset"]
    by_cursor, cursor = [], None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"{P}/metrics", params=params).json()
        by_cursor.append([m["run_id"] for m in page["metrics"]])
        assert page["total"] == 24
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert by_cursor == by_offset and len(by_offset) == 4
    bad = client.get(f"{P}/metrics", params={"cursor": "no-such-run"})
    assert bad.status_code == 404
    assert bad.json()["error"] == {
        "code": "unknown_cursor",
        "message": "cursor 'no-such-run': no stored task run has this id",
        "field": "cursor",
    }


def test_metrics_filters(client, history):
    only = client.get(
        f"{P}/metrics",
        params={"time_window_hours": 48, "model_type": "i2v-A14B", "success_only": "true"},
    ).json()
    assert {m["model_type"] for m in only["metrics"]} == {"i2v-A14B"}
    assert only["total"] == 5
    ok = client.get(f"{P}/metrics", params={"success_only": True, "limit": 1000}).json()
    assert all(m["success"] for m in ok["metrics"])
    assert ok["total"] == 21


def test_analysis_has_the_spec_block_and_follows_the_window(client, history):
    body = client.get(f"{P}/analysis", params={"time_window_hours": 24}).json()
    assert list(body)[: len(SPEC_KEYS)] == list(SPEC_KEYS)
    assert body["task_count"] == 24
    assert body["success_rate"] == pytest.approx(21 / 24)
    assert body["time_window_hours"] == 24
    wider = client.get(f"{P}/analysis", params={"time_window_hours": 48}).json()
    assert wider["task_count"] == 30


def test_analysis_filters(client, history):
    body = client.get(f"{P}/analysis", params={"model_type": "i2v-A14B"}).json()
    assert body["filters"]["model_type"] == "i2v-A14B"
    assert body["task_count"] == 4


def test_recommendations_are_grouped_by_category(client, history):
    body = client.get(f"{P}/recommendations").json()
    assert body["total"] == len(body["recommendations"])
    grouped = [r for items in body["by_category"].values() for r in items]
    assert sorted(r["id"] for r in grouped) == sorted(r["id"] for r in body["recommendations"])
    for category, items in body["by_category"].items():
        assert all(r["category"] == category for r in items)


def test_benchmarks_show_targets_and_current_values(client, history):
    body = client.get(f"{P}/benchmarks").json()
    assert body["targets"]["generation_time_seconds"] == {"720p": 300.0, "1080p": 900.0}
    assert body["targets"]["vram_usage_percent"] == {
        "optimal": 70.0,
        "acceptable": 85.0,
        "maximum": 90.0,  # performance_thresholds.max_vram_usage_percent
    }
    names = {b["name"]: b for b in body["benchmarks"]}
    assert names["success_rate"]["value"] == pytest.approx(21 / 24)
    assert names["generation_time_720p"]["status"] == "target_met"


def test_reports_are_shared_by_the_analysis_routes(make_app, store):
    from api_support import BASE, LOOPBACK
    from fastapi.testclient import TestClient

    app = make_app(report_cache_seconds=60.0)
    cache = app.state.genperf.reports
    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        c.get(f"{P}/analysis")
        c.get(f"{P}/recommendations")
        c.get(f"{P}/benchmarks")
        assert cache.builds == 1
        c.get(f"{P}/analysis", params={"time_window_hours": 48})
        assert cache.builds == 2
