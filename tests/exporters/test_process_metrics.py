"""An agent's own metrics listener (``serve_process_metrics``): a real monitor (real psutil),
a real HTTP listener on loopback, the bearer token, OpenMetrics on request, its node on every
series and no task family (those come from the API process only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from genperf.collectors import HostCollector
from genperf.config import Settings
from genperf.exporters.process_metrics import MetricsListener, serve_process_metrics
from genperf.monitor import PerformanceMonitor
from genperf.storage import MemoryStore

TOKEN = "agent-metrics-token-0123456789"


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[PerformanceMonitor]:
    settings = Settings(data_dir=tmp_path, node_name="gpu-7", monitoring_interval_seconds=3600)
    m = PerformanceMonitor(settings, collectors=[HostCollector(tmp_path)], store=MemoryStore())
    yield m
    m.close()


@pytest.fixture
def listener(monitor: PerformanceMonitor) -> Iterator[MetricsListener]:
    served = serve_process_metrics(monitor, "127.0.0.1", 0, TOKEN)
    yield served
    served.close()


def _get(listener: MetricsListener, **headers: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{listener.port}/metrics", headers=headers, timeout=10)


def test_a_scrape_needs_the_bearer_token(listener):
    assert _get(listener).status_code == 401
    assert _get(listener, Authorization="Bearer wrong-token").status_code == 401
    assert _get(listener, Authorization=f"Bearer {TOKEN}").status_code == 200


def test_every_series_names_the_node_and_no_task_family_is_exported(listener, monitor):
    with monitor.track("t-1", model_type="t2v-A14B"):
        pass
    text = _get(listener, Authorization=f"Bearer {TOKEN}").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "genperf_host_ram_used_bytes" in families
    assert families["genperf_monitor_tasks_running"].samples[0].value == 0
    for family in families.values():
        for s in family.samples:
            assert s.labels.get("node") == "gpu-7", s
    # The database's task families are the API's alone: nothing an agent could double count.
    assert not any(name.startswith(("genperf_task", "genperf_tasks")) for name in families)


def test_openmetrics_when_the_scraper_asks_for_it(listener):
    r = _get(listener, Authorization=f"Bearer {TOKEN}", Accept="application/openmetrics-text")
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")


def test_elsewhere_than_loopback_it_refuses_to_serve_without_a_token(monitor):
    with pytest.raises(ValueError, match="token"):
        serve_process_metrics(monitor, "0.0.0.0", 0, None)
    with pytest.raises(ValueError, match="token"):
        serve_process_metrics(monitor, "127.0.0.1", 0, "  ")
    with pytest.raises(ValueError, match="port"):
        serve_process_metrics(monitor, "127.0.0.1", 70000, TOKEN)


def test_close_releases_the_port(monitor):
    served = serve_process_metrics(monitor)  # loopback, no token: allowed there
    port = served.port
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
    served.close()
    served.close()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
