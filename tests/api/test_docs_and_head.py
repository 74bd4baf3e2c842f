"""/docs from local, pinned assets under a CSP; HEAD answers like GET without a body."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from api_support import P


def test_docs_are_served_from_this_server_under_a_strict_policy(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert "/docs/assets/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "https://" not in html  # nothing from elsewhere
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self' 'sha256-" in policy
    (inline,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy  # the start-up script, and only it, may run
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in script.text[:200_000] or len(script.content) > 100_000
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert client.get("/docs/assets/index.html").status_code == 404  # only what the page needs
    assert client.get("/redoc").status_code == 404  # CDN-only: off


@pytest.mark.parametrize(
    "path", [f"{P}/status", f"{P}/metrics", "/metrics", "/healthz", "/openapi.json", "/", "/docs"]
)
def test_head_answers_like_get_without_a_body(client, path):
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


def test_head_keeps_the_guards_and_405_where_there_is_no_get(client, token_client):
    assert token_client.head(f"{P}/status").status_code == 401  # same auth as GET
    assert client.head(f"{P}/tasks/x/complete").status_code == 405
