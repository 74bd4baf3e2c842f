"""Auto-tune's choice from predictions, and what it retries with after an out-of-memory."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from history_support import history, record

from genperf.config import Settings
from genperf.generation.presets import PRESETS, available, preset
from genperf.generation.request import GenerationRequest
from genperf.generation.tuning import choose, next_lighter
from genperf.monitor import PerformanceMonitor
from genperf.prediction import Workload
from genperf.records import ErrorCategory, TaskStatus
from genperf.storage import MemoryStore


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[PerformanceMonitor]:
    settings = Settings(data_dir=tmp_path, monitoring_interval_seconds=3600.0)
    m = PerformanceMonitor(settings, collectors=[], store=MemoryStore())
    yield m
    m.close()


def request(headroom: int | None, **over) -> GenerationRequest:
    fields = {
        "task_id": "t1",
        "model_type": "tiny-wan-t2v",
        "prompt": "p",
        "width": 384,
        "height": 256,
        "frames": 17,
        "steps": 4,
        "memory_headroom_mib": headroom,
    }
    fields.update(over)
    return GenerationRequest(**fields)


def test_the_fastest_preset_that_fits_is_chosen(monitor):
    for r in history(tiling=(False, True), noise=0.002):
        monitor.store.save_task(dataclasses.replace(r, node=monitor.node))
    # 384x256x17: the law adds about 196 MiB without tiling, 129 MiB with it (above the load).
    roomy = choose(monitor, request(1024), available(False))
    assert roomy.preset.name == "default"
    assert "fastest preset predicted to fit 1024 MiB" in roomy.reason
    tight = choose(monitor, request(150), available(False))
    assert tight.preset.name == "vae_tiling"
    assert "predicted not to fit: default" in tight.reason
    hopeless = choose(monitor, request(20), available(False))
    assert hopeless.preset.name == "vae_tiling+vae_slicing"
    assert "the lightest preset; no preset is predicted to fit 20 MiB" in hopeless.reason


def test_without_history_it_runs_as_configured_and_says_what_would_help(monitor):
    choice = choose(monitor, request(256), available(False))
    assert choice.preset is None
    assert "genperf tune" in choice.reason


def test_a_configuration_that_ran_out_of_memory_is_not_run_that_way_again(monitor):
    for r in history(tiling=(False, True), noise=0.002):
        monitor.store.save_task(dataclasses.replace(r, node=monitor.node))
    oom = record(
        Workload(384, 256, 17, 4),
        status=TaskStatus.FAILED,
        error_category=ErrorCategory.OUT_OF_MEMORY_HOST.value,
        node=monitor.node,
        run_id=uuid.uuid4().hex,
    )
    monitor.store.save_task(oom)
    choice = choose(monitor, request(1024), available(False))
    assert choice.preset.name == "vae_tiling"
    assert "default" in choice.reason.split("predicted not to fit:")[1]


def test_an_out_of_memory_retries_with_the_next_preset_that_saves_memory():
    cpu = available(False)
    assert next_lighter(None, cpu) == preset("vae_tiling")  # slicing alone: one video, no help
    assert next_lighter("vae_tiling", cpu) is None
    assert next_lighter("vae_tiling", PRESETS) == preset("model_offload")
    assert next_lighter("sequential_offload", PRESETS) is None
