"""One error shape for every 4xx and 5xx; bad parameters name the field; no NaN in JSON."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from api_support import BASE, LOOPBACK, P
from fastapi import APIRouter
from fastapi.testclient import TestClient

from genperf.api import create_app
from genperf.api.errors import field_name
from genperf.errors import StoreUnavailableError
from genperf.records import utc_now
from genperf.testing import make_task

READ_ROUTES = ("/analysis", "/metrics", "/recommendations", "/benchmarks")


def assert_error(response, status, field=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["message"]
    assert body["error"]["field"] == field
    return body["error"]


@pytest.mark.parametrize("route", READ_ROUTES)
@pytest.mark.parametrize("hours", ["-1", "0", "8761", "1e308", "nan", "inf", "abc", ""])
def test_bad_time_windows_are_422_naming_the_field(client, route, hours):
    r = client.get(f"{P}{route}", params={"time_window_hours": hours})
    assert_error(r, 422, "time_window_hours")


def test_bad_export_parameters(client):
    assert_error(client.post(f"{P}/export", params={"format": "xml"}), 422, "format")
    assert_error(
        client.post(f"{P}/export", params={"time_window_hours": -5}), 422, "time_window_hours"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"success_only": "perhaps"}, "success_only"),
        ({"model_type": ""}, "model_type"),
    ],
)
def test_bad_metrics_parameters(client, params, field):
    assert_error(client.get(f"{P}/metrics", params=params), 422, field)


def test_a_single_valued_query_parameter_given_twice_is_422_and_a_list_may_repeat(client):
    twice = client.get(f"{P}/analysis", params=[("model_type", "a"), ("model_type", "b")])
    assert_error(twice, 422, "model_type")
    assert "more than once" in twice.json()["error"]["message"]
    unknown = client.get(f"{P}/analysis", params={"time_window_hour": "48"})
    assert_error(unknown, 422, "time_window_hour")
    nodes = client.get(f"{P}/analysis", params=[("node", "a"), ("node", "b")])
    assert nodes.status_code == 200, nodes.text


def test_unknown_routes_and_methods(client):
    assert_error(client.get(f"{P}/nowhere"), 404)
    assert_error(client.delete(f"{P}/status"), 405)


def test_malformed_json_and_wrong_body_types(client):
    r = client.post(
        f"{P}/tasks", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(r, 422)
    r = client.post(f"{P}/tasks", json=[1, 2, 3])
    assert r.status_code == 422
    r = client.post(f"{P}/tasks", content=b"", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_a_database_outage_is_503_without_the_url(make_app, settings, monitor, monkeypatch):
    app = make_app()

    def down(*args, **kwargs):
        raise StoreUnavailableError(
            "cannot count tasks: postgresql://genperf:hunter2@db.internal/genperf unreachable"
        )

    monkeypatch.setattr(type(monitor.store), "count_tasks", down)
    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        r = c.get(f"{P}/metrics")
    error = assert_error(r, 503)
    assert error["code"] == "store_unavailable"
    assert "hunter2" not in r.text and "db.internal" not in r.text


def test_an_unexpected_error_is_a_500_in_the_error_shape_without_details(settings, monitor):
    router = APIRouter()

    @router.get("/boom")
    def boom() -> dict[str, str]:
        raise RuntimeError("secret internals: token=abc")

    app = create_app(settings, monitor=monitor, extra_routers=[router], environ={})
    with TestClient(app, base_url=BASE, client=LOOPBACK, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    error = assert_error(r, 500)
    assert error["code"] == "internal_error"
    assert "secret" not in r.text


def test_nan_and_infinity_never_reach_json(client, store):
    # A stored record with non-finite values (a row written by another tool, say).
    store.save_task(
        make_task(
            task_id="weird",
            started_at=utc_now() - timedelta(hours=1),
            peak_cpu_percent=math.nan,
            avg_cpu_percent=math.inf,
        )
    )
    for method, path in (
        ("GET", f"{P}/metrics"),
        ("GET", f"{P}/tasks/weird"),
        ("POST", f"{P}/export"),
        ("GET", f"{P}/analysis"),
    ):
        r = client.request(method, path)
        assert r.status_code == 200, (path, r.text)
        text = r.text
        assert "NaN" not in text and "Infinity" not in text, path
        json.loads(text, parse_constant=_refuse)
    task = client.get(f"{P}/tasks/weird").json()
    assert task["peak_cpu_percent"] is None and task["avg_cpu_percent"] is None


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} in JSON")


@pytest.mark.parametrize(
    ("loc", "name"),
    [
        (("query", "time_window_hours"), "time_window_hours"),
        (("body", "phases", 0, "name"), "phases[0].name"),
        (("body",), None),
        ((), None),
    ],
)
def test_field_name(loc, name):
    assert field_name(loc) == name
