"""POST /export for operators' tools: ``influx`` (the window's tasks, then its samples, as
InfluxDB line protocol) and ``ndjson`` (an Elasticsearch bulk body), streamed from the store."""

from __future__ import annotations

import json
from datetime import timedelta

from api_support import P

from genperf.exporters import elastic, influx
from genperf.records import SystemSample, utc_now
from genperf.storage import TaskQuery
from genperf.testing import make_task


def test_influx_export_is_the_window_in_line_protocol(client, store):
    now = utc_now()
    tasks = [
        make_task(task_id=f"x{i}", started_at=now - timedelta(hours=i + 0.5)) for i in range(3)
    ]
    old = make_task(task_id="too-old", started_at=now - timedelta(hours=30))
    for record in [*tasks, old]:
        store.save_task(record)
    samples = [
        SystemSample(taken_at=now - timedelta(hours=h), node="api-node", cpu_percent=float(h))
        for h in (30, 2, 1)
    ]
    store.save_samples(samples)
    r = client.post(f"{P}/export", params={"format": "influx", "time_window_hours": 24})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-disposition"].endswith('.influx"')
    stored = {t.run_id: t for t in store.query_tasks(TaskQuery())}
    expected = "".join(
        influx.render(
            sorted((stored[t.run_id] for t in tasks), key=lambda t: t.started_at),
            [s for s in store.query_samples() if s.cpu_percent != 30.0],
        )
    )
    assert r.text == expected
    assert "too-old" not in r.text
    assert r.text.count("genperf_sample,") == 2


def test_ndjson_export_is_an_elasticsearch_bulk_body(client, store):
    now = utc_now()
    records = [
        make_task(task_id=f"n{i}", started_at=now - timedelta(hours=i + 0.5)) for i in (1, 0)
    ]
    for record in records:
        store.save_task(record)
    r = client.post(f"{P}/export", params={"format": "ndjson"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    stored = [store.get_run(record.run_id) for record in records]
    assert r.text == "".join(elastic.render_ndjson(stored, "genperf-tasks"))
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [line["index"]["_id"] for line in lines[::2]] == [rec.run_id for rec in records]
    assert [doc["task_id"] for doc in lines[1::2]] == ["n1", "n0"]  # oldest first
