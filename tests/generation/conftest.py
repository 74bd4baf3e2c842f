"""The generation service on a real SQLite file, with the real tiny Wan2.2 model (built once
per session into a shared data directory, offline, as on first use in production)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from genperf.config import Settings
from genperf.generation import TINY_WAN, GenerationService, ModelRegistry
from genperf.monitor import PerformanceMonitor


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose models/ holds the built-in tiny model (built on first use)."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    path = tmp_path_factory.getbasetemp() / "genperf-data"
    ModelRegistry(Settings(data_dir=path)).ensure_ready(TINY_WAN)
    return path


@pytest.fixture
def settings(data_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{tmp_path / 'genperf.db'}",
        monitoring_interval_seconds=0.5,
        node_name="gen-node",
    )


@pytest.fixture
def monitor(settings: Settings) -> Iterator[PerformanceMonitor]:
    m = PerformanceMonitor(settings)
    yield m
    m.close()


@pytest.fixture
def service(monitor: PerformanceMonitor) -> Iterator[GenerationService]:
    svc = GenerationService(monitor, poll_seconds=0.1)
    svc.start()
    yield svc
    svc.close()
