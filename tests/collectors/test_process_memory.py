"""ProcessPeakMemory on this Linux: the peak follows a real allocation; it is marked, or reset
only when asked."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import pytest

from genperf.collectors import ProcessPeakMemory

MIB = 2**20

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


@linux_only
def test_peak_rises_with_an_allocation_and_comes_down_after_a_kernel_reset() -> None:
    peak = ProcessPeakMemory(reset_kernel_peak=True)
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
    peak = ProcessPeakMemory(proc_self=tmp_path / "missing", reset_kernel_peak=True)
    assert peak.reset() is False  # nothing to reset: the lifetime peak is only marked
    assert peak.peak_bytes() is None  # and has not risen since
    peak = ProcessPeakMemory(proc_self=tmp_path / "missing")
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


def _status(folder: Path, hwm_kib: int) -> None:
    (folder / "status").write_text(f"Name:\tpython\nVmHWM:\t{hwm_kib} kB\n")


def test_by_default_a_reset_only_marks_the_peak_and_a_new_peak_above_it_is_exact(
    tmp_path: Path,
) -> None:
    _status(tmp_path, 2048)
    peak = ProcessPeakMemory(proc_self=tmp_path)
    assert peak.peak_bytes() == 2 * MIB  # before any mark: the lifetime peak
    assert peak.reset() is False
    assert not (tmp_path / "clear_refs").exists()  # the kernel's peak was left alone
    assert peak.peak_bytes() is None  # nothing above the mark yet: not known exactly
    _status(tmp_path, 3072)
    assert peak.peak_bytes() == 3 * MIB  # rose above the mark: this is the peak since
    peak.reset()
    assert peak.peak_bytes() is None


def test_a_kernel_reset_is_asked_for_by_setting(tmp_path: Path) -> None:
    _status(tmp_path, 2048)
    (tmp_path / "clear_refs").write_text("")
    peak = ProcessPeakMemory(proc_self=tmp_path, reset_kernel_peak=True)
    assert peak.reset() is True
    assert (tmp_path / "clear_refs").read_text() == "5"
    assert peak.peak_bytes() == 2 * MIB  # after a kernel reset every reading is since then


@linux_only
def test_after_a_fork_the_child_reads_its_own_peak_not_its_parents() -> None:
    """The status file stays open between reads; a forked child must not read the parent's."""
    peak = ProcessPeakMemory()
    parent = peak.peak_bytes()  # opens /proc/self/status: the parent's
    assert parent is not None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: grow well past the parent's peak, then read through `peak`
        try:
            block = b"\x01" * (parent + 100 * MIB)
            got = peak.peak_bytes() or 0
            os.write(write_end, str(got).encode() + b" " + str(len(block)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        got, grown = map(int, answer.read().split())
    os.waitpid(pid, 0)
    assert got >= grown  # the child's own high-water mark, above anything the parent reached
    assert (peak.peak_bytes() or 0) < grown  # and the parent still reads its own
