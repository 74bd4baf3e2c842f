"""Running tasks opened over HTTP are bounded per client and in total, their arrays are
bounded, abandoned ones expire, and /status stays small (issue 10)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from api_support import ADMIN_TOKEN, BASE, LOOPBACK, TOKENS, WRITE_TOKEN, P, bearer
from fastapi.testclient import TestClient

from genperf.api import ApiSettings, create_app
from genperf.api.open_tasks import OpenTaskLedger
from genperf.api.schemas import MAX_STEP_TIMES, STATUS_ACTIVE_TASKS
from genperf.config import ApiLimits
from genperf.errors import GenperfError
from genperf.testing import ManualClock


def _start(task_id: str, **extra) -> dict:
    return {"task_id": task_id, "model_type": "t2v-A14B", "resolution": "720p", **extra}


@pytest.fixture
def bounded(settings, monitor) -> Iterator[TestClient]:
    limits = ApiLimits(max_open_tasks=30, max_open_tasks_per_client=25)
    app = create_app(
        settings.model_copy(update={"api_limits": limits}),
        monitor=monitor,
        api_settings=ApiSettings(api_tokens=TOKENS, report_cache_seconds=0.0),
        environ={},
    )
    with TestClient(app, base_url=BASE, client=LOOPBACK) as client:
        yield client


def test_a_client_has_its_bound_and_all_clients_theirs(bounded):
    writer, admin = bearer(WRITE_TOKEN), bearer(ADMIN_TOKEN)
    for n in range(25):
        assert bounded.post(f"{P}/tasks", json=_start(f"w{n}"), headers=writer).status_code == 201
    refused = bounded.post(f"{P}/tasks", json=_start("w25"), headers=writer)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_open_tasks"
    assert "this client" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) > 0
    for n in range(5):  # another client still may, up to the server's bound
        assert bounded.post(f"{P}/tasks", json=_start(f"a{n}"), headers=admin).status_code == 201
    full = bounded.post(f"{P}/tasks", json=_start("a5"), headers=admin)
    assert full.status_code == 429 and "the server" in full.json()["error"]["message"]
    # Completing frees a place; a duplicate start stays a 409 and frees nothing.
    assert bounded.post(f"{P}/tasks/w0/complete", headers=writer).status_code == 200
    assert bounded.post(f"{P}/tasks", json=_start("w1"), headers=writer).status_code == 409
    assert bounded.post(f"{P}/tasks", json=_start("a5"), headers=admin).status_code == 201
    assert bounded.post(f"{P}/tasks", json=_start("a6"), headers=admin).status_code == 429


def test_per_task_arrays_are_bounded(bounded):
    too_many = [0.5] * (MAX_STEP_TIMES + 1)
    answer = bounded.post(
        f"{P}/tasks", json=_start("big", step_times_seconds=too_many), headers=bearer(WRITE_TOKEN)
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "step_times_seconds"
    assert bounded.get(f"{P}/tasks", headers=bearer(WRITE_TOKEN)).json()["total"] == 0


def test_status_shows_the_first_running_tasks_and_the_list_pages_through_all(bounded):
    writer = bearer(WRITE_TOKEN)
    steps = [0.25] * MAX_STEP_TIMES
    for n in range(25):
        body = _start(f"s{n:02}", step_times_seconds=steps)
        assert bounded.post(f"{P}/tasks", json=body, headers=writer).status_code == 201
    status = bounded.get(f"{P}/status", headers=writer).json()
    assert [t["task_id"] for t in status["active_tasks"]] == [
        f"s{n:02}" for n in range(STATUS_ACTIVE_TASKS)
    ]
    assert status["monitor"]["tasks_running"] == 25
    seen, offset = [], 0
    while offset is not None:
        page = bounded.get(f"{P}/tasks", params={"limit": 10, "offset": offset}, headers=writer)
        body = page.json()
        assert body["total"] == 25
        seen += [t["task_id"] for t in body["tasks"]]
        offset = body["next_offset"]
    assert seen == [f"s{n:02}" for n in range(25)]


def test_the_ledger_finds_tasks_whose_client_went_quiet():
    clock = ManualClock()
    ledger = OpenTaskLedger(max_total=10, max_per_client=10, idle_seconds=60.0, clock=clock)
    assert ledger.admit("quiet", "c") and ledger.admit("chatty", "c")
    assert not ledger.admit("quiet", "c")  # a duplicate id reserves nothing more
    clock.advance(59.0)
    ledger.touch("chatty")
    assert ledger.idle() == []
    clock.advance(1.0)
    assert ledger.idle() == ["quiet"]
    ledger.release("quiet")
    assert ledger.idle() == [] and len(ledger) == 1


def test_an_abandoned_task_is_closed_as_interrupted_with_the_reason(settings, monitor):
    limits = ApiLimits(open_task_idle_seconds=0.2)
    app = create_app(
        settings.model_copy(update={"api_limits": limits}),
        monitor=monitor,
        api_settings=ApiSettings(report_cache_seconds=0.0),
        environ={},
    )
    with TestClient(app, base_url=BASE, client=LOOPBACK) as client:
        assert client.post(f"{P}/tasks", json=_start("gone")).status_code == 201
        deadline = time.monotonic() + 20
        while True:
            answer = client.get(f"{P}/tasks/gone")
            # 404 for the instant between leaving the tracker and reaching the store
            if answer.status_code == 200 and answer.json()["status"] != "running":
                break
            assert time.monotonic() < deadline, "the abandoned task was never closed"
            time.sleep(0.05)
        record = answer.json()
        assert record["status"] == "interrupted"
        assert "abandoned" in record["error_message"]
        assert "open_task_idle_seconds" in record["error_message"]
        assert client.app.state.genperf.open_tasks.expired == 1
        assert len(client.app.state.genperf.open_tasks) == 0
        with pytest.raises(GenperfError):  # finished: a late completion is refused
            monitor.complete_task_monitoring("gone")
