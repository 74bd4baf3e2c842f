"""Fakes shipped with genperf, for tests of genperf and of the services that embed it.

They stand only where this machine lacks the real thing (a GPU) or where a test needs
control of time; everything else in tests is real (psutil, SQLite, PostgreSQL, diffusers).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from genperf.records import TaskRecord, TaskStatus, resolution_class

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "the condition",
    alive: Callable[[], bool] | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``condition`` until it returns a true value, and return that value.

    For a test that waits on another thread or process which offers nothing to wait on (a
    server starting, a background refresh). ``ignore`` lists exceptions that mean "not yet"
    (a connection refused while a server starts).

    Raises:
        AssertionError: naming ``what``, after ``timeout`` seconds, or at once when
            ``alive()`` says what we wait on has died.
    """
    deadline = time.monotonic() + timeout
    while True:
        value: T | None = None
        with contextlib.suppress(*ignore):  # "not yet"
            value = condition()
        if value:
            return value
        if alive is not None and not alive():
            raise AssertionError(f"what we waited on for {what} has stopped")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class PlannedSleeps:
    """An ``on_sleep`` hook (StoreWriter, BatchingSink) that keeps each sleep a background
    thread planned, so a test can wait for the thread's next plan instead of for time."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._plans: queue.Queue[float | None] = queue.Queue()
        self._timeout = timeout

    def __call__(self, seconds: float | None) -> None:
        self._plans.put(seconds)

    def next(self) -> float | None:
        """The next planned sleep in seconds (None: until woken); waits for it at most the
        timeout given (queue.Empty then)."""
        return self._plans.get(timeout=self._timeout)


class ManualClock:
    """A monotonic clock that only moves when told to. ``clock()`` returns seconds."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class FakeCollector:
    """A collector that returns fixed (or scripted) readings, or raises when told to."""

    def __init__(
        self,
        values: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        *,
        name: str = "fake",
        error: BaseException | None = None,
    ) -> None:
        self.name = name
        self._values = values if values is not None else {}
        self.error = error
        self.calls = 0

    def collect(self) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return dict(self._values() if callable(self._values) else self._values)


_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_task(**overrides: Any) -> TaskRecord:
    """A completed 720p task record with plausible values; override any field."""
    started = overrides.pop("started_at", _EPOCH)
    gen_time = overrides.get("generation_time_seconds", 240.0)
    resolution = overrides.get("resolution", "1280x720")
    status = overrides.pop("status", TaskStatus.COMPLETED)
    defaults: dict[str, Any] = {
        "run_id": uuid.uuid4().hex,
        "task_id": uuid.uuid4().hex[:12],
        "node": "test-node",
        "model_type": "t2v-A14B",
        "resolution": resolution,
        "resolution_class": resolution_class(resolution),
        "steps": 20,
        "status": status,
        "started_at": started,
        "completed_at": started + timedelta(seconds=gen_time or 0),
        "model_used": "t2v-A14B",
        "generation_time_seconds": gen_time,
        "model_load_time_seconds": 20.0,
        "peak_vram_usage_mb": 40_000.0,
        "avg_vram_usage_mb": 30_000.0,
        "vram_total_mb": 81_920.0,
        "peak_ram_usage_mb": 20_000.0,
        "avg_ram_usage_mb": 15_000.0,
        "ram_total_mb": 65_536.0,
        "peak_cpu_percent": 50.0,
        "avg_cpu_percent": 30.0,
        "peak_gpu_utilization_percent": 98.0,
        "avg_gpu_utilization_percent": 90.0,
        "peak_gpu_temperature_celsius": 70.0,
        "avg_gpu_temperature_celsius": 65.0,
        "optimizations_applied": ("dtype:bf16",),
    }
    defaults.update(overrides)
    return TaskRecord(**defaults)


def make_tasks(
    count: int, *, every: timedelta = timedelta(minutes=10), **overrides: Any
) -> list[TaskRecord]:
    """``count`` tasks started ``every`` apart from the default epoch, oldest first."""
    start = overrides.pop("started_at", _EPOCH)
    return [make_task(started_at=start + i * every, **overrides) for i in range(count)]


# --- NVML ------------------------------------------------------------------------------------


def make_request(n: int, **overrides: Any) -> Any:
    """The generation request ``t<n>`` (tiny-wan, 64x64, 2 steps, 5 frames) with overrides."""
    from genperf.generation.request import GenerationRequest

    fields: dict[str, Any] = {
        "task_id": f"t{n}",
        "model_type": "tiny-wan-t2v",
        "prompt": f"prompt {n}",
        "width": 64,
        "height": 64,
        "steps": 2,
        "frames": 5,
    }
    return GenerationRequest(**{**fields, **overrides})


@contextlib.contextmanager
def postgres_schema(server_url: str, prefix: str = "genperf_test") -> Iterator[str]:
    """A URL whose connections work in a schema of their own, made on the PostgreSQL server
    at ``server_url`` and dropped afterwards (tests and benchmarks on one shared server)."""
    from sqlalchemy import create_engine, text

    from genperf.storage.engine import normalise_url

    admin = create_engine(normalise_url(server_url))
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def _fake_gpu_uuid() -> str:
    return f"GPU-{uuid.uuid4()}"


class FakeGpu:
    """One GPU of a :class:`FakeNvml`, in NVML's own units (bytes, percent, °C, mW, MHz).

    Change any attribute between readings. ``throttle_reasons`` is NVML's clock-event bitmask
    (``pynvml.nvmlClocksEventReason*``); ``processes`` is ``[(pid, used bytes or None)]`` as
    ``nvmlDeviceGetComputeRunningProcesses`` reports them (None: usage not reported); ``errors``
    maps a pynvml function name to the NVML error code it raises for this GPU, e.g.
    ``{"nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_NOT_SUPPORTED}``.
    """

    def __init__(
        self,
        name: str = "NVIDIA H200",
        *,
        uuid: str | None = None,
        memory_used_bytes: int = 2**30,
        memory_total_bytes: int = 143_771 * 2**20,
        memory_reserved_bytes: int = 512 * 2**20,
        utilization_percent: int = 0,
        memory_utilization_percent: int = 0,
        temperature_celsius: int = 35,
        power_mw: int = 75_000,
        power_limit_mw: int = 700_000,
        sm_clock_mhz: int = 345,
        memory_clock_mhz: int = 3201,
        throttle_reasons: int = 0x1,  # GPU idle
        processes: list[tuple[int, int | None]] | None = None,
        errors: dict[str, int] | None = None,
    ) -> None:
        self.name = name
        self.uuid = uuid if uuid is not None else _fake_gpu_uuid()
        self.memory_used_bytes = memory_used_bytes
        self.memory_total_bytes = memory_total_bytes
        self.memory_reserved_bytes = memory_reserved_bytes
        self.utilization_percent = utilization_percent
        self.memory_utilization_percent = memory_utilization_percent
        self.temperature_celsius = temperature_celsius
        self.power_mw = power_mw
        self.power_limit_mw = power_limit_mw
        self.sm_clock_mhz = sm_clock_mhz
        self.memory_clock_mhz = memory_clock_mhz
        self.throttle_reasons = throttle_reasons
        self.processes = list(processes or [])
        self.errors = dict(errors or {})


class _FakeNvmlHandle:
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class FakeNvml:
    """An in-memory stand-in for the ``pynvml`` module (nvidia-ml-py), for tests without a GPU.

    It has the pynvml functions genperf calls, with pynvml's names, signatures and return types
    (the same ctypes structures), and raises pynvml's own exception classes; pynvml's constants
    and exceptions (``NVML_*``, ``NVMLError*``, ``nvmlClocksEventReason*``, ``nvmlMemory_v2``)
    pass through. Like NVML, it refuses calls before ``nvmlInit``. Needs nvidia-ml-py installed.

    Args:
        gpus: the GPUs, in index order.
        init_error: an NVML error code ``nvmlInit`` raises, e.g.
            ``pynvml.NVML_ERROR_LIBRARY_NOT_FOUND`` or ``NVML_ERROR_DRIVER_NOT_LOADED``.
        missing: pynvml function names this stand-in lacks, as an older nvidia-ml-py would.

    ``calls`` counts the calls of each function.
    """

    _PASSTHROUGH = ("NVML", "nvmlClocksEventReason", "nvmlClocksThrottleReason", "nvmlMemory_v")

    def __init__(
        self,
        gpus: Iterable[FakeGpu] = (),
        *,
        init_error: int | None = None,
        missing: Iterable[str] = (),
        driver_version: str = "570.124.06",
        cuda_driver_version: int = 12080,
    ) -> None:
        self.missing = frozenset(missing)
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        import pynvml

        self._pynvml = pynvml
        self.gpus = list(gpus)
        self.init_error = init_error
        self.calls: dict[str, int] = {}
        self.init_count = 0  # nvmlInit calls minus nvmlShutdown calls, as NVML counts them

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("nvml") and name in object.__getattribute__(self, "missing"):
            raise AttributeError(f"module 'pynvml' has no attribute {name!r}")
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith(self._PASSTHROUGH) and name not in self.missing:
            return getattr(self._pynvml, name)
        raise AttributeError(f"FakeNvml has no {name!r}")

    def _enter(self, fn: str, handle: _FakeNvmlHandle | None = None) -> FakeGpu | None:
        self.calls[fn] = self.calls.get(fn, 0) + 1
        if self.init_count <= 0:
            raise self._pynvml.NVMLError(self._pynvml.NVML_ERROR_UNINITIALIZED)
        if handle is None:
            return None
        gpu = self.gpus[handle.index]
        if fn in gpu.errors:
            raise self._pynvml.NVMLError(gpu.errors[fn])
        return gpu

    def _gpu(self, fn: str, handle: _FakeNvmlHandle) -> FakeGpu:
        gpu = self._enter(fn, handle)
        assert gpu is not None
        return gpu

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] = self.calls.get("nvmlInit", 0) + 1
        if self.init_error is not None:
            raise self._pynvml.NVMLError(self.init_error)
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self.cuda_driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _FakeNvmlHandle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise self._pynvml.NVMLError(self._pynvml.NVML_ERROR_INVALID_ARGUMENT)
        code = self.gpus[index].errors.get("nvmlDeviceGetHandleByIndex")
        if code is not None:
            raise self._pynvml.NVMLError(code)
        return _FakeNvmlHandle(index)

    def nvmlDeviceGetName(self, handle: _FakeNvmlHandle) -> str:
        return self._gpu("nvmlDeviceGetName", handle).name

    def nvmlDeviceGetUUID(self, handle: _FakeNvmlHandle) -> str:
        return self._gpu("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetMemoryInfo(self, handle: _FakeNvmlHandle, version: int | None = None) -> Any:
        gpu = self._gpu("nvmlDeviceGetMemoryInfo", handle)
        nvml = self._pynvml
        used, reserved, total = (
            gpu.memory_used_bytes,
            gpu.memory_reserved_bytes,
            gpu.memory_total_bytes,
        )
        if not version:  # v1 counts the driver's reserve as used
            return nvml.c_nvmlMemory_t(
                total=total, free=total - used - reserved, used=used + reserved
            )
        if version != nvml.nvmlMemory_v2:
            raise nvml.NVMLError(nvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        return nvml.c_nvmlMemory_v2_t(
            version=version, total=total, reserved=reserved, free=total - used - reserved, used=used
        )

    def nvmlDeviceGetUtilizationRates(self, handle: _FakeNvmlHandle) -> Any:
        gpu = self._gpu("nvmlDeviceGetUtilizationRates", handle)
        return self._pynvml.c_nvmlUtilization_t(
            gpu=gpu.utilization_percent, memory=gpu.memory_utilization_percent
        )

    def nvmlDeviceGetTemperature(self, handle: _FakeNvmlHandle, sensor: int) -> int:
        gpu = self._gpu("nvmlDeviceGetTemperature", handle)
        if sensor != self._pynvml.NVML_TEMPERATURE_GPU:
            raise self._pynvml.NVMLError(self._pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature_celsius

    def nvmlDeviceGetPowerUsage(self, handle: _FakeNvmlHandle) -> int:
        return self._gpu("nvmlDeviceGetPowerUsage", handle).power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _FakeNvmlHandle) -> int:
        return self._gpu("nvmlDeviceGetEnforcedPowerLimit", handle).power_limit_mw

    def nvmlDeviceGetClockInfo(self, handle: _FakeNvmlHandle, type: int) -> int:
        gpu = self._gpu("nvmlDeviceGetClockInfo", handle)
        clocks = {
            self._pynvml.NVML_CLOCK_SM: gpu.sm_clock_mhz,
            self._pynvml.NVML_CLOCK_MEM: gpu.memory_clock_mhz,
        }
        if type not in clocks:
            raise self._pynvml.NVMLError(self._pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return clocks[type]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: _FakeNvmlHandle) -> int:
        return self._gpu("nvmlDeviceGetCurrentClocksEventReasons", handle).throttle_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: _FakeNvmlHandle) -> int:
        return self._gpu("nvmlDeviceGetCurrentClocksThrottleReasons", handle).throttle_reasons

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _FakeNvmlHandle) -> list[Any]:
        gpu = self._gpu("nvmlDeviceGetComputeRunningProcesses", handle)
        return [
            self._pynvml.nvmlFriendlyObject(
                {
                    "pid": pid,
                    "usedGpuMemory": used,
                    "gpuInstanceId": 0xFFFFFFFF,
                    "computeInstanceId": 0xFFFFFFFF,
                }
            )
            for pid, used in gpu.processes
        ]


class FakeTorchCuda:
    """Stands in for the ``torch`` module on a machine without CUDA: one device whose caching
    allocator the test drives with ``allocate`` / ``free``, with torch.cuda's peak semantics
    (``max_memory_*`` since the last ``reset_peak_memory_stats``). Reserved memory is what the
    allocator holds: it grows with allocations and is not given back on free, as in torch."""

    def __init__(
        self, *, cuda_version: str = "12.8", available: bool = True, name: str = "NVIDIA H200"
    ) -> None:
        import types

        self.cuda = self
        self.__version__ = f"2.9.0+cu{cuda_version.replace('.', '')}"  # what torch reports
        self.version = types.SimpleNamespace(cuda=cuda_version)  # torch.version.cuda
        self.available = available
        self.name = name
        self.allocated = 0
        self.reserved = 0
        self.peak_allocated = 0
        self.peak_reserved = 0
        self.resets = 0

    def allocate(self, nbytes: int) -> None:
        self.allocated += nbytes
        self.reserved = max(self.reserved, self.allocated)
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        self.peak_reserved = max(self.peak_reserved, self.reserved)

    def free(self, nbytes: int) -> None:
        self.allocated -= nbytes

    # the torch.cuda functions TorchMemoryProbe calls
    def is_available(self) -> bool:
        return self.available

    def get_device_name(self, device: int = 0) -> str:
        return self.name

    def is_initialized(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    def reset_peak_memory_stats(self, device: int = 0) -> None:
        self.resets += 1
        self.peak_allocated = self.allocated
        self.peak_reserved = self.reserved

    def max_memory_allocated(self, device: int = 0) -> int:
        return self.peak_allocated

    def max_memory_reserved(self, device: int = 0) -> int:
        return self.peak_reserved

    def memory_allocated(self, device: int = 0) -> int:
        return self.allocated

    def memory_reserved(self, device: int = 0) -> int:
        return self.reserved
