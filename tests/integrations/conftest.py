"""The real tiny Wan2.2 pipeline (built once per session, offline) and a monitor to watch it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.storage import MemoryStore

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from genperf.generation.tiny_wan import ensure_tiny_wan

    # Where tests/generation's session data dir keeps it: built once for both.
    return ensure_tiny_wan(tmp_path_factory.getbasetemp() / "genperf-data/models/tiny-wan-t2v")


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[PerformanceMonitor]:
    m = PerformanceMonitor(
        Settings(monitoring_interval_seconds=3600.0, data_dir=tmp_path), store=MemoryStore()
    )
    yield m
    m.close()


@pytest.fixture
def wan(tiny_wan_dir: Path) -> Any:
    """A freshly loaded (unmonitored) tiny WanPipeline."""
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(str(tiny_wan_dir), dtype=torch.float32, disable_mmap=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe
