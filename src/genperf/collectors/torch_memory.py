"""Exact GPU memory peaks from torch's CUDA caching allocator.

Sampling NVML every few seconds misses a peak that lasts 50 ms; the allocator counts every
allocation. genperf never imports torch itself (it costs ~0.8 s): the probe uses the torch
that the service has already imported (``sys.modules["torch"]``, looked up again until found)
or the module it is given.

The counters are **process-wide**: concurrent tasks in one process share them, so a reset at
one task's start also resets the peak of any task running beside it, and a peak covers both.
The probe only reads allocator statistics once CUDA is initialised, so it never creates a CUDA
context; but :attr:`TorchMemoryProbe.available` calls ``torch.cuda.is_available()``, which
initialises the CUDA driver (unless ``PYTORCH_NVML_BASED_CUDA_CHECK=1``) and so must not run in
a parent that later forks CUDA workers.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

logger = logging.getLogger(__name__)


class TorchMemoryProbe:
    """Peak and current GPU memory of torch's allocator, summed over devices, in bytes.

    Args:
        torch_module: the ``torch`` module (or a stand-in). None: use torch once the service has
            imported it, never importing it here.
    """

    def __init__(self, torch_module: Any = None) -> None:
        self._torch: Any = torch_module
        self._cuda: bool | None = None  # torch.cuda.is_available(), asked once torch is known
        self._warned = False

    @property
    def available(self) -> bool:
        """Whether torch is imported and CUDA works."""
        return self._cuda_torch() is not None

    def reset_peak(self) -> bool:
        """Start new peaks (``reset_peak_memory_stats`` on every device); False if unavailable."""
        torch = self._cuda_torch()
        if torch is None:
            return False
        if not torch.cuda.is_initialized():
            return True  # nothing allocated yet: the counters start at zero
        try:
            for device in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(device)
        except Exception as exc:
            self._failed(exc)
            return False
        return True

    def peak(self) -> tuple[int, int] | None:
        """(max allocated, max reserved) bytes since the last reset, summed over devices.

        On several GPUs the sum of per-device peaks bounds the simultaneous peak from above.
        """
        return self._read("max_memory_allocated", "max_memory_reserved")

    def current(self) -> tuple[int, int] | None:
        """(allocated, reserved) bytes now, summed over devices."""
        return self._read("memory_allocated", "memory_reserved")

    def _read(self, allocated: str, reserved: str) -> tuple[int, int] | None:
        torch = self._cuda_torch()
        if torch is None:
            return None
        if not torch.cuda.is_initialized():
            return (0, 0)
        cuda = torch.cuda
        try:
            devices = range(cuda.device_count())
            return (
                sum(int(getattr(cuda, allocated)(d)) for d in devices),
                sum(int(getattr(cuda, reserved)(d)) for d in devices),
            )
        except Exception as exc:
            self._failed(exc)
            return None

    def _cuda_torch(self) -> Any:
        """torch if it is imported and CUDA is available, else None."""
        if self._cuda is False:
            return None
        torch: Any = self._torch if self._torch is not None else sys.modules.get("torch")
        if getattr(torch, "cuda", None) is None:
            return None  # not imported yet, or mid-import in another thread: look again later
        if self._cuda is None:
            self._torch = torch
            try:
                self._cuda = bool(torch.cuda.is_available())
            except Exception as exc:
                self._cuda = False
                self._failed(exc)
            logger.debug("torch allocator peaks %s", "available" if self._cuda else "unavailable")
        return torch if self._cuda else None

    def _failed(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("reading torch's CUDA memory statistics failed: %s", exc)
