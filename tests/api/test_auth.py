"""Tokens and roles; loopback-only service without tokens."""

from __future__ import annotations

import hashlib
import logging

import pytest
from api_support import (
    ADMIN_TOKEN,
    BASE,
    LOOPBACK,
    READ_TOKEN,
    REMOTE,
    TOKENS,
    WRITE_TOKEN,
    P,
    bearer,
)
from fastapi.testclient import TestClient

from genperf.api.auth import Role, TokenTable, is_loopback
from genperf.errors import ConfigError

START = {"task_id": "a", "model_type": "m"}


def test_missing_or_unknown_token_is_401_with_the_error_shape(token_client):
    for headers in ({}, bearer("wrong-token"), {"Authorization": "Basic abc"}):
        r = token_client.get(f"{P}/status", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_roles_are_ordered_read_write_admin(token_client):
    read, write, admin = bearer(READ_TOKEN), bearer(WRITE_TOKEN), bearer(ADMIN_TOKEN)
    assert token_client.get(f"{P}/status", headers=read).status_code == 200
    assert token_client.get("/metrics", headers=read).status_code == 200
    assert token_client.post(f"{P}/tasks", json=START, headers=read).status_code == 403
    assert token_client.post(f"{P}/tasks", json=START, headers=write).status_code == 201
    assert token_client.get(f"{P}/tasks/a", headers=write).status_code == 200
    assert token_client.post(f"{P}/export", headers=write).status_code == 403
    r = token_client.post(f"{P}/export", headers=admin)
    assert r.status_code == 200
    assert token_client.post(f"{P}/tasks/a/complete", headers=admin).status_code == 200


def test_tokens_apply_to_loopback_clients_too(make_app):
    with TestClient(make_app(api_tokens=TOKENS), base_url=BASE, client=LOOPBACK) as c:
        assert c.get(f"{P}/status").status_code == 401
        assert c.get(f"{P}/status", headers=bearer(READ_TOKEN)).status_code == 200


def test_without_tokens_only_loopback_clients_are_served(make_app):
    app = make_app()
    with TestClient(app, base_url=BASE, client=REMOTE) as remote:
        for method, path in (("GET", f"{P}/status"), ("GET", "/metrics"), ("POST", f"{P}/export")):
            r = remote.request(method, path)
            assert r.status_code == 403
            assert "GENPERF_API_TOKENS" in r.json()["error"]["message"]
        assert remote.post(f"{P}/tasks", json=START).status_code == 403
    with TestClient(app, base_url=BASE, client=("::1", 1)) as local:
        assert local.get(f"{P}/status").status_code == 200
        assert local.post(f"{P}/tasks", json=START).status_code == 201
        assert local.post(f"{P}/export").status_code == 200


def test_probes_need_no_token(token_client):
    assert token_client.get("/healthz").status_code == 200
    assert token_client.get("/readyz").status_code == 200


def test_only_digests_are_kept_and_the_highest_role_wins():
    table = TokenTable.parse(["read:same-token-1234567890", "admin:same-token-1234567890"])
    assert table.role_of("same-token-1234567890") is Role.ADMIN
    assert table.role_of("other") is None
    assert "same-token" not in repr(table)
    assert all("same-token" not in repr(v) for v in vars(table).values())


def test_a_token_may_be_configured_by_its_sha256():
    hexdigest = hashlib.sha256(b"secret-from-a-vault").hexdigest()
    table = TokenTable.parse([f"write:sha256:{hexdigest}"])
    assert table.role_of("secret-from-a-vault") is Role.WRITE


@pytest.mark.parametrize(
    "digest_text",
    ["0" * 63, "0" * 65, "g" * 64, "", "super-secret-value"],
    ids=["63-hex", "65-hex", "not-hex", "empty", "text"],
)
def test_a_malformed_sha256_digest_is_refused_not_taken_as_a_token(digest_text):
    with pytest.raises(ConfigError) as info:
        TokenTable.parse([f"read:sha256:{digest_text}"])
    message = str(info.value)
    assert "entry 1" in message and "64 hexadecimal digits" in message
    assert digest_text not in message or not digest_text


def test_bad_entries_are_refused_without_echoing_the_token():
    for spec in ("reader:super-secret-value", "super-secret-value", "admin:"):
        with pytest.raises(ConfigError) as info:
            TokenTable.parse([spec])
        assert "super-secret-value" not in str(info.value)


def test_short_tokens_work_with_a_warning_that_does_not_show_them(caplog):
    caplog.set_level(logging.WARNING, logger="genperf.api")
    table = TokenTable.parse(["read:abc"])
    assert table.role_of("abc") is Role.READ
    assert "shorter than" in caplog.text
    assert "abc" not in caplog.text.replace("abcdef", "")


def test_no_token_reaches_a_log_line(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    with TestClient(make_app(api_tokens=TOKENS), base_url=BASE, client=REMOTE) as c:
        c.get(f"{P}/status", headers=bearer(READ_TOKEN))
        c.get(f"{P}/status", headers=bearer("not-a-real-token-zzz"))
        c.get(f"{P}/nowhere", headers=bearer(ADMIN_TOKEN))
    for token in (READ_TOKEN, ADMIN_TOKEN, WRITE_TOKEN, "not-a-real-token-zzz"):
        assert token not in caplog.text


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("localhost", False),  # a name is not an address: the peer is always an address
        ("testclient", False),
        (None, False),
        ("", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_the_app_keeps_only_digests(make_app):
    app = make_app(api_tokens=TOKENS)
    context = app.state.genperf
    assert context.api.api_tokens == ()
    assert READ_TOKEN not in repr(vars(context.tokens))


@pytest.mark.parametrize(
    ("token", "role"), [(READ_TOKEN, "read"), (WRITE_TOKEN, "write"), (ADMIN_TOKEN, "admin")]
)
def test_whoami_tells_the_role_of_the_token(token_client, token, role):
    assert token_client.get("/api/v1/auth/whoami").status_code == 401
    ok = token_client.get("/api/v1/auth/whoami", headers=bearer(token))
    assert ok.status_code == 200
    assert ok.json() == {"role": role}
