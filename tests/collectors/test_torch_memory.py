"""TorchMemoryProbe with the real CPU-only torch here, and a small fake torch for CUDA."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from typing import Any

import pytest

from genperf.collectors import TorchMemoryProbe

MIB = 2**20


class FakeCuda:
    """torch.cuda as the probe uses it: two devices with allocator counters."""

    def __init__(self, devices: int = 2, *, initialized: bool = True) -> None:
        self.initialized = initialized
        self.allocated = [100 * MIB * (d + 1) for d in range(devices)]
        self.reserved = [a + 64 * MIB for a in self.allocated]
        self.peak_allocated = [a * 3 for a in self.allocated]
        self.peak_reserved = [r * 3 for r in self.reserved]
        self.resets: list[int] = []
        self.error: Exception | None = None

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return self.initialized

    def device_count(self) -> int:
        return len(self.allocated)

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def reset_peak_memory_stats(self, device: int) -> None:
        self._check()
        self.resets.append(device)
        self.peak_allocated[device] = self.allocated[device]
        self.peak_reserved[device] = self.reserved[device]

    def max_memory_allocated(self, device: int) -> int:
        self._check()
        return self.peak_allocated[device]

    def max_memory_reserved(self, device: int) -> int:
        self._check()
        return self.peak_reserved[device]

    def memory_allocated(self, device: int) -> int:
        self._check()
        return self.allocated[device]

    def memory_reserved(self, device: int) -> int:
        self._check()
        return self.reserved[device]


def fake_torch(cuda: Any) -> types.ModuleType:
    module = types.ModuleType("torch")
    module.cuda = cuda  # type: ignore[attr-defined]
    return module


def test_cpu_only_torch_is_unavailable_without_errors() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    probe = TorchMemoryProbe(torch)
    assert not probe.available
    assert probe.reset_peak() is False
    assert probe.peak() is None
    assert probe.current() is None


def test_peaks_and_current_are_summed_over_devices() -> None:
    cuda = FakeCuda()
    probe = TorchMemoryProbe(fake_torch(cuda))
    assert probe.available
    assert probe.current() == (300 * MIB, 300 * MIB + 128 * MIB)
    assert probe.peak() == (900 * MIB, 3 * (300 * MIB + 128 * MIB))


def test_reset_starts_the_peaks_from_now_on_every_device() -> None:
    cuda = FakeCuda()
    probe = TorchMemoryProbe(fake_torch(cuda))
    assert probe.reset_peak() is True
    assert cuda.resets == [0, 1]
    assert probe.peak() == probe.current()
    cuda.peak_allocated[1] += 500 * MIB  # a spike between two samples still counts
    assert probe.peak() == (800 * MIB, 300 * MIB + 128 * MIB)


def test_before_cuda_starts_nothing_is_touched_and_nothing_is_allocated() -> None:
    cuda = FakeCuda(initialized=False)
    probe = TorchMemoryProbe(fake_torch(cuda))
    assert probe.available
    assert probe.reset_peak() is True
    assert cuda.resets == []  # would create no context, but there is nothing to reset either
    assert probe.peak() == (0, 0)
    assert probe.current() == (0, 0)
    cuda.initialized = True
    assert probe.peak() == (900 * MIB, 3 * (300 * MIB + 128 * MIB))


def test_a_failing_allocator_gives_unknown_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cuda = FakeCuda()
    cuda.error = RuntimeError("CUDA error: an illegal memory access was encountered")
    probe = TorchMemoryProbe(fake_torch(cuda))
    with caplog.at_level(logging.WARNING, logger="genperf.collectors.torch_memory"):
        assert probe.peak() is None
        assert probe.current() is None
        assert probe.reset_peak() is False
    assert len(caplog.records) == 1
    assert "illegal memory access" in caplog.text


def test_a_torch_imported_later_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    probe = TorchMemoryProbe()
    seen = []
    seen.append(probe.available)
    assert probe.peak() is None
    half_imported = types.ModuleType("torch")  # another thread is still importing it
    monkeypatch.setitem(sys.modules, "torch", half_imported)
    seen.append(probe.available)
    half_imported.cuda = FakeCuda()  # type: ignore[attr-defined]
    seen.append(probe.available)
    assert seen == [False, False, True]
    assert probe.peak() == (900 * MIB, 3 * (300 * MIB + 128 * MIB))


def test_is_available_is_asked_once() -> None:
    cuda = FakeCuda()
    asked: list[int] = []

    def no_cuda() -> bool:
        asked.append(1)
        return False

    cuda.is_available = no_cuda  # type: ignore[method-assign]
    probe = TorchMemoryProbe(fake_torch(cuda))
    for _ in range(3):
        assert not probe.available
        assert probe.peak() is None
    assert asked == [1]


def test_genperf_does_not_import_torch() -> None:
    code = (
        "import sys, genperf, genperf.collectors as c\n"
        "p = c.TorchMemoryProbe()\n"
        "assert not p.available and p.peak() is None and p.reset_peak() is False\n"
        "c.default_collectors\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
