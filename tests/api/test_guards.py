"""Host and Origin checks (DNS rebinding, CSRF), CORS, and the request body limit."""

from __future__ import annotations

import pytest
from api_support import BASE, LOOPBACK, P
from fastapi.testclient import TestClient

from genperf.api.guards import host_name

START = {"task_id": "a", "model_type": "m"}


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST."]
)
def test_loopback_host_names_are_answered(client, host):
    assert client.get(f"{P}/status", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example"])
def test_a_rebound_dns_name_is_refused(client, host):
    r = client.get(f"{P}/status", headers={"Host": host})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "invalid_host",
        "message": r.json()["error"]["message"],
        "field": "host",
    }


def test_configured_hosts_and_wildcards(make_app):
    app = make_app(allowed_hosts=("genperf.internal", "*.example.org"))
    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        assert c.get("/metrics", headers={"Host": "genperf.internal:8000"}).status_code == 200
        assert c.get("/metrics", headers={"Host": "a.example.org"}).status_code == 200
        assert c.get("/metrics", headers={"Host": "example.org.evil"}).status_code == 400


def test_probes_answer_any_host(client):
    assert client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200


def test_cross_origin_requests_are_refused(client):
    r = client.post(f"{P}/tasks", json=START, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert r.json()["error"]["field"] == "origin"
    r = client.get(f"{P}/status", headers={"Origin": "null"})
    assert r.status_code == 403


def test_same_origin_requests_pass(client):
    r = client.post(f"{P}/tasks", json=START, headers={"Origin": "http://localhost"})
    assert r.status_code == 201


def test_a_text_plain_post_cannot_ingest(client):
    """A form or text/plain POST (no CORS preflight) is not JSON: refused."""
    r = client.post(
        f"{P}/tasks",
        content=b'{"task_id":"a","model_type":"m"}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 422


def test_cors_is_off_unless_configured(client, make_app):
    r = client.options(
        f"{P}/status",
        headers={"Origin": "https://grafana.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers
    app = make_app(cors_origins=("https://grafana.example",))
    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        r = c.get(f"{P}/status", headers={"Origin": "https://grafana.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://grafana.example"


def test_a_declared_oversized_body_is_413(client):
    r = client.post(
        f"{P}/tasks",
        content=b"{" + b" " * (1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_a_streamed_oversized_body_is_413(make_app):
    app = make_app(max_body_bytes=1000)

    def chunks():
        yield b'{"task_id": "a", "model_type": "m", "error_message": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    with TestClient(app, base_url=BASE, client=LOOPBACK) as c:
        r = c.post(f"{P}/tasks", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("header", "name"),
    [("Example.COM:80", "example.com"), ("[::1]:80", "::1"), ("::1", "::1"), ("a.b.", "a.b")],
)
def test_host_name(header, name):
    assert host_name(header) == name
