"""``enable_gpu_monitoring: false`` is honoured and visible: no NVML call, and every status
(monitor, API, ``genperf status``) says why there is no GPU row."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from genperf.api import ApiSettings, create_app
from genperf.cli import render
from genperf.cli.source import LocalSource
from genperf.collectors import GPU_MONITORING_OFF, default_collectors, gpu_monitoring_state
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.storage import MemoryStore
from genperf.testing import FakeGpu, FakeNvml

pytest.importorskip("pynvml")


def settings(tmp_path: Path, enabled: bool) -> Settings:
    return Settings(
        data_dir=tmp_path, enable_gpu_monitoring=enabled, monitoring_interval_seconds=0.05
    )


def run_a_task(s: Settings, nvml: FakeNvml) -> PerformanceMonitor:
    monitor = PerformanceMonitor(
        s, collectors=default_collectors(s, nvml_module=nvml), store=MemoryStore()
    )
    with monitor:
        monitor.start_task_monitoring("t1", "tiny-wan", "64x64", steps=2)
        monitor.current_sample()
        monitor.complete_task_monitoring("t1", success=True)
    return monitor


def test_gpu_monitoring_off_makes_no_nvml_call(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu()])
    monitor = run_a_task(settings(tmp_path, enabled=False), nvml)
    assert nvml.calls == {}
    assert monitor.gpu_monitoring() == ("off", GPU_MONITORING_OFF)
    record = monitor.get_task_metrics("t1")
    assert record is not None and record.vram_total_mb is None


def test_gpu_monitoring_on_reads_nvml(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu()])
    monitor = run_a_task(settings(tmp_path, enabled=True), nvml)
    assert nvml.calls.get("nvmlInit", 0) >= 1
    assert nvml.calls.get("nvmlDeviceGetMemoryInfo", 0) >= 1
    assert monitor.gpu_monitoring() == ("on", None)


def test_nvml_that_cannot_start_says_why(tmp_path: Path) -> None:
    import pynvml

    nvml = FakeNvml(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    s = settings(tmp_path, enabled=True)
    state, why = gpu_monitoring_state(s, default_collectors(s, nvml_module=nvml))
    assert state == "unavailable"
    assert why is not None and "NVML cannot start" in why and "Driver" in why


def test_the_api_status_says_gpu_monitoring_is_off(tmp_path: Path) -> None:
    s = settings(tmp_path, enabled=False)
    nvml = FakeNvml([FakeGpu()])
    monitor = PerformanceMonitor(
        s, collectors=default_collectors(s, nvml_module=nvml), store=MemoryStore()
    )
    app = create_app(s, monitor=monitor, api_settings=ApiSettings(), environ={})
    try:
        with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 5000)) as c:
            body = c.get("/api/v1/performance/status").json()
    finally:
        monitor.close()
    assert body["monitoring"]["gpu_monitoring"] == "off"
    assert "enable_gpu_monitoring is false" in body["monitoring"]["gpu_monitoring_reason"]
    assert body["system"]["gpus"] == []
    assert nvml.calls == {}


def test_genperf_status_says_why_there_is_no_gpu_row(tmp_path: Path) -> None:
    source = LocalSource(settings(tmp_path, enabled=False), cpu_warmup_seconds=0)
    payload = source.status()
    source.close()
    assert payload["monitoring"]["gpu_monitoring"] == "off"
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render.status_view(payload))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "GPU monitoring off: enable_gpu_monitoring is false" in out
