"""End to end: real Prometheus scrapes a real genperf with a bearer token, evaluates the rules
``genperf rules`` wrote, and a breach made through genperf's API reaches a real Alertmanager,
then resolves when the breach ends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from stack_support import GIB, NODE, Stack, wait_for

P = "/api/v1/performance"
pytestmark = pytest.mark.slow


def _finish(stack: Stack, task_id: str, seconds: float, **complete: Any) -> None:
    """One 720p task reported through the API, taking ``seconds`` (the caller's own figure,
    as a client on another machine reports it)."""
    with stack.genperf() as client:
        start = {
            "task_id": task_id,
            "model_type": "t2v-A14B",
            "resolution": "1280x720",
            "generation_time_seconds": seconds,
        }
        assert client.post(f"{P}/tasks", json=start).status_code == 201
        assert client.post(f"{P}/tasks/{task_id}/complete", json=complete).status_code == 200


def _scraped_count(stack: Stack) -> float:
    result = stack.query(
        'sum(genperf_task_duration_seconds_count{job="genperf", resolution_class="720p"})'
    )
    return float(result[0]["value"][1]) if result else -1.0


def _active(stack: Stack, alertname: str) -> list[dict[str, Any]]:
    return [
        a
        for a in stack.alerts()
        if a["labels"]["alertname"] == alertname and a["status"]["state"] == "active"
    ]


def _notified(stack: Stack, alertname: str, status: str) -> bool:
    return any(
        alert["status"] == status and alert["labels"]["alertname"] == alertname
        for note in stack.received()
        for alert in note["alerts"]
    )


def test_prometheus_scrapes_genperf_with_the_token_and_names_the_node(stack):
    assert httpx.get(f"{stack.genperf_url}/metrics", timeout=5).status_code == 401
    up = wait_for("the first scrape", lambda: stack.query('up{job="genperf"} == 1'), stack)
    assert up[0]["metric"]["instance"] == NODE  # file_sd's __genperf_node, relabelled
    address = stack.genperf_url.removeprefix("http://")
    assert up[0]["metric"]["target"] == address  # the address, kept apart
    (info,) = stack.query(f'genperf_info{{instance="{NODE}"}}')
    assert info["metric"]["target"] == address
    assert info["metric"]["node"] == NODE


def test_a_generation_time_breach_fires_in_alertmanager_and_resolves(stack):
    # The histogram's series exist before the breach (a series that appears already at its
    # first task shows no increase for it: Prometheus has no earlier sample).
    _finish(stack, "warm-1", 10.0)
    wait_for("the first 720p task in Prometheus", lambda: _scraped_count(stack) >= 1, stack)
    alert = "GenperfGenerationTimeOverTarget"
    assert not _active(stack, alert)

    # The breach: three 720p tasks over the 300 s target (within 450 s, so only "target").
    for i in range(3):
        _finish(stack, f"slow-{i}", 400.0)
    firing = wait_for("the alert in Alertmanager", lambda: _active(stack, alert), stack)
    labels = firing[0]["labels"]
    assert labels["resolution_class"] == "720p"
    assert labels["severity"] == "warning"
    assert "300 s" in firing[0]["annotations"]["summary"]
    wait_for("the firing notification", lambda: _notified(stack, alert, "firing"), stack)
    assert not _active(stack, "GenperfGenerationTimeOverAcceptable")

    # The breach ends: most tasks of the window are fast again, the median is under target.
    for i in range(7):
        _finish(stack, f"fast-{i}", 20.0)
    wait_for("the alert to resolve", lambda: not _active(stack, alert), stack)
    wait_for("the resolved notification", lambda: _notified(stack, alert, "resolved"), stack)


def test_gpu_memory_over_the_limit_fires_and_resolves(stack):
    alert = "GenperfVramOverLimit"
    stack.gpus[0].memory_used_bytes = 76 * GIB  # 95 % of 80 GiB, over max_vram_usage_percent 90
    firing = wait_for("the VRAM alert in Alertmanager", lambda: _active(stack, alert), stack)
    assert firing[0]["labels"]["gpu"] == "0"
    assert firing[0]["labels"]["instance"] == NODE
    # Alertmanager sends a resolved notification only for an alert it has notified as firing.
    wait_for("the firing notification", lambda: _notified(stack, alert, "firing"), stack)
    stack.gpus[0].memory_used_bytes = 40 * GIB
    wait_for("the VRAM alert to resolve", lambda: not _active(stack, alert), stack)
    wait_for("the resolved notification", lambda: _notified(stack, alert, "resolved"), stack)
