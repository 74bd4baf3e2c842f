"""The dashboard says why there is no GPU: GPU monitoring off by the settings (and no NVML
call is made for it), from the server's /status."""

from __future__ import annotations

from web_support import LiveServer, open_dashboard

from genperf.api import ApiSettings, create_app
from genperf.collectors import default_collectors
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.testing import FakeGpu, FakeNvml


def test_the_dashboard_says_gpu_monitoring_is_off_and_why(tmp_path, browser, open_page):
    settings = Settings(
        data_dir=tmp_path,
        enable_gpu_monitoring=False,
        monitoring_interval_seconds=1.0,
        node_name="cpu-node",
    )
    nvml = FakeNvml([FakeGpu()])  # a GPU NVML would show, were it asked
    monitor = PerformanceMonitor(
        settings, collectors=default_collectors(settings, nvml_module=nvml)
    )
    app = create_app(
        settings, monitor=monitor, api_settings=ApiSettings(report_cache_seconds=0.0), environ={}
    )
    server = LiveServer(app).start()
    try:
        page = open_page()
        open_dashboard(page, server.url)
        page.wait_for_selector('#gpu-status [data-gpu-monitoring="off"]')
        text = page.text_content("#gpu-status") or ""
        assert "GPU monitoring off" in text
        assert "enable_gpu_monitoring is false" in text
        assert nvml.calls == {}
    finally:
        server.stop()
        monitor.close()
