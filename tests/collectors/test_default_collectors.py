"""default_collectors: host always, NVML when GPU monitoring is enabled."""

from __future__ import annotations

from pathlib import Path

from genperf.collectors import Collector, HostCollector, NvmlCollector, default_collectors
from genperf.config import Settings


def test_host_and_nvml_by_default(tmp_path: Path) -> None:
    collectors = default_collectors(Settings(data_dir=tmp_path))
    assert [type(c) for c in collectors] == [HostCollector, NvmlCollector]
    assert all(isinstance(c, Collector) for c in collectors)
    assert collectors[0].collect()["disk_path"] == str(tmp_path)


def test_the_model_dir_is_the_watched_disk(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (host, _) = default_collectors(Settings(data_dir=tmp_path / "data", model_dir=models))
    assert host.collect()["disk_path"] == str(models)


def test_gpu_monitoring_can_be_turned_off(tmp_path: Path) -> None:
    collectors = default_collectors(Settings(data_dir=tmp_path, enable_gpu_monitoring=False))
    assert [type(c) for c in collectors] == [HostCollector]
