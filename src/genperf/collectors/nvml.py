"""NVIDIA GPU readings from NVML (nvidia-ml-py), every call through one gate.

:class:`NvmlGate` is the only code that touches the NVML module (the pattern of nvitop's
``libnvml.nvmlQuery``): it initialises NVML lazily, once, under a lock; it turns "no library",
"no driver" and "no GPU" into *unavailable*, logged once at INFO and never raised; and it turns
a call that a GPU or driver does not support into ``None`` for that field alone, logged once per
function at DEBUG and not asked again. Other NVML errors (a lost GPU, a timeout) also give
``None`` and are logged once per function and error at WARNING; those calls are retried each
tick. :class:`NvmlCollector` turns the answers into :class:`~genperf.records.GpuReading`.

NVML is never reached through ``nvidia-smi`` (a process per tick costs ~50 ms of CPU).
Indices are NVML's (PCI bus order), which may differ from CUDA's ordinals unless
``CUDA_DEVICE_ORDER=PCI_BUS_ID``; match GPUs by ``uuid`` where it matters.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import logging
import os
import threading
from typing import Any

from genperf.records import GpuReading

logger = logging.getLogger(__name__)

# NVML's ABI constants (nvml.h); stable across driver versions.
_TEMPERATURE_GPU = 0  # NVML_TEMPERATURE_GPU
_CLOCK_SM = 1  # NVML_CLOCK_SM
_CLOCK_MEM = 2  # NVML_CLOCK_MEM
_GPU_IDLE = 0x1  # nvmlClocksEventReasonGpuIdle: clocks are low because there is no work

# Clock event ("throttle") reason bits, nvmlClocksEventReason* / nvmlClocksThrottleReason*.
THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x2, "applications_clocks"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal"),
    (0x40, "hw_thermal"),
    (0x80, "hw_power_brake"),
    (0x100, "display_clocks"),
    (0x200, "board_limit"),
    (0x400, "reliability"),
)
_KNOWN_BITS = _GPU_IDLE | sum(bit for bit, _ in THROTTLE_REASONS)

# Errors that mean "this GPU or driver cannot answer this call", now and later.
_UNSUPPORTED_ERRORS = (
    "NVML_ERROR_NOT_SUPPORTED",
    "NVML_ERROR_NO_PERMISSION",
    "NVML_ERROR_FUNCTION_NOT_FOUND",
    "NVML_ERROR_ARGUMENT_VERSION_MISMATCH",
    "NVML_ERROR_DEPRECATED",
)


def decode_throttle_reasons(mask: int) -> tuple[str, ...]:
    """Names of the reasons set in an NVML clock-event bitmask, idle left out (it is no throttle).

    >>> decode_throttle_reasons(0x1 | 0x4 | 0x40)
    ('sw_power_cap', 'hw_thermal')
    """
    names = [name for bit, name in THROTTLE_REASONS if mask & bit]
    unknown = mask & ~_KNOWN_BITS
    names.extend(f"unknown_{1 << b:#x}" for b in range(64) if unknown >> b & 1)
    return tuple(names)


class _State(enum.Enum):
    NEW = "new"  # not initialised yet: the next ready() tries, once
    READY = "ready"
    UNAVAILABLE = "unavailable"  # no library, no driver or no GPU: never tried again


class NvmlGate:
    """The one door to NVML: lazy, thread-safe init; errors become ``None``, logged once.

    Args:
        nvml_module: the ``pynvml`` module, or a stand-in with the same functions (tests pass
            :class:`genperf.testing.FakeNvml`). None: ``import pynvml`` at first use.
    """

    def __init__(self, nvml_module: Any = None) -> None:
        self._nvml: Any = nvml_module
        self._lock = threading.RLock()
        self._state = _State.NEW
        self._handles: dict[int, Any] = {}
        self._unsupported: set[tuple[Any, ...]] = set()  # calls not asked again
        self._logged: set[tuple[Any, ...]] = set()
        self._unsupported_codes: frozenset[int] = frozenset()
        self._mismatch: type[Exception] | tuple[()] = ()  # pynvml.NVMLLibraryMismatchError
        self.unavailable_reason: str | None = None  # why NVML is not usable, for people

    @property
    def devices(self) -> tuple[int, ...]:
        """NVML indices of the GPUs whose handles could be had (empty until ready)."""
        return tuple(self._handles)

    def constant(self, name: str) -> Any:
        """A constant of the NVML module (``nvmlMemory_v2`` ...), None if it has none."""
        return getattr(self._nvml, name, None)

    def ready(self) -> bool:
        """Initialise NVML on first use; True when it works and sees at least one GPU."""
        if self._state is _State.NEW:
            with self._lock:
                if self._state is _State.NEW:
                    self._state = self._init()
        return self._state is _State.READY

    def query(self, fn: str, *args: Any, gpu: int | None = None, **kwargs: Any) -> Any:
        """``nvml.<fn>(*args, **kwargs)``, with GPU ``gpu``'s handle first when given.

        Returns None when NVML is not ready or the call fails (see the module docstring).
        """
        key = (fn, gpu, args, tuple(kwargs.items()))
        with self._lock:
            if self._state is not _State.READY or key in self._unsupported:
                return None
            func = getattr(self._nvml, fn, None)
            if func is None:  # an older nvidia-ml-py without this function
                self._skip(key, fn, "absent from this nvidia-ml-py")
                return None
            if gpu is not None:
                handle = self._handles.get(gpu)
                if handle is None:
                    return None
                args = (handle, *args)
            try:
                return func(*args, **kwargs)
            except self._nvml.NVMLError as exc:
                if exc.value in self._unsupported_codes:
                    self._skip(key, fn, exc)
                else:
                    self._log_once((fn, exc.value), logging.WARNING, "NVML %s failed: %s", fn, exc)
                return None
            except self._mismatch as exc:  # an unversioned call the driver is too old for
                self._skip(key, fn, exc)
                return None

    def shutdown(self) -> None:
        """Release NVML. A later :meth:`ready` initialises it again."""
        with self._lock:
            if self._state is not _State.READY:
                return
            self._state = _State.NEW
            self._handles.clear()
            self._unsupported.clear()
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                logger.debug("nvmlShutdown failed: %s", exc)

    # -- inside the lock ---------------------------------------------------------------------

    def _init(self) -> _State:
        if self._nvml is None:
            try:
                self._nvml = importlib.import_module("pynvml")
            except ImportError:
                return self._unavailable("nvidia-ml-py (pynvml) is not installed")
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except Exception as exc:  # LibraryNotFound, DriverNotLoaded, LibRmVersionMismatch...
            return self._unavailable(f"NVML cannot start ({exc})")
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            count = 0
            logger.info("GPU monitoring unavailable: NVML cannot count GPUs (%s)", exc)
        for index in range(count):
            try:
                self._handles[index] = nvml.nvmlDeviceGetHandleByIndex(index)
            except nvml.NVMLError as exc:  # NoPermission for a GPU outside this container...
                logger.info("GPU %d is not monitored: %s", index, exc)
        if not self._handles:
            with contextlib.suppress(nvml.NVMLError):
                nvml.nvmlShutdown()
            why = "NVML sees no GPU" if count == 0 else "no GPU handle could be had"
            return self._unavailable(why)
        self._unsupported_codes = frozenset(
            getattr(nvml, name) for name in _UNSUPPORTED_ERRORS if hasattr(nvml, name)
        )
        self._mismatch = getattr(nvml, "NVMLLibraryMismatchError", ())
        logger.debug("NVML ready: %d GPU(s)", len(self._handles))
        return _State.READY

    def _unavailable(self, why: str) -> _State:
        self.unavailable_reason = why
        logger.info("GPU monitoring unavailable: %s", why)
        return _State.UNAVAILABLE

    def _skip(self, key: tuple[Any, ...], fn: str, why: object) -> None:
        self._unsupported.add(key)
        self._log_once((fn,), logging.DEBUG, "NVML %s not supported here (%s)", fn, why)

    def _log_once(self, key: tuple[Any, ...], level: int, msg: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.log(level, msg, *args)


class NvmlCollector:
    """Reads every GPU NVML sees: ``{"gpus": (GpuReading, ...)}``, or ``{}`` when unavailable.

    Args:
        nvml_module: the ``pynvml`` module or a stand-in (:class:`genperf.testing.FakeNvml`);
            None imports ``pynvml`` lazily, at the first :meth:`collect`.
    """

    name = "nvml"

    def __init__(self, nvml_module: Any = None) -> None:
        self._gate = NvmlGate(nvml_module)
        self._static: dict[int, tuple[str | None, str | None]] = {}  # name and uuid per GPU

    @property
    def available(self) -> bool:
        """Whether NVML works here and sees a GPU (initialises NVML on first use)."""
        return self._gate.ready()

    @property
    def unavailable_reason(self) -> str | None:
        """Why NVML is not usable here (None when it is, or before the first use)."""
        return self._gate.unavailable_reason

    def collect(self) -> dict[str, Any]:
        if not self._gate.ready():
            return {}
        pid = os.getpid()
        return {"gpus": tuple(self._read(index, pid) for index in self._gate.devices)}

    def shutdown(self) -> None:
        """Release NVML (``nvmlShutdown``); a later :meth:`collect` starts it again."""
        self._gate.shutdown()
        self._static.clear()

    def _read(self, i: int, pid: int) -> GpuReading:
        q = self._gate.query
        if i not in self._static:
            self._static[i] = (
                _text(q("nvmlDeviceGetName", gpu=i)),
                _text(q("nvmlDeviceGetUUID", gpu=i)),
            )
        name, uuid = self._static[i]
        memory = self._memory_info(i)
        util = q("nvmlDeviceGetUtilizationRates", gpu=i)
        temperature = q("nvmlDeviceGetTemperature", _TEMPERATURE_GPU, gpu=i)
        reasons = q("nvmlDeviceGetCurrentClocksEventReasons", gpu=i)
        if reasons is None:  # drivers before 535 know only the older name
            reasons = q("nvmlDeviceGetCurrentClocksThrottleReasons", gpu=i)
        return GpuReading(
            index=i,
            name=name,
            uuid=uuid,
            memory_used_bytes=None if memory is None else int(memory.used),
            memory_total_bytes=None if memory is None else int(memory.total),
            utilization_percent=None if util is None else float(util.gpu),
            memory_utilization_percent=None if util is None else float(util.memory),
            temperature_celsius=None if temperature is None else float(temperature),
            power_watts=_watts(q("nvmlDeviceGetPowerUsage", gpu=i)),
            power_limit_watts=_watts(q("nvmlDeviceGetEnforcedPowerLimit", gpu=i)),
            sm_clock_mhz=q("nvmlDeviceGetClockInfo", _CLOCK_SM, gpu=i),
            memory_clock_mhz=q("nvmlDeviceGetClockInfo", _CLOCK_MEM, gpu=i),
            throttle_reasons=None if reasons is None else decode_throttle_reasons(reasons),
            process_memory_bytes=_process_memory(
                q("nvmlDeviceGetComputeRunningProcesses", gpu=i), pid
            ),
        )

    def _memory_info(self, i: int) -> Any:
        # v2 (driver 510+) reports "used" without the memory the driver reserves for itself,
        # as nvidia-smi does; v1 counts that reserve as used.
        v2 = self._gate.constant("nvmlMemory_v2")
        if v2 is not None:
            memory = self._gate.query("nvmlDeviceGetMemoryInfo", gpu=i, version=v2)
            if memory is not None:
                return memory
        return self._gate.query("nvmlDeviceGetMemoryInfo", gpu=i)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):  # nvidia-ml-py before 11.515 returned bytes
        return value.decode(errors="replace")
    return None if value is None else str(value)


def _watts(milliwatts: Any) -> float | None:
    return None if milliwatts is None else milliwatts / 1000.0


def _process_memory(processes: Any, pid: int) -> int | None:
    """This process's GPU memory from NVML's process list, or None where it cannot be known.

    NVML lists host PIDs and leaves ``usedGpuMemory`` None where it is not reported (WDDM,
    some containers). When this PID is not listed, 0 is only claimed if every listed PID is
    visible here, i.e. we share NVML's PID namespace; inside a container it is unknown.
    """
    if processes is None:
        return None
    mine = [p.usedGpuMemory for p in processes if p.pid == pid]
    if mine:
        return None if any(m is None for m in mine) else sum(mine)
    if all(os.path.exists(f"/proc/{p.pid}") for p in processes):
        return 0
    return None
