"""Labels that say what the numbers mean: over a limit, change from the start, what a score
lacks, counts that agree with their evidence, units as written, no GPU words without a GPU."""

from __future__ import annotations

from datetime import timedelta

from genperf.analysis.benchmarks import BenchmarkStatus, evaluate_benchmarks
from genperf.analysis.bottlenecks import detect_bottlenecks
from genperf.analysis.efficiency import resource_efficiency
from genperf.analysis.recommendations import recommend
from genperf.config import Settings
from genperf.records import SystemSample

from .conftest import T0, history

NO_GPU = {
    "vram_total_mb": None,
    "peak_vram_usage_mb": None,
    "avg_vram_usage_mb": None,
    "avg_gpu_utilization_percent": None,
    "peak_gpu_utilization_percent": None,
    "peak_gpu_temperature_celsius": None,
    "avg_gpu_temperature_celsius": None,
}


def test_a_usage_over_its_limit_is_over_limit_not_below_minimum(settings: Settings) -> None:
    tasks = history(10, avg_cpu_percent=99.9)
    cpu = next(b for b in evaluate_benchmarks(tasks, settings) if b.name == "cpu_usage_percent")
    assert cpu.status is BenchmarkStatus.OVER_LIMIT
    assert cpu.status.value == "over_limit"


def test_efficiency_without_gpu_data_says_what_it_lacks(settings: Settings) -> None:
    e = resource_efficiency(history(10, resolution="64x64", **NO_GPU), settings)
    assert e.gpu_utilization is None and e.on_time is None
    assert set(e.missing) == {"gpu_utilization", "on_time"}
    assert "no GPU" in e.missing["gpu_utilization"]
    assert e.known_weight == 0.2  # memory headroom only
    full = resource_efficiency(history(10), settings)
    assert (full.missing, full.known_weight) == ({}, 1.0)


def test_cpu_advice_on_a_host_without_gpu_does_not_speak_of_one(settings: Settings) -> None:
    cpu_only = history(10, avg_cpu_percent=99.0, **NO_GPU)
    rec = next(r for r in recommend(cpu_only, settings) if r.id == "cpu_threads")
    assert "GPU" not in rec.expected_effect
    assert rec.affected_count == 10
    with_gpu = history(10, avg_cpu_percent=99.0, avg_gpu_utilization_percent=20.0)
    rec = next(r for r in recommend(with_gpu, settings) if r.id == "cpu_threads")
    assert "GPU" in rec.expected_effect


def test_units_and_names_keep_their_case_in_summaries(settings: Settings) -> None:
    samples = [
        SystemSample(
            taken_at=T0 + timedelta(minutes=m),
            node="n1",
            disk_path="/models",
            disk_free_bytes=5 * 2**30,
        )
        for m in range(3)
    ]
    disk = detect_bottlenecks(history(3), settings, samples).get("disk")
    assert disk is not None
    assert "GiB" in disk.summary and "gib" not in disk.summary
    vram = detect_bottlenecks(history(10, peak_vram_usage_mb=81_000.0), settings).get("vram")
    assert vram is not None and "GPU memory" in vram.summary
