"""Host readings from psutil: CPU, RAM, swap, disk, disk I/O rates, CPU temperature, RSS.

Nothing here blocks. ``psutil.cpu_percent(None)`` measures since the previous call *in the
same thread* (psutil keeps its state per thread), so the collector primes it in the thread
that builds it and again in any new thread that calls :meth:`HostCollector.collect`; that
thread's first reading leaves CPU out rather than report psutil's meaningless 0.0.

Each psutil call is read on its own: one that fails leaves out only its fields and is logged
once (WARNING); the others still arrive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

# psutil.sensors_temperatures() chips that measure the CPU package or cores, best first.
CPU_SENSORS: tuple[str, ...] = (
    "coretemp",  # Intel
    "k10temp",  # AMD
    "zenpower",  # AMD, out-of-tree driver
    "cpu_thermal",  # ARM SoCs (Raspberry Pi ...)
    "cpu-thermal",
    "soc_thermal",
)
FALLBACK_SENSORS: tuple[str, ...] = ("acpitz",)  # an ACPI zone, used only without the above


class HostCollector:
    """Reads the host through psutil; cheap and never blocking.

    Args:
        disk_path: the volume to watch (data or model directory). It need not exist yet: the
            nearest existing parent is measured meanwhile.
        process: the process whose RSS is reported; default this one.
        clock: monotonic seconds, for the disk I/O rates.
        per_core: also read per-core CPU utilisation.
    """

    name = "host"

    def __init__(
        self,
        disk_path: Path,
        *,
        process: psutil.Process | None = None,
        clock: Callable[[], float] = time.monotonic,
        per_core: bool = True,
    ) -> None:
        self._disk_path = Path(disk_path).expanduser().absolute()
        self._process = process if process is not None else psutil.Process()
        self._clock = clock
        self._per_core = per_core
        self._cpu_count = psutil.cpu_count()
        self._primed: set[int] = set()  # threads where psutil.cpu_percent(None) is primed
        self._prime_cpu()
        self._last_io: tuple[float, int, int] | None = None  # clock, read bytes, write bytes
        self._has_cpu_sensor = hasattr(psutil, "sensors_temperatures")
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        self._parts: tuple[Callable[[], dict[str, Any]], ...] = (
            self._cpu,
            self._memory,
            self._swap,
            self._disk,
            self._disk_io,
            self._temperature,
            self._rss,
        )

    def collect(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._cpu_count is not None:
            out["cpu_count"] = self._cpu_count
        with self._lock:
            for part in self._parts:
                try:
                    out.update(part())
                except Exception as exc:  # one failing call leaves out only its own fields
                    self._part_failed(part.__name__, exc)
        return out

    # -- parts: each returns the fields it knows -----------------------------------------------

    def _cpu(self) -> dict[str, Any]:
        if threading.get_ident() not in self._primed:
            self._prime_cpu()  # a new thread: psutil has no baseline for it yet
            return {}
        out: dict[str, Any] = {"cpu_percent": psutil.cpu_percent(None)}
        if self._per_core:
            out["cpu_per_core_percent"] = tuple(psutil.cpu_percent(None, percpu=True))
        return out

    def _memory(self) -> dict[str, Any]:
        vm = psutil.virtual_memory()
        # "Used" is what cannot be reclaimed (total - available), so used/total == percent.
        return {
            "ram_used_bytes": vm.total - vm.available,
            "ram_total_bytes": vm.total,
            "ram_percent": vm.percent,
        }

    def _swap(self) -> dict[str, Any]:
        sw = psutil.swap_memory()
        return {"swap_used_bytes": sw.used, "swap_percent": sw.percent}

    def _disk(self) -> dict[str, Any]:
        path = self._disk_path
        try:
            usage = psutil.disk_usage(str(path))
        except FileNotFoundError:
            path = _nearest_existing(path)
            usage = psutil.disk_usage(str(path))
        return {
            "disk_path": str(path),
            "disk_used_bytes": usage.used,
            "disk_total_bytes": usage.total,
            "disk_free_bytes": usage.free,
            "disk_percent": usage.percent,
        }

    def _disk_io(self) -> dict[str, Any]:
        io = psutil.disk_io_counters()
        now = self._clock()
        if io is None:  # no disks visible (some containers)
            return {}
        last, self._last_io = self._last_io, (now, io.read_bytes, io.write_bytes)
        if last is None or now <= last[0]:
            return {}  # a rate needs two readings apart in time
        elapsed = now - last[0]
        out: dict[str, Any] = {}
        if io.read_bytes >= last[1]:
            out["disk_read_bytes_per_second"] = (io.read_bytes - last[1]) / elapsed
        if io.write_bytes >= last[2]:
            out["disk_write_bytes_per_second"] = (io.write_bytes - last[2]) / elapsed
        return out

    def _temperature(self) -> dict[str, Any]:
        if not self._has_cpu_sensor:
            return {}
        celsius = _hottest_cpu(psutil.sensors_temperatures())
        if celsius is None:
            self._has_cpu_sensor = False  # sensors do not appear later: stop asking
            logger.debug("no CPU temperature sensor here; CPU temperature is not reported")
            return {}
        return {"cpu_temperature_celsius": celsius}

    def _rss(self) -> dict[str, Any]:
        return {"process_rss_bytes": self._process.memory_info().rss}

    # -- helpers -------------------------------------------------------------------------------

    def _prime_cpu(self) -> None:
        psutil.cpu_percent(None)
        if self._per_core:
            psutil.cpu_percent(None, percpu=True)
        self._primed.add(threading.get_ident())

    def _part_failed(self, part: str, exc: Exception) -> None:
        if part not in self._failed:
            self._failed.add(part)
            logger.warning(
                "host reading %s failed (%s: %s); its fields are left out",
                part.lstrip("_"),
                type(exc).__name__,
                exc,
            )


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path  # unreachable for an absolute path: "/" exists


def _hottest_cpu(chips: dict[str, list[Any]]) -> float | None:
    """The hottest current reading of the CPU chips, else of the fallback chips, else None."""
    for names in (CPU_SENSORS, FALLBACK_SENSORS):
        readings = [
            float(entry.current)
            for name in names
            for entry in chips.get(name, ())
            if entry.current is not None and entry.current > 0
        ]
        if readings:
            return max(readings)
    return None
