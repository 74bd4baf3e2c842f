"""POST /export: the spec's JSON shape, CSV with every column, and streaming in bounded memory."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta

import pytest
from api_support import P

from genperf.exporters import csv as csv_exporter
from genperf.exporters import json as json_exporter
from genperf.records import TASK_FIELDS, TaskRecord, utc_now
from genperf.testing import make_task


@pytest.fixture
def stored(store):
    now = utc_now()
    records = [
        make_task(
            task_id=f"e{i}",
            started_at=now - timedelta(hours=i + 0.5),
            error_message='=HYPERLINK("http://evil")' if i == 2 else None,
        )
        for i in range(5)
    ]
    for r in records:
        store.save_task(r)
    return records


def test_json_export_has_the_spec_shape(client, stored):
    r = client.post(f"{P}/export", params={"time_window_hours": 24, "format": "json"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert 'filename="genperf-export-' in r.headers["content-disposition"]
    doc = r.json()
    assert list(doc) == [
        "export_timestamp",
        "time_window_hours",
        "metrics_count",
        "performance_analysis",
        "metrics",
    ]
    assert doc["metrics_count"] == len(doc["metrics"]) == 5
    assert doc["time_window_hours"] == 24
    analysis = doc["performance_analysis"]
    for key in (
        "average_generation_time",
        "success_rate",
        "resource_efficiency",
        "bottleneck_analysis",
        "optimization_recommendations",
        "performance_trends",
    ):
        assert key in analysis
    assert set(doc["metrics"][0]) == {*TASK_FIELDS, "success"}
    assert [m["task_id"] for m in doc["metrics"]] == ["e4", "e3", "e2", "e1", "e0"]  # oldest first


def test_the_window_is_respected(client, stored):
    doc = client.post(f"{P}/export", params={"time_window_hours": 2}).json()
    assert doc["metrics_count"] == 2


def test_csv_export_has_a_header_and_one_row_per_task(client, stored):
    r = client.post(f"{P}/export", params={"format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 5
    assert list(rows[0]) == list(csv_exporter.COLUMNS)
    first = rows[0]
    assert first["status"] == "completed" and first["success"] == "true"
    assert float(first["generation_time_seconds"]) == 240.0
    assert json.loads(first["optimizations_applied"]) == ["dtype:bf16"]
    assert first["steps"] == "20"
    assert first["failed_phase"] == ""  # unknown is empty, never 0
    formula = next(row for row in rows if row["task_id"] == "e2")
    assert formula["error_message"].startswith("'=")  # not a spreadsheet formula


def test_no_secret_reaches_an_export(client, stored, settings):
    text = client.post(f"{P}/export").text + client.post(f"{P}/export?format=csv").text
    assert "database_url" not in text
    assert "sqlite:///" not in text


def _lazy_records(count: int) -> Iterator[TaskRecord]:
    base = make_task()
    for i in range(count):
        yield dataclasses.replace(base, run_id=f"run{i}", task_id=f"t{i}")


def _peak_bytes(render, count: int) -> int:
    tracemalloc.start()
    try:
        for _ in render(_lazy_records(count)):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "render",
    [
        csv_exporter.render,
        lambda records: json_exporter.render(
            export_timestamp=utc_now(),
            time_window_hours=24,
            metrics_count=0,
            performance_analysis={},
            metrics=records,
        ),
    ],
    ids=["csv", "json"],
)
def test_exporters_stream_in_bounded_memory(render):
    small = _peak_bytes(render, 500)
    large = _peak_bytes(render, 5_000)
    assert large < small * 1.5, (small, large)  # 10x the tasks, not 10x the memory


def test_the_export_route_reads_the_store_in_batches(client, stored, store, monkeypatch):
    calls = []
    original = type(store).iter_tasks

    def spy(self, query, batch_size=1000):
        calls.append(batch_size)
        return original(self, query, batch_size)

    monkeypatch.setattr(type(store), "query_tasks", _forbidden)
    monkeypatch.setattr(type(store), "iter_tasks", spy)
    for fmt in ("json", "csv"):
        assert client.post(f"{P}/export", params={"format": fmt}).status_code == 200
    assert calls.count(1000) == 2  # one stream per export (the analysis reads its own)


def _forbidden(*args, **kwargs):
    raise AssertionError("exports must stream with iter_tasks, not load a list")


def test_json_render_joins_to_one_document():
    records = list(_lazy_records(450))
    text = "".join(
        json_exporter.render(
            export_timestamp=utc_now(),
            time_window_hours=1.5,
            metrics_count=450,
            performance_analysis={"success_rate": float("nan")},
            metrics=records,
            chunk_records=100,
        )
    )
    doc = json.loads(text)
    assert len(doc["metrics"]) == 450
    assert doc["performance_analysis"]["success_rate"] is None
    empty = json.loads(
        "".join(
            json_exporter.render(
                export_timestamp=utc_now(),
                time_window_hours=1,
                metrics_count=0,
                performance_analysis={},
                metrics=[],
            )
        )
    )
    assert empty["metrics"] == []
