"""Bottleneck detection: what limits the generations of a window, how badly, and where.

One check per resource, in :data:`CHECKS`. Each says "bottleneck" (with a severity, the evidence
in numbers, how many tasks and which), "ok" (there was data and no problem) or "no_data".
A window with no tasks has status "no_data"; one where every check is fine has status "ok".

Thresholds: VRAM, RAM and CPU use the bands of ``settings.benchmark_targets`` (a share of at
least :data:`MIN_SHARE` of the tasks at or above the maximum band is critical, at or above the
acceptable band a warning); the others are the constants below and in ``window.py``.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from genperf import optimizations as opt
from genperf.analysis.nodes import compare_nodes
from genperf.analysis.stats import finite, median, ratio
from genperf.analysis.window import TaskSource, Window, as_window, failure_category
from genperf.config import Settings
from genperf.numbers import percent
from genperf.records import ErrorCategory, JsonFields, SystemSample, TaskRecord, fields_jsonable
from genperf.tally import (
    GPU_CRITICAL_CELSIUS,
    GPU_HOT_CELSIUS,
    LOAD_MIN_SECONDS,
    LOAD_SHARE,
    LOAD_SLOW_SECONDS,
    LOW_GPU_UTILIZATION_PERCENT,
    load_dominates,
    thermal_throttled,
)
from genperf.units import count_of

GIB = 1024**3
MIB = 1024**2
MIN_SHARE = 0.05  # share of tasks over a band that makes it a bottleneck
LOAD_MIN_SHARE = 0.20  # cold loads are normal after a restart; a fifth of all tasks is not
LOAD_CRITICAL_SHARE = 0.50
DISK_MIN_FREE_BYTES = 50 * GIB  # the spec's "Minimum Disk: 50GB free space for models"
DISK_CRITICAL_FREE_BYTES = 10 * GIB
DISK_LOAD_MIN_SECONDS = 10.0  # loads shorter than this say little about the disk
SLOW_DISK_BYTES_PER_SECOND = 200 * MIB  # below a SATA SSD: a hard disk or network storage
CPU_HOT_CELSIUS = 95.0
SWAP_HIGH_PERCENT = 25.0
MAX_EXAMPLES = 10


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class CheckStatus(enum.StrEnum):
    OK = "ok"
    BOTTLENECK = "bottleneck"
    NO_DATA = "no_data"


class AnalysisStatus(enum.StrEnum):
    NO_DATA = "no_data"  # no finished task in the window
    OK = "ok"  # tasks, and no bottleneck
    BOTTLENECKS_FOUND = "bottlenecks_found"


@dataclass(frozen=True, slots=True)
class Bottleneck(JsonFields):
    """One limit the window's generations ran into.

    Attributes:
        resource: vram, ram, cpu, model_loading, disk, thermal or offload.
        severity: info, warning or critical.
        summary: one sentence for people, with the numbers.
        evidence: the numbers behind it (counts, shares, percentiles, thresholds).
        affected_count: how many tasks of the window it touched (exact; 0 for host-wide ones).
        affected_share: affected_count / tasks, or None.
        affected_tasks: task ids of examples, worst first (at most 10).
    """

    resource: str
    severity: Severity
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    affected_count: int = 0
    affected_share: float | None = None
    affected_tasks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BottleneckAnalysis(JsonFields):
    """All checks of a window. ``bottlenecks`` are most severe first."""

    status: AnalysisStatus
    message: str
    bottlenecks: tuple[Bottleneck, ...]
    checks: Mapping[str, CheckStatus]
    primary_bottleneck: str | None
    task_count: int

    def get(self, resource: str) -> Bottleneck | None:
        return next((b for b in self.bottlenecks if b.resource == resource), None)


_Result = tuple[CheckStatus, Bottleneck | None]


def _sentence(parts: Iterable[str]) -> str:
    """Clauses joined into one sentence. Only the first letter is raised: str.capitalize()
    would lower the rest, printing units and names as "mib/s", "gib" and "gpu"."""
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _share(n: int, of: int) -> float:
    return n / of if of else 0.0


def _examples(
    tasks: Iterable[TaskRecord],
    when: Callable[[TaskRecord], bool],
    worst: Callable[[TaskRecord], float],
) -> tuple[str, ...]:
    # ties broken by task id, so the examples do not depend on the order tasks were read in
    hits = sorted((t for t in tasks if when(t)), key=lambda t: (worst(t), t.task_id), reverse=True)
    return tuple(dict.fromkeys(t.task_id for t in hits))[:MAX_EXAMPLES]


def _failures(w: Window, category: ErrorCategory) -> int:
    return sum(f.count for f in w.failures if f.category is category)


def _severity_from_bands(share_max: float, share_acc: float) -> Severity | None:
    if share_max >= MIN_SHARE:
        return Severity.CRITICAL
    if share_acc >= MIN_SHARE:
        return Severity.WARNING
    return None


def _worse(a: Severity | None, b: Severity | None) -> Severity | None:
    if a is None or (b is not None and b.rank > a.rank):
        return b
    return a


def _memory(
    w: Window, settings: Settings, resource: str, oom: ErrorCategory, label: str
) -> _Result:
    t = w.tally
    prefix: Literal["vram", "ram"] = "vram" if resource == "vram" else "ram"
    bt = settings.benchmark_targets
    band = bt.vram_usage_percent if prefix == "vram" else bt.ram_usage_percent
    counts = t.resource(prefix)
    n, ge_acc, ge_max = counts.n, counts.ge_acceptable, counts.ge_maximum
    ooms = _failures(w, oom)
    if n == 0 and ooms == 0:
        return CheckStatus.NO_DATA, None
    share_max, share_acc = _share(ge_max, n), _share(ge_acc, n)
    oom_share = _share(ooms, t.tasks)
    severity = _severity_from_bands(share_max, share_acc)
    if ooms:
        severity = _worse(
            severity, Severity.CRITICAL if oom_share >= MIN_SHARE else Severity.WARNING
        )
    if severity is None:
        return CheckStatus.OK, None
    affected = max(ge_acc, ooms)
    parts = []
    if ge_acc:
        parts.append(
            f"peak {label} reached {band.acceptable:g}% or more in {ge_acc} of {n} tasks "
            f"({ge_max} at {band.maximum:g}% or more)"
        )
    if ooms:
        parts.append(f"{count_of(ooms, 'task')} failed with {label} out-of-memory")

    def value(x: TaskRecord) -> float | None:
        if prefix == "vram":
            return percent(x.peak_vram_usage_mb, x.vram_total_mb)
        return percent(x.peak_ram_usage_mb, x.ram_total_mb)

    evidence: dict[str, Any] = {
        "tasks_with_data": n,
        "tasks_at_or_above_acceptable": ge_acc,
        "tasks_at_or_above_maximum": ge_max,
        "acceptable_percent": band.acceptable,
        "maximum_percent": band.maximum,
        "mean_peak_percent": finite(ratio(counts.total, n)),
        "max_peak_percent": finite(counts.max),
        "out_of_memory_failures": ooms,
    }
    if prefix == "ram":
        swaps = [s.swap_percent for s in w.samples if s.swap_percent is not None]
        evidence["max_swap_percent"] = max(swaps) if swaps else None
    return CheckStatus.BOTTLENECK, Bottleneck(
        resource=resource,
        severity=severity,
        summary=_sentence(parts),
        evidence=evidence,
        affected_count=affected,
        affected_share=ratio(affected, t.tasks),
        affected_tasks=_examples(
            w.tasks,
            lambda x: (value(x) or 0.0) >= band.acceptable or failure_category(x) is oom,
            lambda x: value(x) or 0.0,
        ),
    )


def _vram(w: Window, settings: Settings) -> _Result:
    return _memory(w, settings, "vram", ErrorCategory.OUT_OF_MEMORY_GPU, "GPU memory")


def _ram(w: Window, settings: Settings) -> _Result:
    return _memory(w, settings, "ram", ErrorCategory.OUT_OF_MEMORY_HOST, "host memory")


def _cpu(w: Window, settings: Settings) -> _Result:
    t = w.tally
    band = settings.benchmark_targets.cpu_usage_percent
    if t.cpu_n == 0:
        return CheckStatus.NO_DATA, None
    severity = _severity_from_bands(
        _share(t.cpu_ge_maximum, t.cpu_n), _share(t.cpu_ge_acceptable, t.cpu_n)
    )
    if severity is None:
        return CheckStatus.OK, None
    gpu_note = (
        f"; the GPU was under {LOW_GPU_UTILIZATION_PERCENT:g}% busy in "
        f"{t.cpu_busy_gpu_idle} of them"
        if t.cpu_busy_gpu_idle
        else ("" if t.gpu_tasks else "; no GPU: generation runs on the CPU")
    )
    return CheckStatus.BOTTLENECK, Bottleneck(
        resource="cpu",
        severity=severity,
        summary=(
            f"Mean CPU use was {band.acceptable:g}% or more in {t.cpu_ge_acceptable} of "
            f"{t.cpu_n} tasks{gpu_note}."
        ),
        evidence={
            "tasks_with_data": t.cpu_n,
            "tasks_at_or_above_acceptable": t.cpu_ge_acceptable,
            "tasks_at_or_above_maximum": t.cpu_ge_maximum,
            "acceptable_percent": band.acceptable,
            "maximum_percent": band.maximum,
            "mean_cpu_percent": finite(ratio(t.cpu_sum, t.cpu_n)),
            "max_cpu_percent": finite(t.cpu_max),
            "cpu_busy_while_gpu_idle": t.cpu_busy_gpu_idle,
            "gpu_tasks": t.gpu_tasks,
        },
        affected_count=t.cpu_ge_acceptable,
        affected_share=ratio(t.cpu_ge_acceptable, t.tasks),
        affected_tasks=_examples(
            w.tasks,
            lambda x: (x.avg_cpu_percent or 0.0) >= band.acceptable,
            lambda x: x.avg_cpu_percent or 0.0,
        ),
    )


def _loading(w: Window, settings: Settings) -> _Result:
    t = w.tally
    if t.load_n == 0:
        return CheckStatus.NO_DATA, None
    share_dom, share_slow = _share(t.load_dominant, t.load_n), _share(t.load_slow, t.load_n)
    if share_dom >= LOAD_CRITICAL_SHARE:
        severity = Severity.CRITICAL
    elif share_dom >= LOAD_MIN_SHARE or share_slow >= LOAD_MIN_SHARE:
        severity = Severity.WARNING
    else:
        return CheckStatus.OK, None
    affected = max(t.load_dominant, t.load_slow)

    def slow(x: TaskRecord) -> bool:
        load, gen = x.model_load_time_seconds, x.generation_time_seconds
        if load is None:
            return False
        return load >= LOAD_SLOW_SECONDS or load_dominates(load, gen)

    return CheckStatus.BOTTLENECK, Bottleneck(
        resource="model_loading",
        severity=severity,
        summary=(
            f"Model loading took {LOAD_SHARE:.0%} or more of the generation time (and at least "
            f"{LOAD_MIN_SECONDS:g} s) in "
            f"{t.load_dominant} of {t.load_n} tasks that loaded a model, and "
            f"{LOAD_SLOW_SECONDS:g} s or more in {t.load_slow} "
            f"(mean load {ratio(t.load_sum, t.load_n) or 0:.1f} s)."
        ),
        evidence={
            "tasks_with_data": t.load_n,
            "tasks_load_dominant": t.load_dominant,
            "tasks_load_slow": t.load_slow,
            "load_share_threshold": LOAD_SHARE,
            "slow_load_seconds": LOAD_SLOW_SECONDS,
            "mean_load_seconds": finite(ratio(t.load_sum, t.load_n)),
            "max_load_seconds": finite(t.load_max),
        },
        affected_count=affected,
        affected_share=ratio(affected, t.tasks),
        affected_tasks=_examples(w.tasks, slow, lambda x: x.model_load_time_seconds or 0.0),
    )


def _load_read_rates(w: Window) -> list[tuple[TaskRecord, float]]:
    """(task, median disk read rate during its model load) for loads long enough to measure."""
    timed = sorted(
        (s.taken_at, s.disk_read_bytes_per_second)
        for s in w.samples
        if s.disk_read_bytes_per_second is not None
    )
    if not timed:
        return []
    stamps = [s[0] for s in timed]
    out = []
    for t in w.tasks:
        load = t.model_load_time_seconds
        if load is None or load < DISK_LOAD_MIN_SECONDS:
            continue
        phase = t.phase("model_load")
        offset = phase.started_offset_seconds if phase is not None else 0.0
        begin = t.started_at + timedelta(seconds=offset)
        lo = bisect.bisect_left(stamps, begin)
        hi = bisect.bisect_right(stamps, begin + timedelta(seconds=load))
        rates = [r for _, r in timed[lo:hi] if r is not None]
        m = median(rates)
        if m is not None:
            out.append((t, m))
    return out


def _latest_disks(samples: Iterable[SystemSample]) -> dict[tuple[str, str | None], SystemSample]:
    latest: dict[tuple[str, str | None], SystemSample] = {}
    for s in samples:
        if s.disk_free_bytes is None:
            continue
        key = (s.node, s.disk_path)
        if key not in latest or s.taken_at >= latest[key].taken_at:
            latest[key] = s
    return latest


def _disk(w: Window, settings: Settings) -> _Result:
    disks = _latest_disks(w.samples)
    rates = _load_read_rates(w)
    if not disks and not rates:
        return CheckStatus.NO_DATA, None
    severity: Severity | None = None
    parts: list[str] = []
    evidence: dict[str, Any] = {"min_free_bytes_required": DISK_MIN_FREE_BYTES}
    low = {k: s for k, s in disks.items() if (s.disk_free_bytes or 0) < DISK_MIN_FREE_BYTES}
    if disks:
        worst = min(disks.values(), key=lambda s: s.disk_free_bytes or 0)
        evidence["min_free_bytes"] = worst.disk_free_bytes
        evidence["disk_path"] = worst.disk_path
        evidence["node"] = worst.node
    if low:
        worst = min(low.values(), key=lambda s: s.disk_free_bytes or 0)
        free = worst.disk_free_bytes or 0
        severity = Severity.CRITICAL if free < DISK_CRITICAL_FREE_BYTES else Severity.WARNING
        parts.append(
            f"only {free / GIB:.1f} GiB free on {worst.disk_path or 'the model disk'} "
            f"({worst.node}); models need {DISK_MIN_FREE_BYTES / GIB:.0f} GiB"
        )
    slow = [(t, r) for t, r in rates if 0 < r < SLOW_DISK_BYTES_PER_SECOND]
    evidence["loads_measured"] = len(rates)
    evidence["median_load_read_bytes_per_second"] = finite(median(r for _, r in rates))
    evidence["slow_read_bytes_per_second"] = SLOW_DISK_BYTES_PER_SECOND
    slow_share = _share(len(slow), len(rates))
    if rates and slow_share >= 0.5:
        severity = _worse(severity, Severity.WARNING)
        parts.append(
            f"model loads read the disk at under {SLOW_DISK_BYTES_PER_SECOND / MIB:.0f} MiB/s "
            f"in {len(slow)} of {len(rates)} measured loads"
        )
    if severity is None:
        return CheckStatus.OK, None
    affected = w.scale(len(slow)) if slow_share >= 0.5 else 0
    return CheckStatus.BOTTLENECK, Bottleneck(
        resource="disk",
        severity=severity,
        summary=_sentence(parts),
        evidence=evidence,
        affected_count=affected,
        affected_share=ratio(affected, w.tally.tasks),
        affected_tasks=tuple(dict.fromkeys(t.task_id for t, _ in sorted(slow, key=lambda p: p[1])))[
            :MAX_EXAMPLES
        ],
    )


def _thermal(w: Window, settings: Settings) -> _Result:
    t = w.tally
    cpu_temps = [
        s.cpu_temperature_celsius for s in w.samples if s.cpu_temperature_celsius is not None
    ]
    if t.temp_n == 0 and not cpu_temps and not t.throttle_thermal and not t.throttle_power:
        return CheckStatus.NO_DATA, None
    n = t.tasks
    parts: list[str] = []
    severity: Severity | None = None
    if _share(t.temp_critical, n) >= MIN_SHARE:
        severity = Severity.CRITICAL
    elif _share(t.temp_hot, n) >= MIN_SHARE or _share(t.throttle_thermal, n) >= MIN_SHARE:
        severity = Severity.WARNING
    elif t.temp_hot or t.throttle_thermal or _share(t.throttle_power, n) >= MIN_SHARE:
        severity = Severity.INFO
    if t.temp_hot:
        parts.append(
            f"GPU reached {GPU_HOT_CELSIUS:g} °C or more in {count_of(t.temp_hot, 'task')}"
        )
    if t.throttle_thermal:
        parts.append(f"the GPU clock was cut for heat in {count_of(t.throttle_thermal, 'task')}")
    if t.throttle_power and severity is not None:
        parts.append(f"power-capped in {count_of(t.throttle_power, 'task')}")
    cpu_max = max(cpu_temps) if cpu_temps else None
    if cpu_max is not None and cpu_max >= CPU_HOT_CELSIUS:
        severity = _worse(severity, Severity.WARNING)
        parts.append(f"the CPU reached {cpu_max:.0f} °C")
    if severity is None:
        return CheckStatus.OK, None
    affected = max(t.temp_hot, t.throttle_thermal)
    return CheckStatus.BOTTLENECK, Bottleneck(
        resource="thermal",
        severity=severity,
        summary=_sentence(parts),
        evidence={
            "tasks_with_temperature": t.temp_n,
            "max_gpu_temperature_celsius": finite(t.temp_max),
            "tasks_hot": t.temp_hot,
            "tasks_critical": t.temp_critical,
            "hot_celsius": GPU_HOT_CELSIUS,
            "critical_celsius": GPU_CRITICAL_CELSIUS,
            "tasks_thermal_throttled": t.throttle_thermal,
            "tasks_power_throttled": t.throttle_power,
            "max_cpu_temperature_celsius": cpu_max,
        },
        affected_count=affected,
        affected_share=ratio(affected, t.tasks),
        affected_tasks=_examples(
            w.tasks,
            lambda x: (
                (x.peak_gpu_temperature_celsius or 0.0) >= GPU_HOT_CELSIUS
                or thermal_throttled(x.gpu_throttle_reasons)
            ),
            lambda x: x.peak_gpu_temperature_celsius or 0.0,
        ),
    )


def _offload(w: Window, settings: Settings) -> _Result:
    t = w.tally
    if t.offload_n == 0:
        return CheckStatus.OK, None
    if t.offload_util_n == 0:
        return CheckStatus.NO_DATA, None
    share_low = _share(t.offload_util_low, t.offload_util_n)
    if share_low < 0.5:
        return CheckStatus.OK, None
    severity = Severity.WARNING if t.offload_sequential else Severity.INFO

    def offloaded(x: TaskRecord) -> bool:
        return opt.is_applied(x.optimizations_applied, (opt.OFFLOAD,))

    vram = [
        p
        for x in w.tasks
        if offloaded(x) and (p := percent(x.peak_vram_usage_mb, x.vram_total_mb)) is not None
    ]
    return CheckStatus.BOTTLENECK, Bottleneck(
        resource="offload",
        severity=severity,
        summary=(
            f"Offloaded runs kept the GPU under {LOW_GPU_UTILIZATION_PERCENT:g}% busy in "
            f"{t.offload_util_low} of {t.offload_util_n} tasks (mean "
            f"{ratio(t.offload_util_sum, t.offload_util_n) or 0:.0f}%): they wait on "
            "weight transfers over PCIe."
        ),
        evidence={
            "offloaded_tasks": t.offload_n,
            "sequential_offload_tasks": t.offload_sequential,
            "tasks_gpu_mostly_idle": t.offload_util_low,
            "mean_gpu_utilization_percent": finite(ratio(t.offload_util_sum, t.offload_util_n)),
            "median_peak_vram_percent": finite(median(vram)),
        },
        affected_count=t.offload_util_low,
        affected_share=ratio(t.offload_util_low, t.tasks),
        affected_tasks=_examples(
            w.tasks,
            lambda x: (
                offloaded(x)
                and (x.avg_gpu_utilization_percent or 100.0) < LOW_GPU_UTILIZATION_PERCENT
            ),
            lambda x: -(x.avg_gpu_utilization_percent or 0.0),
        ),
    )


def _nodes(w: Window, settings: Settings) -> _Result:
    """A node that stands out from the fleet (see ``analysis/nodes.py``)."""
    del settings
    if len({t.node for t in w.tasks}) < 2:
        return CheckStatus.NO_DATA, None
    findings = compare_nodes(w.tasks, w.samples)
    if not findings:
        return CheckStatus.OK, None
    read = sum(f.tasks for f in findings)  # of the tasks read (a sample in a large window)
    flagged = {(f.node, f.model_type, f.resolution_class) for f in findings}
    return CheckStatus.BOTTLENECK, Bottleneck(
        resource="node",
        severity=Severity.WARNING,
        summary=". ".join(f.summary for f in findings) + ".",
        evidence={
            "nodes": [fields_jsonable(f) for f in findings],
            "sampled": w.sampled,
        },
        affected_count=w.scale(read),
        affected_share=ratio(w.scale(read), w.tally.tasks),
        affected_tasks=_examples(
            w.tasks,
            lambda x: (x.node, x.model_type, x.resolution_class) in flagged,
            lambda x: x.generation_time_seconds or 0.0,
        ),
    )


# The checks, in the order they are reported when severities tie.
CHECKS: tuple[tuple[str, Callable[[Window, Settings], _Result]], ...] = (
    ("vram", _vram),
    ("ram", _ram),
    ("cpu", _cpu),
    ("model_loading", _loading),
    ("disk", _disk),
    ("thermal", _thermal),
    ("offload", _offload),
    ("node", _nodes),
)


def detect_bottlenecks(
    tasks: TaskSource, settings: Settings, samples: Iterable[SystemSample] = ()
) -> BottleneckAnalysis:
    """Run every check of :data:`CHECKS` over a window.

    Args:
        tasks: the window's task records, or a prepared Window.
        settings: bands come from ``settings.benchmark_targets``.
        samples: system samples of the window (disk space and read rates, CPU temperature,
            swap); ignored when ``tasks`` is a Window (it carries its own).
    """
    w = as_window(tasks, settings, samples)
    if w.tally.tasks == 0:
        return BottleneckAnalysis(
            status=AnalysisStatus.NO_DATA,
            message="No finished generations in this window: nothing to analyse.",
            bottlenecks=(),
            checks={name: CheckStatus.NO_DATA for name, _ in CHECKS},
            primary_bottleneck=None,
            task_count=0,
        )
    found: list[Bottleneck] = []
    checks: dict[str, CheckStatus] = {}
    for name, check in CHECKS:
        result, bottleneck = check(w, settings)
        checks[name] = result
        if bottleneck is not None:
            found.append(bottleneck)
    order = {name: i for i, (name, _) in enumerate(CHECKS)}
    found.sort(key=lambda b: (-b.severity.rank, -(b.affected_share or 0.0), order[b.resource]))
    if not found:
        unchecked = [k for k, v in checks.items() if v is CheckStatus.NO_DATA]
        note = f" (no data for: {', '.join(unchecked)})" if unchecked else ""
        message = f"No bottleneck in {count_of(w.tally.tasks, 'task')}{note}."
        status = AnalysisStatus.OK
    else:
        message = f"{len(found)} bottleneck(s); the main one: {found[0].resource}."
        status = AnalysisStatus.BOTTLENECKS_FOUND
    return BottleneckAnalysis(
        status=status,
        message=message,
        bottlenecks=tuple(found),
        checks=checks,
        primary_bottleneck=found[0].resource if found else None,
        task_count=w.tally.tasks,
    )


__all__ = [
    "CHECKS",
    "AnalysisStatus",
    "Bottleneck",
    "BottleneckAnalysis",
    "CheckStatus",
    "Severity",
    "detect_bottlenecks",
]
