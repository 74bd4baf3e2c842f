"""Frozen records passed between genperf's layers.

Everything here is plain data: no I/O, no imports of psutil, NVML, torch or SQLAlchemy.
``None`` always means "unknown / not measured"; a 0 is a real zero.

Units: samples use base units (``*_bytes``, ``*_percent``, ``*_celsius``, ``*_seconds``).
Task metrics keep the spec's column names (``peak_vram_usage_mb``, ``generation_time_seconds``),
where "mb" means mebibytes (2**20 bytes), the unit torch and nvidia-smi report as "MB".
All ``*_at`` fields are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from genperf.numbers import percent

MIB = 1024 * 1024


def utc_now() -> datetime:
    """The current wall-clock time as an aware UTC datetime (a stamp, never a duration)."""
    return datetime.now(UTC)


class TaskStatus(enum.StrEnum):
    """Lifecycle of one monitored generation."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the process died while the task ran (found at restart)


class ErrorCategory(enum.StrEnum):
    """Why a generation failed; drives the recovery suggestions."""

    OUT_OF_MEMORY_GPU = "out_of_memory_gpu"
    OUT_OF_MEMORY_HOST = "out_of_memory_host"
    MODEL_LOAD_ERROR = "model_load_error"
    INVALID_INPUT = "invalid_input"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    STORAGE_ERROR = "storage_error"  # disk full, I/O errors: saving outputs, reading weights
    NETWORK_ERROR = "network_error"  # downloads and remote calls that could not connect
    NUMERICAL_ERROR = "numerical_error"  # NaN or black output (fp16 overflow, often the VAE)
    GPU_FAULT = "gpu_fault"  # driver-reported faults: Xid, illegal memory access, ECC
    CUDA_SETUP_ERROR = "cuda_setup_error"  # torch's CUDA against the driver, no usable GPU
    UNKNOWN = "unknown"


# Well-known phase names; any other name is accepted too.
STANDARD_PHASES = ("model_load", "text_encode", "denoise", "vae_decode")


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU at one instant, as NVML reports it. Unsupported fields are None."""

    index: int
    name: str | None = None
    uuid: str | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    utilization_percent: float | None = None
    memory_utilization_percent: float | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    power_limit_watts: float | None = None
    sm_clock_mhz: int | None = None
    memory_clock_mhz: int | None = None
    throttle_reasons: tuple[str, ...] | None = None
    process_memory_bytes: int | None = None  # this process's memory on the GPU, where reported

    @property
    def memory_percent(self) -> float | None:
        if self.memory_used_bytes is None or not self.memory_total_bytes:
            return None
        return 100.0 * self.memory_used_bytes / self.memory_total_bytes


@dataclass(frozen=True, slots=True)
class SystemSample:
    """What the collectors saw at one tick. Fields a collector could not read are None."""

    taken_at: datetime
    node: str
    cpu_percent: float | None = None
    cpu_per_core_percent: tuple[float, ...] | None = None
    cpu_count: int | None = None
    ram_used_bytes: int | None = None
    ram_total_bytes: int | None = None
    ram_percent: float | None = None
    swap_used_bytes: int | None = None
    swap_percent: float | None = None
    disk_path: str | None = None
    disk_used_bytes: int | None = None
    disk_total_bytes: int | None = None
    disk_free_bytes: int | None = None
    disk_percent: float | None = None
    disk_read_bytes_per_second: float | None = None
    disk_write_bytes_per_second: float | None = None
    cpu_temperature_celsius: float | None = None
    process_rss_bytes: int | None = None
    gpus: tuple[GpuReading, ...] = ()

    @property
    def busiest_gpu(self) -> GpuReading | None:
        """The GPU with the highest memory use: the one a generation most likely runs on."""
        known = [g for g in self.gpus if g.memory_used_bytes is not None]
        if not known:
            return self.gpus[0] if self.gpus else None
        return max(known, key=lambda g: (g.memory_percent or 0.0, g.memory_used_bytes or 0))


# Fields of SystemSample that collectors fill (everything but the stamp and node).
SAMPLE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(SystemSample) if f.name not in ("taken_at", "node")
)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One scalar metric of a sample, declared once: its name, unit and help text.

    Read by the Prometheus collector (gauges ``genperf_host_<name>``, ``genperf_gpu_<name>``),
    the OTLP sink (instruments ``genperf.host.<name>``, ``genperf.gpu.<name>``, their unit and
    description) and the InfluxDB line protocol (each field's type, from its unit). Storage
    columns and CSV follow the record fields themselves.
    """

    name: str
    unit: str
    help: str


# The scalar host metrics of a SystemSample, in display order.
HOST_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("cpu_percent", "percent", "CPU utilisation of the whole host"),
    MetricSpec("ram_used_bytes", "bytes", "Host RAM in use"),
    MetricSpec("ram_total_bytes", "bytes", "Host RAM installed"),
    MetricSpec("ram_percent", "percent", "Host RAM in use, percent"),
    MetricSpec("swap_used_bytes", "bytes", "Swap in use"),
    MetricSpec("swap_percent", "percent", "Swap in use, percent"),
    MetricSpec("disk_used_bytes", "bytes", "Disk used on the data/model volume"),
    MetricSpec("disk_total_bytes", "bytes", "Size of the data/model volume"),
    MetricSpec("disk_free_bytes", "bytes", "Free space on the data/model volume"),
    MetricSpec("disk_percent", "percent", "Disk used on the data/model volume, percent"),
    MetricSpec("disk_read_bytes_per_second", "bytes_per_second", "Disk read rate, all disks"),
    MetricSpec("disk_write_bytes_per_second", "bytes_per_second", "Disk write rate, all disks"),
    MetricSpec("cpu_temperature_celsius", "celsius", "Hottest CPU sensor"),
    MetricSpec("process_rss_bytes", "bytes", "Resident memory of the monitored process"),
)

# The scalar per-GPU metrics of a GpuReading.
GPU_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("memory_used_bytes", "bytes", "GPU memory in use"),
    MetricSpec("memory_total_bytes", "bytes", "GPU memory installed"),
    MetricSpec("utilization_percent", "percent", "GPU compute utilisation"),
    MetricSpec("memory_utilization_percent", "percent", "GPU memory-controller utilisation"),
    MetricSpec("temperature_celsius", "celsius", "GPU core temperature"),
    MetricSpec("power_watts", "watts", "GPU power draw"),
    MetricSpec("power_limit_watts", "watts", "GPU power limit"),
    MetricSpec("sm_clock_mhz", "megahertz", "GPU SM clock"),
    MetricSpec("memory_clock_mhz", "megahertz", "GPU memory clock"),
    MetricSpec("process_memory_bytes", "bytes", "GPU memory used by the monitored process"),
)


@dataclass(frozen=True, slots=True)
class PhaseRecord:
    """One named phase of a generation (model_load, text_encode, denoise, vae_decode, ...)."""

    name: str
    started_offset_seconds: float  # since the task started (monotonic clock)
    duration_seconds: float
    peak_vram_allocated_mb: float | None = None  # torch allocator, exact, reset at phase start
    peak_vram_mb: float | None = None  # best known: allocator reserved peak or sampled device use
    peak_ram_mb: float | None = None  # process peak RSS in the phase, where the OS allows a reset
    failed: bool = False


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """Everything genperf knows about one generation. The unit of storage and analysis."""

    run_id: str  # unique per monitored run; task_id may repeat when a service retries
    task_id: str
    node: str
    model_type: str
    resolution: str
    resolution_class: str
    steps: int | None
    status: TaskStatus
    started_at: datetime
    completed_at: datetime | None = None
    model_used: str | None = None
    frames: int | None = None
    generation_time_seconds: float | None = None
    model_load_time_seconds: float | None = None
    weights_memory_mapped: bool | None = None
    phases: tuple[PhaseRecord, ...] = ()
    step_times_seconds: tuple[float, ...] = ()
    peak_vram_usage_mb: float | None = None
    avg_vram_usage_mb: float | None = None
    vram_total_mb: float | None = None
    peak_vram_reserved_mb: float | None = None
    peak_ram_usage_mb: float | None = None
    avg_ram_usage_mb: float | None = None
    ram_total_mb: float | None = None
    peak_process_rss_mb: float | None = None
    peak_cpu_percent: float | None = None
    avg_cpu_percent: float | None = None
    peak_gpu_utilization_percent: float | None = None
    avg_gpu_utilization_percent: float | None = None
    peak_gpu_temperature_celsius: float | None = None
    avg_gpu_temperature_celsius: float | None = None
    gpu_throttle_reasons: tuple[str, ...] = ()
    samples_count: int = 0
    optimizations_applied: tuple[str, ...] = ()
    error_category: str | None = None
    error_message: str | None = None
    failed_phase: str | None = None
    recovery_suggestions: tuple[str, ...] = ()
    current_phase: str | None = None  # the phase a running task is in; None once finished
    monitor_instance: str | None = None  # "node:pid:create_time" of the process that ran it
    gpu_index: int | None = None  # the GPU of its node it ran on, where known

    @property
    def success(self) -> bool:
        return self.status is TaskStatus.COMPLETED

    @property
    def finished(self) -> bool:
        return self.status is not TaskStatus.RUNNING

    @property
    def peak_vram_percent(self) -> float | None:
        return percent(self.peak_vram_usage_mb, self.vram_total_mb)

    @property
    def peak_ram_percent(self) -> float | None:
        return percent(self.peak_ram_usage_mb, self.ram_total_mb)

    def phase(self, name: str) -> PhaseRecord | None:
        """The last phase of that name, or None."""
        for p in reversed(self.phases):
            if p.name == name:
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: enums as strings, datetimes as ISO 8601, tuples as lists."""
        out = fields_jsonable(self)
        out["success"] = self.success
        return out


def to_jsonable(value: Any) -> Any:
    """Records and values as JSON-ready data, the one converter of genperf.

    Enums become their values, datetimes ISO 8601, tuples and lists lists (sets sorted),
    dataclasses dicts (through their ``to_dict`` where they have one), NaN and infinities
    None (JSON has neither: unknown is null).

    Raises:
        TypeError: a value JSON cannot carry.
    """
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        return to_dict() if callable(to_dict) else fields_jsonable(value)
    if isinstance(value, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [to_jsonable(v) for v in sorted(value)]
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"not JSON-safe: {type(value).__name__}")


def fields_jsonable(obj: Any) -> dict[str, Any]:
    """A dataclass's own fields as a JSON-ready dict (what ``to_dict`` methods build on)."""
    return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


class JsonFields:
    """A result dataclass whose JSON is its own fields (:func:`fields_jsonable`): the base
    gives it ``to_dict``, which :func:`to_jsonable` calls."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return fields_jsonable(self)


# Fields a caller may set through update_task_metrics(task_id, **fields).
# Identity and lifecycle fields (run_id, task_id, node, status, timestamps) are the monitor's.
UPDATABLE_FIELDS: frozenset[str] = frozenset(
    f.name
    for f in dataclasses.fields(TaskRecord)
    if f.name
    not in {
        "run_id",
        "task_id",
        "node",
        "status",
        "started_at",
        "completed_at",
        "resolution_class",
        "monitor_instance",
        "samples_count",
        "current_phase",
        "model_type",
        "resolution",
    }
)

# A node name as a task or sample carries it: a host name (letters, digits, dots, dashes,
# underscores, colons), checked where a client names its node (ingestion API, genperf agent).
NODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$"

TASK_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TaskRecord))

# Longest text each short text field may hold: the column widths of the store (the spec's
# model_used VARCHAR(100), error_category VARCHAR(50)). Longer values are refused up front,
# naming the field, rather than failing later in PostgreSQL.
TEXT_LIMITS: dict[str, int] = {
    "run_id": 64,
    "task_id": 200,
    "node": 255,
    "model_type": 100,
    "model_used": 100,
    "resolution": 50,
    "resolution_class": 20,
    "error_category": 50,
    "failed_phase": 100,
    "current_phase": 100,
    "phase": 100,
    "monitor_instance": 255,
}


# --- resolution classes ------------------------------------------------------------------

# Short side (pixels) of each named class. A frame is classed by its short side, so
# 1280x720 and 720x1280 (portrait) are both "720p".
RESOLUTION_CLASSES: tuple[tuple[str, int], ...] = (
    ("240p", 240),
    ("360p", 360),
    ("480p", 480),
    ("540p", 540),
    ("720p", 720),
    ("1080p", 1080),
    ("1440p", 1440),
    ("2160p", 2160),
)

_CLASS_RE = re.compile(r"^\s*(\d{3,4})\s*[pP]\s*$")
_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*[xX×*,]\s*(\d{1,5})\s*$")
_NAMED = {"4k": "2160p", "uhd": "2160p", "fhd": "1080p", "hd": "720p", "sd": "480p"}


def resolution_class(resolution: str | Sequence[int] | Mapping[str, int]) -> str:
    """Map "1280x720", "720p", (1280, 720) or {"width":..,"height":..} to one class ("720p").

    The class is the nearest standard short side (480, 720, 1080 ...), so Wan's native 832x480
    is "480p" and 1280x704 is "720p". Anything unparseable is "other", never an error: the
    monitor must not fail a generation over a label.
    """
    short: int | None = None
    if isinstance(resolution, Mapping):
        w, h = resolution.get("width"), resolution.get("height")
        if isinstance(w, int) and isinstance(h, int):
            short = min(w, h)
    elif isinstance(resolution, str):
        text = resolution.strip().lower()
        if text in _NAMED:
            return _NAMED[text]
        if m := _CLASS_RE.match(text):
            short = int(m.group(1))
        elif m := _SIZE_RE.match(text):
            short = min(int(m.group(1)), int(m.group(2)))
    elif isinstance(resolution, Sequence) and len(resolution) == 2:
        sw, sh = resolution[0], resolution[1]
        if isinstance(sw, int) and isinstance(sh, int):
            short = min(sw, sh)
    if short is None or short <= 0:
        return "other"
    if short < 200:  # test-sized frames (the tiny offline pipeline's 64x64)
        return "tiny"
    name, _ = min(RESOLUTION_CLASSES, key=lambda c: abs(c[1] - short))
    return name


def resolution_label(resolution: str | Sequence[int] | Mapping[str, int]) -> str:
    """The resolution as given, as text: (1280, 720) -> "1280x720"."""
    if isinstance(resolution, str):
        return resolution.strip()
    if isinstance(resolution, Mapping):
        return f"{resolution.get('width')}x{resolution.get('height')}"
    return "x".join(str(v) for v in resolution)


# --- what a completion became ----------------------------------------------------------


class Durability(enum.StrEnum):
    """What became of a finished task's record when the monitor handed it to the store."""

    DURABLE = "durable"  # committed to the database: survives a kill -9 or a power cut
    QUEUED = "queued"  # held in memory, written when the database is back: a kill -9 loses it
    REFUSED = "refused"  # the database refuses it for good: dropped (counted and logged)


@dataclass(frozen=True, slots=True, eq=False)
class CompletedTask(TaskRecord):
    """What ``complete_task_monitoring`` returns: the finished record, and whether it is
    stored (``durable``). Equal to a :class:`TaskRecord` with the same fields: durability says
    where the record is, not what it is."""

    durability: Durability = field(default=Durability.DURABLE, compare=False)

    @property
    def durable(self) -> bool:
        return self.durability is Durability.DURABLE

    def __eq__(self, other: object) -> bool:
        # A subclass's __eq__ is tried first from both sides, so record == completed works too.
        if not isinstance(other, TaskRecord):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in TASK_FIELDS)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in TASK_FIELDS))


__all__ = [
    "GPU_METRICS",
    "HOST_METRICS",
    "MIB",
    "SAMPLE_FIELDS",
    "STANDARD_PHASES",
    "TASK_FIELDS",
    "TEXT_LIMITS",
    "UPDATABLE_FIELDS",
    "CompletedTask",
    "Durability",
    "ErrorCategory",
    "GpuReading",
    "JsonFields",
    "MetricSpec",
    "PhaseRecord",
    "SystemSample",
    "TaskRecord",
    "TaskStatus",
    "fields_jsonable",
    "resolution_class",
    "resolution_label",
    "to_jsonable",
    "utc_now",
]
