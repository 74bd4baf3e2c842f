from __future__ import annotations

import pytest

from genperf.collectors import ProcessPeakMemory, TorchMemoryProbe
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.records import MIB, GpuReading
from genperf.storage import MemoryStore
from genperf.testing import FakeCollector, FakeTorchCuda, ManualClock


class ScriptedReadings:
    """Host and GPU readings a test can change between samples."""

    def __init__(self) -> None:
        self.cpu = 10.0
        self.ram_mb = 1000.0
        self.vram_mb = 2000.0
        self.gpu_util = 50.0
        self.gpu_temp = 60.0
        self.throttle: tuple[str, ...] = ()

    def __call__(self) -> dict[str, object]:
        return {
            "cpu_percent": self.cpu,
            "ram_used_bytes": int(self.ram_mb * MIB),
            "ram_total_bytes": 16000 * MIB,
            "process_rss_bytes": 500 * MIB,
            "gpus": (
                GpuReading(
                    index=0,
                    memory_used_bytes=int(self.vram_mb * MIB),
                    memory_total_bytes=8000 * MIB,
                    utilization_percent=self.gpu_util,
                    temperature_celsius=self.gpu_temp,
                    throttle_reasons=self.throttle,
                ),
            ),
        }


@pytest.fixture
def readings() -> ScriptedReadings:
    return ScriptedReadings()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def settings(tmp_path) -> Settings:
    # A long interval: tests drive samples by hand through monitor._sampler.sample_once().
    return Settings(monitoring_interval_seconds=3600.0, data_dir=tmp_path)


@pytest.fixture
def monitor(settings, store, clock, readings):
    m = PerformanceMonitor(
        settings,
        collectors=[FakeCollector(readings, name="scripted")],
        store=store,
        clock=clock,
        torch_probe=TorchMemoryProbe(FakeTorchCuda(available=False)),
        process_memory=ProcessPeakMemory(),
    )
    yield m
    m.close()
