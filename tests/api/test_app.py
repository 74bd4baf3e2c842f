"""The app factory: lifespan, the monitor it owns or is given, extra routers, the OpenAPI
document, and task metrics from a monitor's listener hook."""

from __future__ import annotations

import dataclasses
import typing

from api_support import BASE, LOOPBACK, P, readings
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel

from genperf.api import create_app
from genperf.api import schemas as s
from genperf.api.auth import RequireWrite
from genperf.collectors import TorchMemoryProbe
from genperf.monitor import PerformanceMonitor
from genperf.records import TASK_FIELDS, UPDATABLE_FIELDS, GpuReading, SystemSample
from genperf.testing import FakeCollector, FakeTorchCuda


def test_an_owned_monitor_is_started_and_closed_by_the_lifespan(settings, store):
    app = create_app(settings, store=store, environ={})
    monitor = app.state.genperf.monitor
    assert not monitor.running
    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        assert monitor.running
        assert c.post(f"{P}/tasks", json={"task_id": "x", "model_type": "m"}).status_code == 201
        assert c.post(f"{P}/tasks/x/complete").status_code == 200
    assert not monitor.running
    assert store.get_task("x").status.value == "completed"  # flushed; the store stays open
    assert store.ping()


def test_a_given_monitor_is_flushed_but_left_to_its_owner(settings, monitor):
    app = create_app(settings, monitor=monitor, environ={})
    with TestClient(app, base_url=BASE, client=LOOPBACK):
        assert monitor.running
    assert monitor.running
    assert app.state.genperf.owns_monitor is False


def test_extra_routers_are_mounted_behind_the_same_guards(settings, monitor):
    router = APIRouter(prefix="/api/v1/generation")

    class Out(BaseModel):
        ok: bool

    @router.post("/tasks", response_model=Out, dependencies=[RequireWrite])
    def submit() -> Out:
        return Out(ok=True)

    app = create_app(settings, monitor=monitor, extra_routers=[router], environ={})
    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        assert c.post("/api/v1/generation/tasks").json() == {"ok": True}
        r = c.post("/api/v1/generation/tasks", headers={"Host": "evil.example"})
        assert r.status_code == 400
    with TestClient(app, base_url=BASE, client=("198.51.100.1", 1)) as c:
        assert c.post("/api/v1/generation/tasks").status_code == 403
    assert "/api/v1/generation/tasks" in app.openapi()["paths"]


def test_tasks_finished_in_process_reach_prometheus_through_the_hook(settings, store):
    monitor = PerformanceMonitor(
        settings,
        collectors=[FakeCollector(readings)],
        store=store,
        torch_probe=TorchMemoryProbe(FakeTorchCuda(available=False)),
    )
    app = create_app(settings, monitor=monitor, environ={})
    try:
        with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
            with monitor.track("in-process", model_type="tiny-wan-t2v", resolution="832x480"):
                pass
            c.post(f"{P}/tasks", json={"task_id": "via-api", "model_type": "tiny-wan-t2v"})
            c.post(f"{P}/tasks/via-api/complete")
            text = c.get("/metrics").text
    finally:
        monitor.close()
    assert (
        'genperf_task_duration_seconds_count{model_type="tiny-wan-t2v",node="api-node",'
        'resolution_class="480p"} 1.0' in text
    )
    assert (
        'genperf_task_duration_seconds_count{model_type="tiny-wan-t2v",node="api-node",'
        'resolution_class="720p"} 1.0' in text
    )
    assert (
        'genperf_tasks_finished_total{error_category="none",node="api-node",status="completed"} 2.0'
        in text
    )


def test_every_route_documents_its_response_and_errors(app):
    doc = app.openapi()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            ok = next(code for code in op["responses"] if code.startswith("2"))
            content = op["responses"][ok].get("content")
            assert content, (method, path)
            for media in content.values():
                assert media.get("schema"), (method, path)
            if not path.startswith("/healthz"):
                assert "422" in op["responses"] or not op.get("parameters"), (method, path)
    schemas = doc["components"]["schemas"]
    assert schemas["ErrorResponse"]["properties"]["error"]
    export = doc["paths"][f"{P}/export"]["post"]["responses"]["200"]["content"]
    assert set(export) == {
        "application/json",
        "text/csv",
        "text/plain",
        "application/x-ndjson",
    }
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_response_models_keep_in_step_with_the_records():
    assert set(s.TaskOut.model_fields) == {*TASK_FIELDS, "success"}
    assert set(s.TaskMetricsIn.model_fields) == set(UPDATABLE_FIELDS)
    assert set(s.SampleOut.model_fields) == {f.name for f in dataclasses.fields(SystemSample)}
    gpu_fields = {f.name for f in dataclasses.fields(GpuReading)}
    assert set(s.GpuOut.model_fields) == gpu_fields | {"memory_percent"}
    hints = typing.get_type_hints(PerformanceMonitor.self_stats)
    assert hints["return"] == dict[str, float | int]


def test_monitor_stats_model_matches_self_stats(monitor):
    assert set(s.MonitorStatsOut.model_fields) == set(monitor.self_stats())
