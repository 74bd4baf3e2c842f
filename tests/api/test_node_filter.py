"""Every read endpoint takes ``node`` (repeatable): the fleet's tasks, one node at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_support import BASE, LOOPBACK, P
from fastapi.testclient import TestClient

from genperf.records import TaskStatus, utc_now
from genperf.testing import make_task

NODES = ("gpu-1", "gpu-2", "gpu-3")


@pytest.fixture
def fleet(store):
    """Nine tasks in the last hours: three per node; gpu-3's are the only failures."""
    now = utc_now()
    for i in range(9):
        node = NODES[i % 3]
        failed = node == "gpu-3"
        store.save_task(
            make_task(
                task_id=f"t{i}",
                node=node,
                started_at=now - timedelta(hours=1, minutes=i),
                status=TaskStatus.FAILED if failed else TaskStatus.COMPLETED,
                error_category="out_of_memory_gpu" if failed else None,
            )
        )


def test_metrics_keep_the_nodes_asked_for(client, fleet):
    page = client.get(f"{P}/metrics", params=[("node", "gpu-1"), ("node", "gpu-3")]).json()
    assert page["total"] == 6
    assert {m["node"] for m in page["metrics"]} == {"gpu-1", "gpu-3"}
    assert page["nodes"] == ["gpu-1", "gpu-3"]
    everything = client.get(f"{P}/metrics").json()
    assert everything["total"] == 9
    assert everything["nodes"] == []


def test_analysis_recommendations_and_benchmarks_follow_the_node_filter(client, fleet):
    healthy = client.get(f"{P}/analysis", params={"node": "gpu-1"}).json()
    assert healthy["task_count"] == 3
    assert healthy["success_rate"] == 1.0
    assert healthy["filters"]["nodes"] == ["gpu-1"]
    failing = client.get(f"{P}/analysis", params={"node": "gpu-3"}).json()
    assert failing["success_rate"] == 0.0
    both = client.get(f"{P}/analysis", params=[("node", "gpu-3"), ("node", "gpu-1")]).json()
    assert both["task_count"] == 6

    def benchmark_status(node):
        body = client.get(f"{P}/benchmarks", params={"node": node}).json()
        return {b["name"]: b["status"] for b in body["benchmarks"]}

    assert benchmark_status("gpu-1")["success_rate"] != benchmark_status("gpu-3")["success_rate"]
    recs = client.get(f"{P}/recommendations", params={"node": "gpu-1"}).json()
    failing_recs = client.get(f"{P}/recommendations", params={"node": "gpu-3"}).json()
    assert recs["recommendations"] != failing_recs["recommendations"]


def test_each_node_filter_is_its_own_cached_report(make_app, fleet):
    with TestClient(make_app(report_cache_seconds=60.0), base_url=BASE, client=LOOPBACK) as c:
        assert c.get(f"{P}/analysis").json()["task_count"] == 9
        assert c.get(f"{P}/analysis", params={"node": "gpu-2"}).json()["task_count"] == 3
        pair = [("node", "gpu-2"), ("node", "gpu-1")]
        assert c.get(f"{P}/analysis", params=pair).json()["task_count"] == 6
        assert c.get(f"{P}/analysis").json()["task_count"] == 9


def test_export_keeps_the_nodes_asked_for(client, fleet):
    body = client.post(f"{P}/export", params={"node": "gpu-2"}).json()
    assert body["metrics_count"] == 3
    assert {m["node"] for m in body["metrics"]} == {"gpu-2"}


def test_status_keeps_the_running_tasks_of_the_nodes_asked_for(client, monitor):
    monitor.start_task_monitoring("live-1", "t2v-A14B", "1280x720", 4)
    mine = client.get(f"{P}/status", params={"node": monitor.node}).json()
    assert [t["task_id"] for t in mine["active_tasks"]] == ["live-1"]
    other = client.get(f"{P}/status", params={"node": "gpu-9"}).json()
    assert other["active_tasks"] == []
    monitor.complete_task_monitoring("live-1", success=True)


@pytest.mark.parametrize("bad", ["", "a\nb", "x" * 256])
def test_a_bad_node_name_is_refused_naming_the_field(client, bad):
    response = client.get(f"{P}/metrics", params={"node": bad})
    assert response.status_code == 422
    assert "node" in response.text


def test_too_many_nodes_are_refused(client):
    response = client.get(f"{P}/analysis", params=[("node", f"n{i}") for i in range(257)])
    assert response.status_code == 422
    assert "node" in response.text
