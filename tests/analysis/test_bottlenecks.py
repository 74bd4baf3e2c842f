"""Bottleneck detection over synthetic histories whose answer is known: each check fires on
one history and stays silent on another."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest

from genperf.analysis.bottlenecks import (
    MAX_EXAMPLES,
    AnalysisStatus,
    CheckStatus,
    Severity,
    detect_bottlenecks,
)
from genperf.config import Settings
from genperf.records import GpuReading, SystemSample, TaskRecord, TaskStatus

from .conftest import T0, failed, history, vary

GIB = 1024**3
MIB = 1024**2
VRAM = 81_920.0  # make_task's device size, MiB
RAM = 65_536.0


def vram(percent: float) -> float:
    return VRAM * percent / 100


def ram(percent: float) -> float:
    return RAM * percent / 100


def sample(minutes: float, **fields: object) -> SystemSample:
    return SystemSample(taken_at=T0 + timedelta(minutes=minutes), node="n1", **fields)  # type: ignore[arg-type]


def oom(kind: str, phase: str = "denoise") -> dict[str, object]:
    return {"status": TaskStatus.FAILED, "error_category": kind, "failed_phase": phase}


Case = tuple[
    str, Callable[[], list[TaskRecord]], Callable[[], list[SystemSample]], str, Severity | None
]


def none() -> list[SystemSample]:
    return []


CASES: list[Case] = [
    # (id, tasks, samples, resource, expected severity: None = must not fire)
    (
        "vram peaks at 96%",
        lambda: history(40, peak_vram_usage_mb=vram(96)),
        none,
        "vram",
        Severity.CRITICAL,
    ),
    (
        "vram peaks at 88%",
        lambda: history(40, peak_vram_usage_mb=vram(88)),
        none,
        "vram",
        Severity.WARNING,
    ),
    (
        "vram peaks at 80%: used, not a bottleneck",
        lambda: history(40, peak_vram_usage_mb=vram(80)),
        none,
        "vram",
        None,
    ),
    (
        "2 of 50 at 96% is under 5%",
        lambda: vary(history(50), 0.04, peak_vram_usage_mb=vram(96)),
        none,
        "vram",
        None,
    ),
    (
        "1 GPU OOM in 100",
        lambda: vary(history(100), 0.01, **oom("out_of_memory_gpu")),
        none,
        "vram",
        Severity.WARNING,
    ),
    (
        "10 GPU OOMs in 100",
        lambda: vary(history(100), 0.10, **oom("out_of_memory_gpu")),
        none,
        "vram",
        Severity.CRITICAL,
    ),
    (
        "ram peaks at 93%",
        lambda: history(20, peak_ram_usage_mb=ram(93)),
        none,
        "ram",
        Severity.CRITICAL,
    ),
    (
        "ram peaks at 80%",
        lambda: history(20, peak_ram_usage_mb=ram(80)),
        none,
        "ram",
        Severity.WARNING,
    ),
    ("ram at 50%", lambda: history(20, peak_ram_usage_mb=ram(50)), none, "ram", None),
    (
        "host OOMs",
        lambda: vary(history(20), 0.2, **oom("out_of_memory_host", "model_load")),
        none,
        "ram",
        Severity.CRITICAL,
    ),
    ("cpu at 97%", lambda: history(20, avg_cpu_percent=97.0), none, "cpu", Severity.CRITICAL),
    ("cpu at 88%", lambda: history(20, avg_cpu_percent=88.0), none, "cpu", Severity.WARNING),
    ("cpu at 60%", lambda: history(20, avg_cpu_percent=60.0), none, "cpu", None),
    (
        "loads take most of each task",
        lambda: history(20, model_load_time_seconds=150.0, generation_time_seconds=240.0),
        none,
        "model_loading",
        Severity.CRITICAL,
    ),
    (
        "a third of loads over 60 s",
        lambda: vary(
            history(30, generation_time_seconds=1000.0), 0.34, model_load_time_seconds=70.0
        ),
        none,
        "model_loading",
        Severity.WARNING,
    ),
    ("20 s loads of 240 s tasks", lambda: history(20), none, "model_loading", None),
    (
        "0.1 s loads of 0.3 s test-sized tasks",
        lambda: history(20, model_load_time_seconds=0.1, generation_time_seconds=0.3),
        none,
        "model_loading",
        None,
    ),
    (
        "5 GiB free on the model disk",
        lambda: history(10),
        lambda: [
            sample(0, disk_path="/models", disk_free_bytes=100 * GIB),
            sample(90, disk_path="/models", disk_free_bytes=5 * GIB),
        ],
        "disk",
        Severity.CRITICAL,
    ),
    (
        "30 GiB free",
        lambda: history(10),
        lambda: [sample(90, disk_path="/models", disk_free_bytes=30 * GIB)],
        "disk",
        Severity.WARNING,
    ),
    (
        "500 GiB free",
        lambda: history(10),
        lambda: [sample(90, disk_path="/models", disk_free_bytes=500 * GIB)],
        "disk",
        None,
    ),
    (
        "loads read at 50 MiB/s",
        lambda: history(6, every_minutes=60, model_load_time_seconds=120.0),
        lambda: [sample(60 * i + 1, disk_read_bytes_per_second=50.0 * MIB) for i in range(6)],
        "disk",
        Severity.WARNING,
    ),
    (
        "loads read at 2 GiB/s",
        lambda: history(6, every_minutes=60, model_load_time_seconds=120.0),
        lambda: [sample(60 * i + 1, disk_read_bytes_per_second=2.0 * GIB) for i in range(6)],
        "disk",
        None,
    ),
    (
        "GPU at 92 °C",
        lambda: history(20, peak_gpu_temperature_celsius=92.0),
        none,
        "thermal",
        Severity.CRITICAL,
    ),
    (
        "GPU at 86 °C",
        lambda: history(20, peak_gpu_temperature_celsius=86.0),
        none,
        "thermal",
        Severity.WARNING,
    ),
    (
        "thermal throttling in 10%",
        lambda: vary(history(20), 0.1, gpu_throttle_reasons=("hw_thermal",)),
        none,
        "thermal",
        Severity.WARNING,
    ),
    (
        "power capped in 10%",
        lambda: vary(history(20), 0.1, gpu_throttle_reasons=("sw_power_cap",)),
        none,
        "thermal",
        Severity.INFO,
    ),
    (
        "CPU at 97 °C",
        lambda: history(5),
        lambda: [sample(1, cpu_temperature_celsius=97.0)],
        "thermal",
        Severity.WARNING,
    ),
    ("GPU at 70 °C", lambda: history(20), none, "thermal", None),
    (
        "sequential offload, GPU 20% busy",
        lambda: history(
            10, optimizations_applied=("offload:sequential",), avg_gpu_utilization_percent=20.0
        ),
        none,
        "offload",
        Severity.WARNING,
    ),
    (
        "model offload, GPU 30% busy",
        lambda: history(
            10, optimizations_applied=("offload:model",), avg_gpu_utilization_percent=30.0
        ),
        none,
        "offload",
        Severity.INFO,
    ),
    (
        "model offload, GPU 90% busy",
        lambda: history(
            10, optimizations_applied=("offload:model",), avg_gpu_utilization_percent=90.0
        ),
        none,
        "offload",
        None,
    ),
]


@pytest.mark.parametrize(
    ("tasks", "samples", "resource", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_check(
    settings: Settings,
    tasks: Callable[[], list[TaskRecord]],
    samples: Callable[[], list[SystemSample]],
    resource: str,
    expected: Severity | None,
) -> None:
    analysis = detect_bottlenecks(tasks(), settings, samples())
    found = analysis.get(resource)
    if expected is None:
        assert found is None, found
        assert analysis.checks[resource] is CheckStatus.OK
    else:
        assert found is not None, analysis.message
        assert found.severity is expected, found
        assert analysis.checks[resource] is CheckStatus.BOTTLENECK
        assert found.summary and found.evidence


def test_a_healthy_history_says_so(settings: Settings) -> None:
    analysis = detect_bottlenecks(history(40), settings)
    assert analysis.status is AnalysisStatus.OK
    assert analysis.bottlenecks == ()
    assert analysis.primary_bottleneck is None
    assert "No bottleneck in 40 tasks" in analysis.message
    assert analysis.checks["disk"] is CheckStatus.NO_DATA  # no samples: said, not guessed


def test_an_empty_window_says_no_data(settings: Settings) -> None:
    analysis = detect_bottlenecks([], settings)
    assert analysis.status is AnalysisStatus.NO_DATA
    assert set(analysis.checks.values()) == {CheckStatus.NO_DATA}
    assert analysis.task_count == 0


def test_running_tasks_are_not_analysed(settings: Settings) -> None:
    running = history(5, status=TaskStatus.RUNNING, peak_vram_usage_mb=vram(99))
    assert detect_bottlenecks(running, settings).status is AnalysisStatus.NO_DATA


def test_unknown_measurements_are_no_data_not_zero(settings: Settings) -> None:
    blank = history(
        10,
        vram_total_mb=None,
        peak_ram_usage_mb=None,
        avg_cpu_percent=None,
        model_load_time_seconds=None,
        peak_gpu_temperature_celsius=None,
    )
    checks = detect_bottlenecks(blank, settings).checks
    for name in ("vram", "ram", "cpu", "model_loading", "disk", "thermal"):
        assert checks[name] is CheckStatus.NO_DATA, name


def test_evidence_counts_and_worst_examples(settings: Settings) -> None:
    tasks = history(40)
    tasks = [
        dataclasses.replace(t, peak_vram_usage_mb=vram(96 + i % 4 * 0.5)) if i < 20 else t
        for i, t in enumerate(tasks)
    ]
    b = detect_bottlenecks(tasks, settings).get("vram")
    assert b is not None
    assert b.affected_count == 20
    assert b.affected_share == 0.5
    assert b.evidence["tasks_at_or_above_maximum"] == 20
    assert b.evidence["max_peak_percent"] == pytest.approx(97.5)
    assert len(b.affected_tasks) == MAX_EXAMPLES
    worst = {t.task_id for t in tasks[3:20:4]}  # the ones at 97.5 %
    assert worst <= set(b.affected_tasks[:5])


def test_bands_come_from_settings(settings: Settings) -> None:
    tasks = history(20, peak_vram_usage_mb=vram(80))
    strict = Settings.model_validate(
        {
            "benchmark_targets": {
                "vram_usage_percent": {"optimal": 50, "acceptable": 60, "maximum": 75}
            }
        }
    )
    assert detect_bottlenecks(tasks, settings).get("vram") is None
    b = detect_bottlenecks(tasks, strict).get("vram")
    assert b is not None
    assert b.severity is Severity.CRITICAL


def test_most_severe_first(settings: Settings) -> None:
    tasks = history(20, peak_vram_usage_mb=vram(88), peak_gpu_temperature_celsius=92.0)
    analysis = detect_bottlenecks(tasks, settings)
    assert [b.resource for b in analysis.bottlenecks] == ["thermal", "vram"]
    assert analysis.primary_bottleneck == "thermal"
    assert analysis.status is AnalysisStatus.BOTTLENECKS_FOUND


def test_gpu_samples_do_not_confuse_the_disk_check(settings: Settings) -> None:
    samples = [sample(1, gpus=(GpuReading(index=0, temperature_celsius=60.0),))]
    assert detect_bottlenecks(history(5), settings, samples).checks["disk"] is CheckStatus.NO_DATA


def test_one_failure_reads_as_one_task(settings: Settings) -> None:
    tasks = vary(history(6), 1 / 6, **failed(error_category="out_of_memory_host"))
    ram = next(b for b in detect_bottlenecks(tasks, settings).bottlenecks if b.resource == "ram")
    assert "1 task failed with host memory out-of-memory" in ram.summary
