"""Task ingestion over HTTP: the library's rules, end to end through the real app and SQLite."""

from __future__ import annotations

import pytest
from api_support import P

START = {"task_id": "job-1", "model_type": "t2v-A14B", "resolution": "1280x720", "steps": 20}


def test_start_update_complete_get_then_in_metrics_export_analysis_and_prometheus(client):
    r = client.post(f"{P}/tasks", json=START)
    assert r.status_code == 201, r.text
    started = r.json()
    assert started["status"] == "running"
    assert started["resolution_class"] == "720p"
    assert r.headers["location"] == f"{P}/tasks/job-1"

    r = client.patch(
        f"{P}/tasks/job-1",
        json={
            "model_load_time_seconds": 31.2,
            "optimizations_applied": ["dtype:bf16", "vae_tiling"],
            "phases": [{"name": "denoise", "duration_seconds": 2.0}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["model_load_time_seconds"] == 31.2

    live = client.get(f"{P}/tasks/job-1").json()
    assert live["status"] == "running"
    assert live["optimizations_applied"] == ["dtype:bf16", "vae_tiling"]
    status = client.get(f"{P}/status").json()
    assert [t["task_id"] for t in status["active_tasks"]] == ["job-1"]

    r = client.post(f"{P}/tasks/job-1/complete", json={"success": True})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "completed" and done["success"] is True
    assert done["completed_at"] is not None

    stored = client.get(f"{P}/tasks/job-1").json()
    assert stored["run_id"] == started["run_id"]
    assert stored["status"] == "completed"
    assert stored["model_load_time_seconds"] == 31.2

    page = client.get(f"{P}/metrics", params={"model_type": "t2v-A14B"}).json()
    assert page["total"] == 1
    assert page["metrics"][0]["task_id"] == "job-1"

    export = client.post(f"{P}/export", params={"format": "json"}).json()
    assert export["metrics_count"] == 1
    assert export["metrics"][0]["run_id"] == started["run_id"]

    analysis = client.get(f"{P}/analysis").json()
    assert analysis["task_count"] == 1
    assert analysis["success_rate"] == 1.0

    text = client.get("/metrics").text
    assert (
        'genperf_tasks_finished_total{error_category="none",node="api-node",status="completed"} 1.0'
        in text
    )
    assert (
        'genperf_task_duration_seconds_count{model_type="t2v-A14B",node="api-node",'
        'resolution_class="720p"} 1.0' in text
    )
    assert "job-1" not in text  # no task ids in labels


def test_a_failure_is_diagnosed_and_counted(client):
    client.post(f"{P}/tasks", json=START)
    r = client.post(
        f"{P}/tasks/job-1/complete",
        json={"success": False, "error": "CUDA out of memory. Tried to allocate 2.00 GiB"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "failed"
    assert body["error_category"] == "out_of_memory_gpu"
    assert body["recovery_suggestions"]
    text = client.get("/metrics").text
    assert (
        'genperf_tasks_finished_total{error_category="out_of_memory_gpu",node="api-node",status="failed"}'
        in (text)
    )


def test_unknown_task_is_404(client):
    for method, path, body in (
        ("PATCH", f"{P}/tasks/nope", {"frames": 81}),
        ("POST", f"{P}/tasks/nope/complete", None),
        ("GET", f"{P}/tasks/nope", None),
    ):
        r = client.request(method, path, json=body)
        assert r.status_code == 404, (method, r.text)
        assert r.json()["error"]["code"] == "unknown_task"


def test_unknown_field_is_422_naming_it(client):
    client.post(f"{P}/tasks", json=START)
    r = client.patch(f"{P}/tasks/job-1", json={"peak_vram_usage_mb": 10.0, "vram_peak": 3})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "vram_peak"
    assert "vram_peak" in r.json()["error"]["message"]
    r = client.post(f"{P}/tasks", json={**START, "task_id": "job-2", "prompt": "a cat"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "prompt"


def test_invalid_value_is_422_naming_the_field(client):
    client.post(f"{P}/tasks", json=START)
    r = client.patch(f"{P}/tasks/job-1", json={"model_load_time_seconds": -1})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "model_load_time_seconds"
    r = client.patch(f"{P}/tasks/job-1", json={"phases": [{"name": "x"}]})
    assert r.json()["error"]["field"] == "phases[0].duration_seconds"


def test_a_retried_completion_is_idempotent_and_another_outcome_is_409(client):
    client.post(f"{P}/tasks", json=START)
    first = client.post(f"{P}/tasks/job-1/complete")
    assert first.status_code == 200 and first.json()["durable"] is True
    again = client.post(f"{P}/tasks/job-1/complete")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    r = client.post(f"{P}/tasks/job-1/complete", json={"success": False, "error": "boom"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "task_state"
    r = client.patch(f"{P}/tasks/job-1", json={"frames": 81})
    assert r.status_code == 409


def test_completing_a_task_finished_before_a_restart_answers_its_stored_record(client, store):
    from genperf.testing import make_task

    store.save_task(make_task(task_id="old-job"))
    r = client.post(f"{P}/tasks/old-job/complete")
    assert r.status_code == 200 and r.json()["durable"] is True
    assert r.json()["status"] == "completed"
    r = client.post(f"{P}/tasks/old-job/complete", json={"success": False})
    assert r.status_code == 409
    assert client.get(f"{P}/tasks/old-job").json()["status"] == "completed"


def test_starting_a_running_task_again_is_409(client):
    assert client.post(f"{P}/tasks", json=START).status_code == 201
    r = client.post(f"{P}/tasks", json=START)
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model_type": "m"}, "task_id"),
        ({"task_id": "", "model_type": "m"}, "task_id"),
        ({"task_id": "a", "model_type": "m", "steps": -1}, "steps"),
        ({"task_id": "a", "model_type": "m", "steps": "many"}, "steps"),
        ({"task_id": "a", "model_type": "x" * 101}, "model_type"),
    ],
)
def test_bad_start_bodies_name_the_field(client, body, field):
    r = client.post(f"{P}/tasks", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field


def test_a_retried_completion_is_counted_once(client):
    client.post(f"{P}/tasks", json=START)
    client.post(f"{P}/tasks/job-1/complete")
    client.post(f"{P}/tasks/job-1/complete")  # the same answer again, nothing counted
    text = client.get("/metrics").text
    assert (
        'genperf_tasks_finished_total{error_category="none",node="api-node",status="completed"} 1.0'
        in text
    )
