"""Generation requests are bounded: sizes per model type, the queue's length, every run's time
(issue 10). The service here is real (queue in SQLite, API app) with its worker not started,
so requests stay queued; the run-time limit on the real tiny model is in
test_generation_service.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from genperf.api import ApiSettings, create_app
from genperf.api.routers.generation import make_router
from genperf.config import GenerationLimits, ModelLimits, Settings
from genperf.generation import (
    TINY_WAN,
    GenerationService,
    GenerationTimeoutError,
    QueueFullError,
    RequestLimitError,
)
from genperf.generation.pipelines import Deadline
from genperf.generation.queue import RequestQueue
from genperf.generation.request import GenerationRequest, check_limits
from genperf.monitor import PerformanceMonitor
from genperf.storage import MemoryStore
from genperf.testing import ManualClock

URL = "/api/v1/generation/tasks"
GOOD = {"model_type": TINY_WAN, "prompt": "a kite", "resolution": "64x64", "steps": 2, "frames": 5}


def _request(**kw) -> GenerationRequest:
    fields = {
        "task_id": "t",
        "model_type": TINY_WAN,
        "prompt": "p",
        "width": 832,
        "height": 480,
        "steps": 40,
        "frames": 81,
    }
    return GenerationRequest(**{**fields, **kw})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"width": 2048, "height": 2048}, "resolution"),
        ({"frames": 241}, "frames"),
        ({"steps": 200}, "steps"),
    ],
)
def test_the_issues_oversize_request_is_refused_naming_the_field(change, field):
    limits = GenerationLimits().for_model(TINY_WAN)
    check_limits(_request(), limits)  # Wan's usual 480p, 81 frames, 40 steps fits
    with pytest.raises(RequestLimitError) as info:
        check_limits(_request(**change), limits)
    assert info.value.field == field
    assert f"generation_limits.max_{'pixels' if field == 'resolution' else field}" in str(
        info.value
    )


def test_limits_are_per_model_type():
    limits = GenerationLimits(
        max_steps=10, per_model={"big-wan": ModelLimits(max_steps=50, max_run_seconds=60.0)}
    )
    assert limits.for_model("big-wan") == ModelLimits(
        max_pixels=1280 * 720, max_frames=121, max_steps=50, max_run_seconds=60.0
    )
    assert limits.for_model(TINY_WAN).max_steps == 10
    with pytest.raises(RequestLimitError):
        check_limits(_request(steps=20), limits.for_model(TINY_WAN))
    check_limits(_request(steps=20, model_type="big-wan"), limits.for_model("big-wan"))


def test_the_queue_is_bounded_in_its_write_transaction(tmp_path):
    queue = RequestQueue(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        for n in range(3):
            queue.add(_request(task_id=f"q{n}"), max_queued=3)
        with pytest.raises(QueueFullError) as info:
            queue.add(_request(task_id="q3"), max_queued=3)
        assert info.value.retry_after_seconds > 0
        assert queue.get("q3") is None
        assert queue.claim_next() is not None  # one leaves the queue for the worker
        queue.add(_request(task_id="q3"), max_queued=3)
    finally:
        queue.close()


def test_a_deadline_stops_at_the_first_step_past_it():
    clock = ManualClock()
    deadline = Deadline(2.0, clock=clock)
    assert deadline.step_callback(None, 0, 999, {}) == {}
    clock.advance(1.999)
    deadline.check()
    clock.advance(0.001)
    with pytest.raises(GenerationTimeoutError, match="2 s limit") as info:
        deadline.step_callback(None, 1, 998, {})
    assert isinstance(info.value, TimeoutError)  # diagnosed as a timeout


@pytest.fixture
def limited(tmp_path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path,
        monitoring_interval_seconds=3600.0,
        generation_limits=GenerationLimits(max_queued_requests=5),
    )
    monitor = PerformanceMonitor(settings, store=MemoryStore())
    service = GenerationService(monitor, database_url=f"sqlite:///{tmp_path / 'q.db'}")
    app = create_app(
        settings,
        monitor=monitor,
        api_settings=ApiSettings(),
        extra_routers=[make_router(service)],
        environ={},
    )
    try:
        with TestClient(app, base_url="http://localhost", client=("127.0.0.1", 5000)) as client:
            yield client
    finally:
        service.close()
        monitor.close()


def test_over_the_limits_the_api_answers_422_naming_the_field(limited):
    for change, field in [
        ({"resolution": "2048x2048", "frames": 241, "steps": 200}, "resolution"),
        ({"frames": 241}, "frames"),
        ({"steps": 150}, "steps"),
    ]:
        answer = limited.post(URL, json={**GOOD, **change})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == field


def test_a_queue_flood_gets_429_with_retry_after_and_the_queue_stays_bounded(limited):
    codes = [limited.post(URL, json={**GOOD, "prompt": "x" * 4000}).status_code for _ in range(40)]
    assert codes[:5] == [202] * 5
    assert set(codes[5:]) == {429}
    full = limited.post(URL, json=GOOD)
    assert full.status_code == 429
    assert int(full.headers["retry-after"]) > 0
    assert full.json()["error"]["code"] == "queue_full"
    listed = limited.get(URL, params={"limit": 500}).json()["tasks"]
    assert len(listed) == 5
