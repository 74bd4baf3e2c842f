"""A task's node and GPU: the monitor's by default (its node name, the GPU it is pinned to),
or what the caller says for a generation that runs elsewhere."""

from __future__ import annotations

import pytest

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.storage.memory import MemoryStore
from genperf.testing import FakeCollector


def _monitor(settings: Settings) -> PerformanceMonitor:
    return PerformanceMonitor(
        settings, collectors=[FakeCollector(dict, name="none")], store=MemoryStore()
    )


def test_node_and_gpu_default_to_the_monitors(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    m = _monitor(Settings(data_dir=tmp_path, node_name="gpu-a", gpu_index=2))
    try:
        record = m.start_task_monitoring("t1", "wan", "480p", 4)
        assert (record.node, record.gpu_index) == ("gpu-a", 2)
        done = m.complete_task_monitoring("t1")
        assert (done.node, done.gpu_index) == ("gpu-a", 2)
    finally:
        m.close()


@pytest.mark.parametrize(("visible", "expected"), [("1", 1), ("0,1", None), ("GPU-5f2a", None)])
def test_the_gpu_is_the_one_cuda_visible_devices_pins(tmp_path, monkeypatch, visible, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    m = _monitor(Settings(data_dir=tmp_path, node_name="gpu-a"))
    try:
        assert m.start_task_monitoring("t1", "wan", "480p", 4).gpu_index == expected
    finally:
        m.close()


def test_a_caller_names_the_node_and_gpu_of_a_generation_elsewhere(tmp_path):
    m = _monitor(Settings(data_dir=tmp_path, node_name="gpu-a", gpu_index=0))
    try:
        record = m.start_task_monitoring(
            "t1", "wan", "480p", 4, runs_in="elsewhere", node="gpu-b", gpu_index=5
        )
        assert (record.node, record.gpu_index) == ("gpu-b", 5)
    finally:
        m.close()
