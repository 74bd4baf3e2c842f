"""True peaks between samples: the torch allocator's counters, reset per task and phase."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genperf.collectors import ProcessPeakMemory, TorchMemoryProbe
from genperf.monitor import PerformanceMonitor
from genperf.records import MIB
from genperf.testing import FakeCollector, FakeTorchCuda


@pytest.fixture
def cuda():
    return FakeTorchCuda()


@pytest.fixture
def gpu_monitor(settings, store, clock, cuda):
    m = PerformanceMonitor(
        settings,
        collectors=[FakeCollector({})],
        store=store,
        clock=clock,
        torch_probe=TorchMemoryProbe(cuda),
        process_memory=ProcessPeakMemory(reset_kernel_peak=True),  # exact per phase
    )
    yield m
    m.close()


def test_a_spike_between_samples_is_caught_per_phase_and_per_task(gpu_monitor, cuda, clock):
    cuda.allocate(9000 * MIB)  # left over from a previous task: must not count in this one
    cuda.free(9000 * MIB)
    with gpu_monitor.track("t", model_type="m", resolution="720p", steps=2) as task:
        with task.phase("denoise"):
            cuda.allocate(3000 * MIB)
            cuda.free(3000 * MIB)
        with task.phase("vae_decode"):
            cuda.allocate(100 * MIB)  # a 50 ms spike no 5 s sample would see
            cuda.free(100 * MIB)
            clock.advance(0.05)
    rec = task.record
    assert rec.phase("denoise").peak_vram_allocated_mb == pytest.approx(3000)
    assert rec.phase("vae_decode").peak_vram_allocated_mb == pytest.approx(100)
    # reserved memory is held by the allocator: 9000 MiB cached since before the task
    assert rec.peak_vram_reserved_mb == pytest.approx(9000)
    assert rec.peak_vram_usage_mb == pytest.approx(9000)
    assert cuda.resets >= 3  # task start and each phase boundary


def test_nested_phases_keep_the_outer_peak(gpu_monitor, cuda):
    with gpu_monitor.track("n", model_type="m", resolution="720p", steps=2) as task:
        with task.phase("generate"):
            cuda.allocate(500 * MIB)
            cuda.free(500 * MIB)
            with task.phase("denoise"):
                cuda.allocate(200 * MIB)
                cuda.free(200 * MIB)
    rec = task.record
    assert rec.phase("denoise").peak_vram_allocated_mb == pytest.approx(200)
    assert rec.phase("generate").peak_vram_allocated_mb == pytest.approx(500)


def test_process_wide_counters_are_not_reset_while_two_tasks_overlap(gpu_monitor, cuda):
    gpu_monitor.start_task_monitoring("a", "m", "720p", 2)
    with gpu_monitor.phase("a", "denoise"):
        cuda.allocate(700 * MIB)
        cuda.free(700 * MIB)
        resets_before = cuda.resets
        gpu_monitor.start_task_monitoring("b", "m", "720p", 2)  # a is no longer alone
        with gpu_monitor.phase("b", "denoise"):
            pass
        assert cuda.resets == resets_before  # b's phase must not wipe a's counters
    a = gpu_monitor.complete_task_monitoring("a")
    b = gpu_monitor.complete_task_monitoring("b")
    assert a.phase("denoise").peak_vram_allocated_mb == pytest.approx(700)  # read before b began
    assert b.phase("denoise").peak_vram_allocated_mb is None  # honest: not measurable alone


def test_process_peak_rss_per_phase_on_linux(gpu_monitor):
    with gpu_monitor.track("rss", model_type="m", resolution="720p", steps=1) as task:
        with task.phase("vae_decode"):
            block = bytearray(300 * MIB)
            block[::4096] = b"x" * len(block[::4096])  # touch every page
            del block
    rec = task.record
    peak = rec.phase("vae_decode").peak_ram_mb
    assert peak is not None and peak >= 300
    assert rec.peak_process_rss_mb >= 300


def test_a_phase_vram_peak_is_the_allocator_reserved_peak(gpu_monitor, cuda):
    """What the GPU really holds in a phase is the allocator's reserved peak (its cache
    included), not the allocated one; no sample saw either here."""
    cuda.allocate(4000 * MIB)
    cuda.free(4000 * MIB)  # 4000 MiB stay reserved (cached) by the allocator
    with gpu_monitor.track("r", model_type="m", resolution="720p", steps=2) as task:
        with task.phase("denoise"):
            cuda.allocate(1500 * MIB)
            cuda.free(1500 * MIB)
    phase = task.record.phase("denoise")
    assert phase.peak_vram_allocated_mb == pytest.approx(1500)
    assert phase.peak_vram_mb == pytest.approx(4000)


# A process that peaks at ~300 MiB more than it holds, then runs a monitored task with phases,
# and prints its own ru_maxrss (KiB) before the task, after it, and after the monitor closed,
# then its VmHWM (KiB) after the task.
_RU_MAXRSS_AFTER_A_TASK = """
import resource, sys, tempfile
from pathlib import Path
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.storage import MemoryStore

block = bytearray(300 * 2**20)
block[::4096] = b"x" * len(block[::4096])  # every page resident
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
settings = Settings(
    data_dir=Path(tempfile.mkdtemp()),
    monitoring_interval_seconds=3600.0,
    reset_peak_rss=sys.argv[1] == "reset",
)
monitor = PerformanceMonitor(settings, store=MemoryStore())
with monitor.track("t", model_type="m", steps=1) as task:
    with task.phase("denoise"):
        pass
    with task.phase("vae_decode"):
        pass
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hwm = next(
    line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")
)
monitor.close()
closed = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, closed, hwm)
"""


def _ru_maxrss_around_a_task(mode: str) -> tuple[int, int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _RU_MAXRSS_AFTER_A_TASK, mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    before, after, closed, hwm = (int(v) for v in out)
    return before, after, closed, hwm


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_the_process_peak_rss_other_tools_read_is_left_intact():
    before, after, closed, hwm = _ru_maxrss_around_a_task("mark")
    assert after >= before
    assert closed >= before
    assert hwm >= 300 * 1024  # KiB: the 300 MiB block's peak is still the process's peak


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_resetting_the_kernel_peak_is_a_choice_and_it_lowers_the_process_peak():
    _, _, _, hwm = _ru_maxrss_around_a_task("reset")
    # KiB: the 300 MiB block's peak is gone from VmHWM (and from ru_maxrss, unless a thread of
    # the process exited in between, or the image it was exec'd from was bigger: the kernel
    # keeps those peaks in ru_maxrss).
    assert hwm < 250 * 1024
