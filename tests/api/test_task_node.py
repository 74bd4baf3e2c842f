"""Tasks posted by services elsewhere say which node and GPU they ran on: stored, listed under
their node, and refused with a 422 naming the field when malformed."""

from __future__ import annotations

import pytest
from api_support import P

START = {"task_id": "far-1", "model_type": "t2v-A14B", "resolution": "832x480", "steps": 4}


def test_a_task_posted_for_another_node_is_stored_under_that_node_and_gpu(client):
    r = client.post(f"{P}/tasks", json={**START, "node": "gpu-node-7", "gpu_index": 3})
    assert r.status_code == 201, r.text
    assert (r.json()["node"], r.json()["gpu_index"]) == ("gpu-node-7", 3)
    assert client.post(f"{P}/tasks/far-1/complete", json={"success": True}).status_code == 200

    page = client.get(f"{P}/metrics", params={"node": "gpu-node-7"}).json()
    assert [(t["task_id"], t["node"], t["gpu_index"]) for t in page["metrics"]] == [
        ("far-1", "gpu-node-7", 3)
    ]
    assert client.get(f"{P}/metrics", params={"node": "api-node"}).json()["total"] == 0


def test_without_a_node_the_task_is_the_servers(client):
    r = client.post(f"{P}/tasks", json=START)
    assert r.status_code == 201, r.text
    assert r.json()["node"] == "api-node"
    assert r.json()["gpu_index"] is None  # the server's GPU is not known here


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("node", ""),
        ("node", "a" * 256),
        ("node", "node 3"),
        ("node", "-leading-dash"),
        ("node", "evil\x1b[31m"),
        ("node", 7),
        ("gpu_index", -1),
        ("gpu_index", "0"),
        ("gpu_index", 1.5),
    ],
)
def test_a_malformed_node_or_gpu_index_is_422_naming_the_field(client, field, value):
    r = client.post(f"{P}/tasks", json={**START, field: value})
    assert r.status_code == 422, r.text
    assert field in r.text
    assert client.get(f"{P}/tasks/far-1").status_code == 404  # nothing was started
