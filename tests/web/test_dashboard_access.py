"""Access control as the page lives it: a token asked for once and kept for the tab, a
refused token said plainly, export only for the admin role; and the page's own safety:
strict headers, no inline code, data shown as text, nothing fetched from elsewhere."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import httpx
import pytest
from web_support import (
    ADMIN_TOKEN,
    READ_TOKEN,
    SEEDS,
    TOKENS,
    Seed,
    open_dashboard,
    running_service,
)

from genperf.records import TaskStatus
from genperf.web import CONTENT_SECURITY_POLICY, STATIC_DIR, WEB_DIR

P = "/api/v1/performance"


@pytest.fixture
def guarded(tmp_path, browser):
    """A service with API tokens configured: nothing is served without one."""
    with running_service(tmp_path, seeds=SEEDS[:6], tokens=TOKENS, running_task=False) as s:
        yield s


def _enter(page, token):
    page.fill("#token-input", token)
    page.click("#token-form button[type=submit]")


def test_a_refused_token_says_so_and_a_good_one_is_kept_for_the_tab(guarded, open_page):
    page = open_page()
    page.goto(guarded.url)
    page.wait_for_selector("#token-panel:not([hidden])")
    assert "needs an API token" in page.text_content("#token-message")
    assert page.is_hidden("#dashboard")
    assert page.get_attribute("#live-indicator", "data-state") == "locked"

    _enter(page, "not-a-token-of-this-server")
    page.wait_for_function(
        "() => document.querySelector('#token-message').textContent.includes('refused')"
    )
    message = page.text_content("#token-message")
    assert "The server refused this token" in message
    assert "the API token is not valid" in message  # the server's own words
    assert page.evaluate("sessionStorage.getItem('genperf.token')") is None

    _enter(page, READ_TOKEN)
    open_dashboard(page, page.url)  # the token survives a reload of the tab
    assert page.is_visible("#dashboard") and page.is_hidden("#token-panel")
    assert page.evaluate("sessionStorage.getItem('genperf.token')") == READ_TOKEN
    page.wait_for_selector("body[data-role='read']")
    assert page.is_hidden("#export-controls")  # read role: no export

    page.click("#sign-out")
    page.wait_for_selector("#token-panel:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('genperf.token')") is None


def test_the_token_is_kept_for_the_session_only(guarded, open_page, browser):
    page = open_page()
    page.goto(guarded.url)
    _enter(page, READ_TOKEN)
    page.wait_for_selector("#dashboard:not([hidden])")
    other = open_page()  # another browser session
    other.goto(guarded.url)
    other.wait_for_selector("#token-panel:not([hidden])")


def test_an_admin_exports_json_and_csv(guarded, open_page, tmp_path):
    page = open_page(accept_downloads=True)
    page.goto(guarded.url)
    _enter(page, ADMIN_TOKEN)
    page.wait_for_selector("body[data-role='admin']")
    assert page.is_visible("#export-json") and page.is_visible("#export-csv")
    total = httpx.get(
        f"{guarded.url}{P}/metrics",
        params={"time_window_hours": 24},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ).json()["total"]
    assert total == 6

    with page.expect_download() as info:
        page.click("#export-csv")
    download = info.value
    assert re.fullmatch(r"genperf-export-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    path = tmp_path / "export.csv"
    download.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == total
    assert {r["task_id"] for r in rows} == {s.name for s in SEEDS[:6]}

    with page.expect_download() as info:
        page.click("#export-json")
    path = tmp_path / "export.json"
    info.value.save_as(path)
    document = json.loads(path.read_text())
    assert document["metrics_count"] == total == len(document["metrics"])
    assert document["time_window_hours"] == 24
    assert page.is_hidden("#banner")


def test_pages_carry_a_strict_content_security_policy(service):
    index = httpx.get(f"{service.url}/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    csp = index.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    for rule in (
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ):
        assert rule in csp
    assert "unsafe" not in csp
    assert index.headers["x-content-type-options"] == "nosniff"
    script = httpx.get(f"{service.url}/static/js/main.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for path in (
        "/static/../__init__.py",
        "/static/js/nope.js",
        "/static/",
        "/static/%2e%2e/index.html",
    ):
        assert httpx.get(f"{service.url}{path}").status_code == 404, path
    assert "/" not in httpx.get(f"{service.url}/openapi.json").json()["paths"]


def test_the_page_has_no_inline_code_and_builds_no_html_from_data():
    html = (WEB_DIR / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # no inline script
    assert re.findall(r"\son[a-z]+\s*=", html) == []  # no inline handlers
    assert re.findall(r"(?:src|href)=\"(?!/static/|#)", html) == []  # nothing from elsewhere
    for script in (STATIC_DIR / "js").glob("*.js"):
        code = script.read_text()
        for banned in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert banned not in code, f"{script.name} uses {banned}"
        assert "http://" not in code and "https://" not in code, script.name
    assert (
        (STATIC_DIR / "vendor" / "chartjs" / "LICENSE.md").read_text().startswith("The MIT License")
    )


def test_data_is_shown_as_text_never_as_markup(tmp_path, browser, open_page):
    markup = '<img src=x onerror="window.__pwned=1">'
    seeds = [
        Seed(
            "xss-task",
            10,
            {
                "model_type": markup,
                "status": TaskStatus.FAILED,
                "error_category": "<b>category</b>",
                "error_message": "<script>window.__pwned=2</script>",
                "recovery_suggestions": ("<i>italic</i>",),
                "optimizations_applied": ("<u>opt</u>",),
            },
        )
    ]
    with running_service(tmp_path, seeds=seeds, running_task=False) as s:
        page = open_page()
        open_dashboard(page, s.url)
        row = page.locator("#tasks-table tbody tr").first
        assert markup in row.text_content()
        assert "<b>category</b>" in row.text_content()
        assert page.locator("#tasks-table img, #tasks-table b").count() == 0
        assert page.locator(f"#model-filter option[value='{markup}']").count() == 1
        page.click("#tasks-table tbody button")
        page.wait_for_selector("#task-dialog[open] #detail-failure")
        failure = page.locator("#detail-failure")
        assert failure.locator(".suggestions li").text_content() == "<i>italic</i>"
        assert (
            failure.locator(".error-message").text_content() == "<script>window.__pwned=2</script>"
        )
        assert (
            page.locator(
                "#task-dialog i, #task-dialog u, #task-dialog script, #task-dialog img"
            ).count()
            == 0
        )
        assert page.evaluate("window.__pwned") is None


def test_the_vendored_chart_library_is_served_with_its_licence(service):
    assert httpx.get(f"{service.url}/static/vendor/chartjs/chart.umd.min.js").status_code == 200
    licence = httpx.get(f"{service.url}/static/vendor/chartjs/LICENSE.md")
    assert licence.status_code == 200 and "MIT License" in licence.text
    assert Path(STATIC_DIR / "vendor" / "chartjs" / "README.md").exists()
