"""This process's peak resident memory (RSS), with a reset where the OS allows one.

Linux keeps the peak in ``VmHWM`` of ``/proc/self/status`` and, since 4.0, resets it to the
current RSS when "5" is written to ``/proc/self/clear_refs``. Elsewhere the peak comes from
``getrusage(RUSAGE_SELF).ru_maxrss`` (the peak since the process started; no reset).

The peak is process-wide: tasks running at the same time in one process share it, and a reset
for one task resets it for all.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


class ProcessPeakMemory:
    """Peak RSS of this process, in bytes, resettable on Linux.

    Args:
        proc_self: the ``/proc/self`` directory to read (tests point it elsewhere).
    """

    def __init__(self, proc_self: Path = Path("/proc/self")) -> None:
        self._status = proc_self / "status"
        self._clear_refs = proc_self / "clear_refs"

    def reset(self) -> bool:
        """Start a new peak from the current RSS. False where the OS does not allow it."""
        try:
            with self._clear_refs.open("w") as f:
                f.write("5")
        except OSError as exc:  # not Linux, Linux < 4.0 (EINVAL), or denied by a sandbox
            logger.debug("cannot reset the peak RSS: %s", exc)
            return False
        return True

    def peak_bytes(self) -> int | None:
        """The peak RSS since the last :meth:`reset` (or since start), None if unknown."""
        try:
            with self._status.open("rb") as f:
                for line in f:
                    if line.startswith(b"VmHWM:"):
                        return int(line.split()[1]) * 1024  # the kernel reports kB
        except (OSError, ValueError, IndexError):
            pass
        return _rusage_peak()


def _rusage_peak() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere
