"""Collectors: what the sampler reads each tick, plus the exact-peak probes tasks use.

- :class:`HostCollector`: CPU, RAM, swap, disk, disk I/O, CPU temperature, RSS (psutil).
- :class:`NvmlCollector`: every GPU through NVML, or nothing where NVML is unavailable.
- :class:`TorchMemoryProbe`: torch's allocator peaks (exact, resettable, process-wide).
- :class:`ProcessPeakMemory`: this process's peak RSS since a mark (its own peak left intact).

Collectors know nothing of tasks or storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from genperf.collectors.base import Collector
from genperf.collectors.host import HostCollector
from genperf.collectors.nvml import NvmlCollector
from genperf.collectors.process_memory import ProcessPeakMemory
from genperf.collectors.torch_memory import TorchMemoryProbe

if TYPE_CHECKING:
    from genperf.config import Settings


def default_collectors(settings: Settings, *, nvml_module: Any = None) -> list[Collector]:
    """The host collector on the watched disk, and NVML when GPU monitoring is enabled.

    ``nvml_module``: a pynvml stand-in for tests (:class:`genperf.testing.FakeNvml`).
    """
    collectors: list[Collector] = [HostCollector(settings.watched_disk_path)]
    if settings.enable_gpu_monitoring:
        collectors.append(NvmlCollector(nvml_module))
    return collectors


GPU_MONITORING_OFF = "enable_gpu_monitoring is false in the settings: no NVML call is made"


def gpu_monitoring_state(
    settings: Settings, collectors: Iterable[Collector]
) -> tuple[str, str | None]:
    """("on", None), ("off", why) or ("unavailable", why), for status lines.

    Call it after the collectors have sampled once: it reads what NVML said then.
    """
    if not settings.enable_gpu_monitoring:
        return "off", GPU_MONITORING_OFF
    nvml = next((c for c in collectors if isinstance(c, NvmlCollector)), None)
    if nvml is None:
        return "on", None  # GPU readings, if any, come from the collectors given (tests)
    if not nvml.available:
        return "unavailable", nvml.unavailable_reason or "NVML is not available"
    return "on", None


__all__ = [
    "Collector",
    "HostCollector",
    "NvmlCollector",
    "ProcessPeakMemory",
    "TorchMemoryProbe",
    "default_collectors",
    "gpu_monitoring_state",
]
