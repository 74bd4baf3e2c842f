"""The parent's side of a generation in a worker subprocess: what it records when the child
sends nothing back (killed, stuck, crashed). The child here is a stand-in script; the real
child, really out of memory, is tested in test_generation_service.py."""

from __future__ import annotations

import json
import stat

import pytest

from genperf.config import Settings
from genperf.generation import TINY_WAN, ModelRegistry
from genperf.generation.isolated import IsolatedRunner, child_fields
from genperf.generation.registry import ModelSpec
from genperf.generation.request import GenerationRequest
from genperf.monitor import PerformanceMonitor
from genperf.records import ErrorCategory, TaskStatus
from genperf.storage import MemoryStore


class ReadyRegistry(ModelRegistry):
    """Resolves without building anything: the stand-in child never loads a model."""

    def ensure_ready(self, model_type: str) -> ModelSpec:
        return self.resolve(model_type)


@pytest.fixture
def monitor(tmp_path):
    m = PerformanceMonitor(
        Settings(monitoring_interval_seconds=3600.0, data_dir=tmp_path), store=MemoryStore()
    )
    yield m
    m.close()


def _fake_python(tmp_path, body: str) -> str:
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\ncat > /dev/null\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def _run(monitor, tmp_path, body, timeout=30.0):
    runner = IsolatedRunner(
        monitor,
        ReadyRegistry(monitor.settings),
        timeout_seconds=timeout,
        python=_fake_python(tmp_path, body),
    )
    request = GenerationRequest("iso", TINY_WAN, "p", 832, 480, 4, 17, 64)
    runs = []
    record = runner.run(request, runs.append)
    assert runs == [record.run_id]
    return record


def test_a_child_killed_by_the_oom_killer_is_host_out_of_memory(monitor, tmp_path):
    record = _run(
        monitor,
        tmp_path,
        'echo \'{"event": "phase", "name": "denoise"}\'\n'
        'echo \'{"event": "phase", "name": "vae_decode"}\'\n'
        "kill -9 $$\n",
    )
    assert record.status is TaskStatus.FAILED
    assert record.error_category == ErrorCategory.OUT_OF_MEMORY_HOST.value
    assert record.failed_phase == "vae_decode"
    assert "SIGKILL (exit code 137)" in record.error_message
    assert record.recovery_suggestions
    assert (record.resolution, record.steps, record.frames) == ("832x480", 4, 17)


def test_a_stuck_child_is_stopped_and_recorded_as_a_timeout(monitor, tmp_path):
    record = _run(
        monitor,
        tmp_path,
        'echo \'{"event": "phase", "name": "denoise"}\'\nexec sleep 30\n',
        timeout=1.0,
    )
    assert record.error_category == ErrorCategory.TIMEOUT.value
    assert record.failed_phase == "denoise"


def test_a_child_that_crashes_before_its_task_says_why(monitor, tmp_path):
    record = _run(monitor, tmp_path, "echo 'ImportError: no torch here' >&2\nexit 2\n")
    assert record.status is TaskStatus.FAILED
    assert "status 2" in record.error_message and "no torch here" in record.error_message
    assert record.failed_phase is None


def test_the_childs_record_is_copied_into_the_parents_task(monitor, tmp_path):
    child = {
        "status": "failed",
        "generation_time_seconds": 3.5,
        "model_load_time_seconds": 0.3,
        "weights_memory_mapped": False,
        "phases": [
            {"name": "model_load", "started_offset_seconds": 0.0, "duration_seconds": 0.3},
            {
                "name": "vae_decode",
                "started_offset_seconds": 3.0,
                "duration_seconds": 0.5,
                "peak_ram_mb": 1400.0,
                "failed": True,
            },
        ],
        "step_times_seconds": [0.5, 0.4],
        "optimizations_applied": ["attention:sdpa"],
        "peak_process_rss_mb": 1400.0,
        "error_message": "RuntimeError: DefaultCPUAllocator: can't allocate memory",
        "error_category": "out_of_memory_host",
        "failed_phase": "vae_decode",
        "prompt_like_junk": "never copied",
    }
    message = tmp_path / "record.json"
    message.write_text(json.dumps({"event": "record", "record": child}) + "\n")
    record = _run(monitor, tmp_path, f"cat {message}\nexit 1\n")
    assert record.error_category == "out_of_memory_host"
    assert record.failed_phase == "vae_decode"
    assert record.generation_time_seconds == 3.5
    assert [p.name for p in record.phases] == ["model_load", "vae_decode"]
    assert record.phases[1].failed and record.phases[1].peak_ram_mb == 1400.0
    assert record.step_times_seconds == (0.5, 0.4)
    assert record.peak_process_rss_mb >= 1400.0
    assert any("tiling" in s for s in record.recovery_suggestions)
    assert "prompt_like_junk" not in child_fields(child)
