"""GET /api/v1/performance/doctor: the checks run by the server, with its own monitor."""

from __future__ import annotations

from api_support import READ_TOKEN, P, bearer


def test_the_server_runs_the_doctor_with_its_own_monitor(client, monitor) -> None:  # type: ignore[no-untyped-def]
    body = client.get(f"{P}/doctor").json()
    assert body["where"] == "server"
    assert body["exit_code"] in (0, 1, 2)
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["sampler"]["verdict"] == "ok"  # the app's lifespan started its monitor
    assert checks["store_queue"]["verdict"] == "ok"
    assert checks["database_schema"]["verdict"] == "ok"
    monitor.stop()  # a server whose sampler stopped: the doctor says so, and fails
    body = client.get(f"{P}/doctor").json()
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["sampler"]["verdict"] == "failure"
    assert body["exit_code"] == 2
    assert all(
        set(c) == {"name", "title", "verdict", "evidence", "fix", "data"} for c in body["checks"]
    )


def test_the_doctor_needs_a_read_token(token_client) -> None:  # type: ignore[no-untyped-def]
    assert token_client.get(f"{P}/doctor").status_code == 401
    assert token_client.get(f"{P}/doctor", headers=bearer(READ_TOKEN)).status_code == 200
