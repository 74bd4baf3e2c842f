"""This process's peak resident memory (RSS) since a mark, without changing what others see.

Linux keeps the peak in ``VmHWM`` of ``/proc/self/status``; elsewhere it comes from
``getrusage(RUSAGE_SELF).ru_maxrss``. Both are the peak since the process started.

By default :meth:`ProcessPeakMemory.reset` only remembers the current high-water mark: a peak
since then is known exactly when it rose above that mark (a task that needs more memory than any
before it), and is ``None`` (the sampled RSS stands in) when it did not. The process's own peak
stays intact, so ``ru_maxrss``, ``VmHWM`` and every tool reading them keep telling the truth.

With ``reset_kernel_peak=True`` (the ``reset_peak_rss`` setting) a reset writes "5" to
``/proc/self/clear_refs`` (Linux 4.0+), which sets ``VmHWM`` back to the current RSS: every phase
then has its exact peak, but ``ru_maxrss`` and ``VmHWM`` report the peak since the last reset,
not since the process started, to everyone (a service's own memory report included).

The peak is process-wide: tasks running at the same time in one process share it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from pathlib import Path

logger = logging.getLogger(__name__)


class ProcessPeakMemory:
    """Peak RSS of this process since the last :meth:`reset`, in bytes.

    Args:
        proc_self: the ``/proc/self`` directory to read (tests point it elsewhere).
        reset_kernel_peak: reset the kernel's peak (``clear_refs``) instead of marking it.
    """

    def __init__(
        self, proc_self: Path = Path("/proc/self"), *, reset_kernel_peak: bool = False
    ) -> None:
        self._status = proc_self / "status"
        self._clear_refs = proc_self / "clear_refs"
        self.reset_kernel_peak = reset_kernel_peak
        self._mark: int | None = None  # the high-water mark at the last reset; None: lifetime
        # The status file stays open: a task's start and completion each read it, and opening
        # it costs more than reading it again (pread from 0 makes the kernel write it anew).
        self._fd: int | None = None
        self._fd_pid = 0  # the process that opened it: after a fork it is the parent's file
        self._fd_lock = threading.Lock()

    def reset(self) -> bool:
        """Start a new peak. True when the kernel's peak was reset to the current RSS; False
        when the current peak was only marked (by choice, or where the OS does not allow it)."""
        if self.reset_kernel_peak and self._clear():
            self._mark = 0  # everything the kernel reports from now on is since the reset
            return True
        self._mark = self._high_water()
        return False

    def peak_bytes(self) -> int | None:
        """The peak RSS since the last :meth:`reset` (or since start); None if unknown, or
        if it stayed below the process's earlier peak (then it is not known exactly)."""
        peak = self._high_water()
        if peak is None or self._mark is None:
            return peak
        return peak if peak > self._mark else None

    def _clear(self) -> bool:
        try:
            with self._clear_refs.open("w") as f:
                f.write("5")
        except OSError as exc:  # not Linux, Linux < 4.0 (EINVAL), or denied by a sandbox
            logger.debug("cannot reset the peak RSS: %s", exc)
            return False
        return True

    def _high_water(self) -> int | None:
        status = self._read_status()
        at = -1 if status is None else status.find(b"VmHWM:")
        if status is not None and at >= 0:
            try:  # "VmHWM:\t  123456 kB": int() ignores the blanks around the number
                return int(status[at + 6 : status.index(b"kB", at)]) * 1024
            except ValueError:
                pass
        return _rusage_peak()

    def _read_status(self) -> bytes | None:
        pid = os.getpid()
        fd = self._fd
        if fd is not None and self._fd_pid == pid:
            return _pread(fd)
        with self._fd_lock:
            if self._fd is None or self._fd_pid != pid:
                try:
                    fd = os.open(self._status, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    return None  # not Linux, or a sandbox without /proc: getrusage stands in
                self._fd, self._fd_pid = fd, pid
                weakref.finalize(self, os.close, fd)  # closed with this object
            fd = self._fd
        return _pread(fd)


def _pread(fd: int) -> bytes | None:
    try:
        return os.pread(fd, 16384, 0)  # from the start: the kernel writes the file anew
    except OSError:
        return None


def _rusage_peak() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere
