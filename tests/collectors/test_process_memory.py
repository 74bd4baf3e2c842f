"""ProcessPeakMemory on this Linux: the peak follows a real allocation and resets."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import pytest

from genperf.collectors import ProcessPeakMemory

MIB = 2**20

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


@linux_only
def test_peak_rises_with_an_allocation_and_comes_down_after_a_reset() -> None:
    peak = ProcessPeakMemory()
    assert peak.reset() is True
    before = peak.peak_bytes()
    assert before is not None
    block = b"\x01" * (200 * MIB)  # filled, so every page is resident
    during = peak.peak_bytes()
    assert during is not None
    assert during >= before + 190 * MIB
    del block
    kept = peak.peak_bytes()  # a peak stays until reset (the kernel settles it lazily: ~pages)
    assert kept is not None
    assert kept >= during - MIB
    assert peak.reset() is True
    after = peak.peak_bytes()
    assert after is not None
    assert after <= during - 150 * MIB


def test_without_proc_it_falls_back_to_getrusage(tmp_path: Path) -> None:
    peak = ProcessPeakMemory(proc_self=tmp_path / "missing")
    assert peak.reset() is False
    lifetime = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    expected = lifetime if sys.platform == "darwin" else lifetime * 1024
    got = peak.peak_bytes()
    assert got is not None
    assert got >= expected


def test_a_status_without_vmhwm_falls_back_to_getrusage(tmp_path: Path) -> None:
    (tmp_path / "status").write_text("Name:\tpython\nVmRSS:\t  1000 kB\n")
    got = ProcessPeakMemory(proc_self=tmp_path).peak_bytes()
    assert got is not None
    assert got > 10 * MIB


def test_vmhwm_is_read_in_bytes(tmp_path: Path) -> None:
    (tmp_path / "status").write_text("Name:\tpython\nVmPeak:\t 9999 kB\nVmHWM:\t   2048 kB\n")
    assert ProcessPeakMemory(proc_self=tmp_path).peak_bytes() == 2 * MIB
