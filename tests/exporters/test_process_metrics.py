"""An agent's own metrics listener (``serve_process_metrics``): a real monitor (real psutil),
a real HTTP listener on loopback, the bearer token, OpenMetrics on request, its node on every
series and no task family (those come from the API process only)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from genperf.collectors import HostCollector
from genperf.config import Settings
from genperf.exporters.process_metrics import (
    MetricsListener,
    ProcessExposition,
    serve_process_metrics,
)
from genperf.monitor import PerformanceMonitor
from genperf.records import GpuReading, SystemSample, utc_now
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


class _Monitor:
    """A monitor whose latest sample the test sets (what ProcessExposition reads)."""

    node = "gpu-9"

    def __init__(self) -> None:
        self.sample = self.take(10.0)
        self.scrapes = 0

    @staticmethod
    def take(cpu: float) -> SystemSample:
        gpu = GpuReading(index=0, name="H200", temperature_celsius=cpu, throttle_reasons=())
        return SystemSample(taken_at=utc_now(), node="gpu-9", cpu_percent=cpu, gpus=(gpu,))

    def current_sample(self) -> SystemSample:
        return self.sample

    def self_stats(self) -> dict[str, float | int]:
        self.scrapes += 1
        return {"samples_taken": self.scrapes}


@pytest.mark.parametrize("openmetrics", [False, True])
def test_a_new_sample_shows_at_the_next_scrape_and_the_rest_is_read_at_every_one(openmetrics):
    monitor = _Monitor()
    clock = [monitor.sample.taken_at.timestamp() + 1.0]
    families = ProcessExposition(monitor, version="9.9", wall_time=lambda: clock[0])

    def scrape() -> dict[str, float]:
        text = families.exposition(openmetrics).decode()
        if openmetrics:
            assert text.count("# EOF") == 1 and text.endswith("# EOF\n")
            parsed = list(openmetrics_families(text))
        else:
            parsed = list(text_string_to_metric_families(text))
        return {s.name: s.value for f in parsed for s in f.samples}

    first = scrape()
    assert first["genperf_host_cpu_percent"] == 10.0
    assert first["genperf_gpu_temperature_celsius"] == 10.0
    assert first["genperf_sample_age_seconds"] == 1.0
    clock[0] += 4.0  # the same sample, older: its age and the monitor's health are live
    second = scrape()
    assert second["genperf_sample_age_seconds"] == 5.0
    assert second["genperf_monitor_samples_total"] == first["genperf_monitor_samples_total"] + 1
    monitor.sample = monitor.take(55.0)  # a new sample: its gauges at the very next scrape
    third = scrape()
    assert third["genperf_host_cpu_percent"] == 55.0
    assert third["genperf_gpu_temperature_celsius"] == 55.0
    assert third["genperf_gpu_thermal_throttled"] == 0.0


def test_the_token_may_be_given_as_its_digest(monitor):
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    served = serve_process_metrics(monitor, "127.0.0.1", 0, f"sha256:{digest.upper()}")
    try:
        assert _get(served, Authorization=f"Bearer {TOKEN}").status_code == 200
        assert _get(served, Authorization=f"Bearer sha256:{digest}").status_code == 401
        assert _get(served, Authorization=f"Basic {TOKEN}").status_code == 401
    finally:
        served.close()
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        serve_process_metrics(monitor, "127.0.0.1", 0, "sha256:abc")
