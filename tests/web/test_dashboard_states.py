"""What the page says when there is nothing to show or it cannot get it, that it keeps
itself current, that it reads on a phone, and the README's screenshot."""

from __future__ import annotations

import json
import struct

from web_support import open_dashboard, running_service, take_screenshot

MESSAGE = "the database cannot be opened"


def test_an_empty_store_says_there_is_no_data_yet(tmp_path, browser, open_page):
    with running_service(tmp_path, seeds=None, running_task=False) as s:
        page = open_page()
        open_dashboard(page, s.url)
        assert page.get_attribute("body", "data-empty") == "true"
        empty = page.text_content("#empty-state")
        assert "No generations recorded in the last 24 hours yet" in empty
        for figure in ("#chart-success", "#chart-vram", "#chart-load"):
            assert page.get_attribute(figure, "data-points") == "0"
            assert page.is_visible(f"{figure} figcaption.empty")
            assert page.is_hidden(f"{figure} canvas")
        # the configured classes still show, each saying it has nothing yet
        classes = page.eval_on_selector_all(
            "#gentime-charts figure", "(fs) => fs.map((f) => f.dataset.class)"
        )
        assert classes == ["720p", "1080p"]
        assert (
            page.text_content('[data-class="720p"] figcaption.empty')
            == "No 720p tasks in this window."
        )
        assert page.is_visible("#tasks-empty") and page.is_visible("#running-empty")
        assert page.text_content('[data-kpi="success"] .kpi-value') == "—"
        assert page.is_hidden("#banner")


def test_an_unreachable_server_is_said_plainly(tmp_path, browser, open_page):
    with running_service(tmp_path, running_task=False) as s:
        page = open_page()
        open_dashboard(page, s.url)
        s.server.stop()
        page.click('#window-buttons [data-hours="1"]')
        page.wait_for_selector("#banner:not([hidden])")
        assert page.text_content("#banner-title") == "Cannot reach the genperf server."
        assert "Retrying every 5 s" in page.text_content("#banner-text")
        assert page.get_attribute("#live-indicator", "data-state") == "offline"
        assert page.get_attribute("body", "class") and "stale" in page.get_attribute(
            "body", "class"
        )


def test_the_page_recovers_when_the_server_answers_again(tmp_path, browser, open_page):
    with running_service(tmp_path, running_task=False) as s:
        page = open_page()
        open_dashboard(page, s.url)
        page.route("**/api/v1/performance/**", lambda route: route.abort("connectionrefused"))
        page.click('#window-buttons [data-hours="1"]')
        page.wait_for_selector("#banner:not([hidden])")
        page.unroute("**/api/v1/performance/**")
        page.wait_for_selector("#banner", state="hidden", timeout=15_000)
        assert page.get_attribute("#live-indicator", "data-state") == "live"


def test_a_server_error_shows_the_servers_message(tmp_path, browser, open_page):
    with running_service(tmp_path, running_task=False) as s:
        page = open_page()
        open_dashboard(page, s.url)
        body = json.dumps(
            {"error": {"code": "store_unavailable", "message": MESSAGE, "field": None}}
        )
        page.route(
            "**/api/v1/performance/analysis**",
            lambda route: route.fulfill(status=503, body=body, content_type="application/json"),
        )
        page.click('#window-buttons [data-hours="1"]')
        page.wait_for_selector("#banner:not([hidden])")
        assert page.text_content("#banner-title") == "The server answered 503."
        assert page.text_content("#banner-text") == MESSAGE


def test_live_status_refreshes_by_itself(tmp_path, browser, open_page):
    with running_service(tmp_path, seeds=None, running_task=False, interval_seconds=0.5) as s:
        page = open_page()
        open_dashboard(page, s.url)
        assert "42%" in page.text_content('[data-metric="cpu"] .tile-value')
        s.readings.cpu_percent = 77.0
        s.readings.gpu0_util = 12.0
        page.wait_for_function(
            "() => document.querySelector('[data-metric=cpu] .tile-value').textContent === '77%'",
            timeout=10_000,
        )
        assert "12%" in page.text_content('[data-metric="gpu-0-util"]')


def test_it_reads_on_a_phone(service, open_page):
    page = open_page(width=390, height=844, is_mobile=True, has_touch=True, device_scale_factor=2)
    open_dashboard(page, service.url)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing pushes the page sideways; wide tables scroll in their box
    boxes = page.eval_on_selector_all(
        "figure.chart canvas",
        "(cs) => cs.filter((c) => c.offsetParent).map((c) => c.getBoundingClientRect().width)",
    )
    assert boxes and all(0 < w <= 390 for w in boxes)
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('#dashboard')).gridTemplateColumns"
    )
    assert len(columns.split()) == 1  # one column
    assert page.is_hidden("#tasks-table th.opt")
    page.click("#tasks-table tbody button >> nth=1")
    page.wait_for_selector("#task-dialog[open] #detail-overview")
    dialog = page.eval_on_selector("#task-dialog", "(d) => d.getBoundingClientRect().width")
    assert dialog <= 390


def test_the_screenshot_shows_the_dashboard(service, browser, tmp_path):
    path = tmp_path / "dashboard.png"
    take_screenshot(browser, service.url, path)
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width == 1440 and height > 1500
