"""No token, password or database URL with its password in a log line, an error or an
export; the API degrades to 503 while the database is down."""

from __future__ import annotations

import logging

from api_support import ADMIN_TOKEN, BASE, LOOPBACK, TOKENS, P, bearer
from fastapi.testclient import TestClient

from genperf.api import ApiSettings, create_app
from genperf.config import Settings

PASSWORD = "hunter2-db-password"


def test_a_database_that_is_down_gives_503s_and_never_its_password(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = Settings(
        data_dir=tmp_path,
        monitoring_interval_seconds=3600.0,
        database_url=f"postgresql://genperf:{PASSWORD}@127.0.0.1:1/genperf",
    )
    app = create_app(settings, api_settings=ApiSettings(api_tokens=TOKENS), environ={})
    seen = []
    with TestClient(app, base_url=BASE, client=LOOPBACK, headers=bearer(ADMIN_TOKEN)) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503
        seen.append(r.text)
        for method, path in (
            ("GET", f"{P}/metrics"),
            ("GET", f"{P}/analysis"),
            ("POST", f"{P}/export"),
        ):
            r = c.request(method, path)
            assert r.status_code == 503, (path, r.text)
            assert r.json()["error"]["code"] == "store_unavailable"
            seen.append(r.text)
        r = c.get(f"{P}/status")  # the live view needs no database
        assert r.status_code == 200
        seen.append(r.text)
        seen.append(c.get("/metrics").text)
        # Ingestion still works: the record is queued until the database is back, and the
        # answer says so (202, not durable).
        assert c.post(f"{P}/tasks", json={"task_id": "q", "model_type": "m"}).status_code == 201
        r = c.post(f"{P}/tasks/q/complete")
        assert r.status_code == 202 and r.json()["durable"] is False
    everything = caplog.text + "".join(seen)
    assert PASSWORD not in everything
    for token in TOKENS:
        assert token.split(":", 1)[1] not in everything
