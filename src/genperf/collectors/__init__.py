"""Collectors: what the sampler reads each tick, plus the exact-peak probes tasks use.

- :class:`HostCollector`: CPU, RAM, swap, disk, disk I/O, CPU temperature, RSS (psutil).
- :class:`NvmlCollector`: every GPU through NVML, or nothing where NVML is unavailable.
- :class:`TorchMemoryProbe`: torch's allocator peaks (exact, resettable, process-wide).
- :class:`ProcessPeakMemory`: this process's peak RSS since a mark (its own peak left intact).

Collectors know nothing of tasks or storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genperf.collectors.base import Collector
from genperf.collectors.host import HostCollector
from genperf.collectors.nvml import NvmlCollector
from genperf.collectors.process_memory import ProcessPeakMemory
from genperf.collectors.torch_memory import TorchMemoryProbe

if TYPE_CHECKING:
    from genperf.config import Settings


def default_collectors(settings: Settings) -> list[Collector]:
    """The host collector on the watched disk, and NVML when GPU monitoring is enabled."""
    collectors: list[Collector] = [HostCollector(settings.watched_disk_path)]
    if settings.enable_gpu_monitoring:
        collectors.append(NvmlCollector())
    return collectors


__all__ = [
    "Collector",
    "HostCollector",
    "NvmlCollector",
    "ProcessPeakMemory",
    "TorchMemoryProbe",
    "default_collectors",
]
