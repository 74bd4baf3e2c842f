"""The generation routes, mounted in the real API app, over the real service and tiny model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from genperf.api import ApiSettings, create_app
from genperf.api.routers.generation import make_router
from genperf.generation import TINY_WAN, queue_demo_batch

pytestmark = pytest.mark.filterwarnings("ignore:unclosed file.*safetensors:ResourceWarning")

URL = "/api/v1/generation/tasks"
PROMPT = "a tortoise reading the newspaper aloud"
LOOPBACK = ("127.0.0.1", 50000)
READ, WRITE = "read-token-0123456789abcdef", "write-token-0123456789abcdef"
GOOD = {"model_type": TINY_WAN, "prompt": PROMPT, "resolution": "64x64", "steps": 2, "frames": 5}


@pytest.fixture
def client(settings, monitor, service) -> Iterator[TestClient]:
    app = create_app(
        settings,
        monitor=monitor,
        api_settings=ApiSettings(api_tokens=(f"read:{READ}", f"write:{WRITE}")),
        extra_routers=[make_router(service)],
        environ={},
    )
    with TestClient(app, base_url="http://localhost", client=LOOPBACK) as c:
        yield c


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_submit_then_read_the_task_and_its_metrics(client, service):
    answer = client.post(URL, json=GOOD, headers=_auth(WRITE))
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    assert answer.json()["status"] == "queued"
    assert answer.headers["location"] == f"{URL}/{task_id}"
    prediction = answer.json()["prediction"]  # no history yet: says so, and what to run
    assert prediction["answerable"] is False and prediction["generation_time_seconds"] is None
    assert prediction["suggested_runs"][0]["resolution"] == "64x64"
    assert service.wait_idle(120)

    one = client.get(f"{URL}/{task_id}", headers=_auth(READ))
    assert one.status_code == 200, one.text
    body = one.json()
    assert (body["status"], body["resolution"], body["steps"], body["frames"]) == (
        "completed",
        "64x64",
        2,
        5,
    )
    metrics = body["metrics"]
    assert metrics["status"] == "completed" and metrics["run_id"] == body["run_id"]
    assert [p["name"] for p in metrics["phases"]] == [
        "model_load",
        "text_encode",
        "denoise",
        "vae_decode",
    ]
    assert len(metrics["step_times_seconds"]) == 2
    assert body["prediction"] == prediction  # kept as it was said when it was queued
    listed = client.get(URL, headers=_auth(READ), params={"status": "completed"})
    assert [t["task_id"] for t in listed.json()["tasks"]] == [task_id]
    assert listed.json()["tasks"][0]["prediction"] == prediction
    assert PROMPT not in one.text + listed.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 201}, "steps"),
        ({"steps": "4"}, "steps"),
        ({"frames": 8}, "frames"),
        ({"frames": 10_001}, "frames"),
        ({"resolution": "100x100"}, "resolution"),
        ({"resolution": "huge"}, "resolution"),
        ({"prompt": ""}, "prompt"),
        ({"memory_headroom_mib": 1}, "memory_headroom_mib"),
        ({"model_type": "t2v-A14B"}, "model_type"),
        ({"model_type": "../../outside/tiny"}, "model_type"),
        ({"model_type": "/etc"}, "model_type"),
        ({"seed": 3}, "seed"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, change, field):
    answer = client.post(URL, json={**GOOD, **change}, headers=_auth(WRITE))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field


def test_roles_and_unknown_ids(client):
    assert client.post(URL, json=GOOD).status_code == 401
    assert client.post(URL, json=GOOD, headers=_auth(READ)).status_code == 403
    assert client.get(URL, headers=_auth(READ)).json() == {"tasks": []}
    missing = client.get(f"{URL}/nope", headers=_auth(READ))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert client.get(URL, headers=_auth(READ), params={"limit": 0}).status_code == 422


def test_the_demo_batch(monitor):
    from genperf.generation import GenerationService

    service = GenerationService(monitor)  # not started: the batch stays queued
    try:
        ids = queue_demo_batch(service)
        tasks = [service.get(i).request for i in ids]
        assert len({(t.resolution, t.steps, t.frames) for t in tasks}) == len(tasks)
        assert len({t.resolution for t in tasks}) >= 3 and len({t.steps for t in tasks}) >= 3
        oom = [t for t in tasks if t.memory_headroom_mib is not None]
        assert [(t.resolution, t.frames, t.memory_headroom_mib) for t in oom] == [
            ("832x480", 17, 64)
        ]
        assert all(t.model_type == TINY_WAN for t in tasks)
    finally:
        service.close()
