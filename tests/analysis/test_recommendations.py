"""The rule table: every rule has a history that fires it and one that must not, and an
optimisation already applied is never recommended."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from genperf.analysis.bottlenecks import Severity, detect_bottlenecks
from genperf.analysis.recommendations import RULES, Category, Priority, recommend
from genperf.config import Settings
from genperf.records import PhaseRecord, SystemSample, TaskRecord, TaskStatus

from .conftest import T0, history, vary

GIB = 1024**3
MIB = 1024**2


def vram(percent: float) -> float:
    return 81_920.0 * percent / 100


def oom(kind: str, phase: str) -> dict[str, Any]:
    return {"status": TaskStatus.FAILED, "error_category": kind, "failed_phase": phase}


def fails(category: str, share: float = 0.1, **extra: Any) -> list[TaskRecord]:
    return vary(history(40, **extra), share, status=TaskStatus.FAILED, error_category=category)


def disk(free: float | None = None, read: float | None = None) -> list[SystemSample]:
    return [
        SystemSample(
            taken_at=T0 + timedelta(minutes=60 * i + 1),
            node="n1",
            disk_path="/models",
            disk_free_bytes=None if free is None else int(free),
            disk_read_bytes_per_second=read,
        )
        for i in range(6)
    ]


History = Callable[[], tuple[list[TaskRecord], list[SystemSample]]]


def h(
    tasks: Callable[[], list[TaskRecord]], samples: Callable[[], list[SystemSample]] = list
) -> History:
    return lambda: (tasks(), samples())


SLOW_GPU = {"generation_time_seconds": 400.0}  # over the 300 s 720p target, within 450 s
DECODE_OOM = oom("out_of_memory_gpu", "vae_decode")
SLOW_LOADS = {"model_load_time_seconds": 120.0}

# rule id -> (a history that fires it, one that must not)
TABLE: dict[str, tuple[History, History]] = {
    "vae_tiling": (
        h(lambda: vary(history(50), 0.4, **DECODE_OOM)),
        h(
            lambda: vary(
                history(50, optimizations_applied=("dtype:bf16", "vae_tiling")), 0.4, **DECODE_OOM
            )
        ),
    ),
    "vae_slicing": (
        h(lambda: vary(history(50, optimizations_applied=("vae_tiling",)), 0.4, **DECODE_OOM)),
        h(lambda: vary(history(50), 0.4, **DECODE_OOM)),  # tiling first
    ),
    "model_cpu_offload": (
        h(lambda: history(30, peak_vram_usage_mb=vram(96))),
        h(
            lambda: history(
                30, peak_vram_usage_mb=vram(96), optimizations_applied=("offload:model",)
            )
        ),
    ),
    "quantize_weights": (
        h(lambda: history(30, peak_vram_usage_mb=vram(88))),
        h(
            lambda: history(
                30, peak_vram_usage_mb=vram(88), optimizations_applied=("quantization:int8",)
            )
        ),
    ),
    "half_precision": (
        h(lambda: history(30, peak_vram_usage_mb=vram(88), optimizations_applied=())),
        h(lambda: history(30, peak_vram_usage_mb=vram(88))),  # dtype:bf16
    ),
    "sequential_cpu_offload": (
        h(
            lambda: vary(
                history(30, optimizations_applied=("offload:model",)),
                0.2,
                **oom("out_of_memory_gpu", "denoise"),
            )
        ),
        h(lambda: vary(history(30), 0.2, **oom("out_of_memory_gpu", "denoise"))),
    ),
    "relax_offload": (
        h(
            lambda: history(
                20,
                optimizations_applied=("offload:sequential",),
                avg_gpu_utilization_percent=20.0,
                peak_vram_usage_mb=vram(30),
            )
        ),
        h(
            lambda: history(
                20,
                optimizations_applied=("offload:sequential",),
                avg_gpu_utilization_percent=90.0,
                peak_vram_usage_mb=vram(30),
            )
        ),
    ),
    "drop_sequential_offload": (
        h(
            lambda: history(
                20, optimizations_applied=("offload:sequential",), peak_vram_usage_mb=vram(20)
            )
        ),
        h(
            lambda: history(
                20, optimizations_applied=("offload:sequential",), peak_vram_usage_mb=vram(60)
            )
        ),
    ),
    "drop_quantization": (
        h(
            lambda: history(
                20, optimizations_applied=("quantization:fp8",), peak_vram_usage_mb=vram(20)
            )
        ),
        h(
            lambda: history(
                20, optimizations_applied=("quantization:fp8",), peak_vram_usage_mb=vram(60)
            )
        ),
    ),
    "drop_vae_tiling": (
        h(
            lambda: history(
                20,
                optimizations_applied=("vae_tiling",),
                phases=(PhaseRecord("vae_decode", 0.0, 30.0, peak_vram_mb=vram(10)),),
            )
        ),
        h(
            lambda: history(
                20,
                optimizations_applied=("vae_tiling",),
                phases=(PhaseRecord("vae_decode", 0.0, 30.0, peak_vram_mb=vram(40)),),
            )
        ),
    ),
    "fewer_steps_or_frames": (
        h(lambda: history(20, generation_time_seconds=600.0)),
        h(lambda: history(20, generation_time_seconds=400.0)),
    ),
    "torch_compile": (
        h(lambda: history(20, **SLOW_GPU)),
        h(lambda: history(20, optimizations_applied=("dtype:bf16", "torch_compile"), **SLOW_GPU)),
    ),
    "attention_backend": (
        h(lambda: history(20, **SLOW_GPU)),
        h(lambda: history(20, optimizations_applied=("dtype:bf16", "attention:sdpa"), **SLOW_GPU)),
    ),
    "expandable_segments": (
        h(lambda: vary(history(30), 0.1, **oom("out_of_memory_gpu", "denoise"))),
        h(
            lambda: vary(
                history(30, optimizations_applied=("alloc:expandable_segments",)),
                0.1,
                **oom("out_of_memory_gpu", "denoise"),
            )
        ),
    ),
    "gpu_memory_upgrade": (
        h(
            lambda: history(
                30,
                peak_vram_usage_mb=vram(97),
                optimizations_applied=("offload:model", "quantization:fp8"),
            )
        ),
        h(lambda: history(30, peak_vram_usage_mb=vram(97))),  # software options first
    ),
    "host_memory": (
        h(lambda: history(20, peak_ram_usage_mb=65_536 * 0.93)),
        h(lambda: history(20, peak_ram_usage_mb=65_536 * 0.5)),
    ),
    "cpu_threads": (
        h(lambda: history(20, avg_cpu_percent=97.0)),
        h(lambda: history(20, avg_cpu_percent=50.0)),
    ),
    "inspect_node": (  # node-b's tasks take 1.5x node-a's, for the same model and class
        h(
            lambda: (
                history(10, node="node-a")
                + history(10, node="node-b", generation_time_seconds=360.0)
            )
        ),
        h(lambda: history(10, node="node-a") + history(10, node="node-b")),
    ),
    "cooling": (
        h(lambda: history(20, peak_gpu_temperature_celsius=92.0)),
        h(lambda: history(20, peak_gpu_temperature_celsius=70.0)),
    ),
    "free_disk_space": (
        h(lambda: history(6), lambda: disk(free=5 * GIB)),
        h(lambda: history(6), lambda: disk(free=500 * GIB)),
    ),
    "ssd_model_storage": (
        h(lambda: history(6, every_minutes=60, **SLOW_LOADS), lambda: disk(read=50 * MIB)),
        h(lambda: history(6, every_minutes=60, **SLOW_LOADS), lambda: disk(read=2 * GIB)),
    ),
    "keep_models_loaded": (
        h(lambda: history(20, model_load_time_seconds=150.0)),
        h(
            lambda: history(
                20,
                model_load_time_seconds=150.0,
                optimizations_applied=("dtype:bf16", "model_cached"),
            )
        ),
    ),
    "verify_model_files": (h(lambda: fails("model_load_error")), h(lambda: fails("timeout"))),
    "validate_requests": (h(lambda: fails("invalid_input")), h(lambda: fails("model_load_error"))),
    "review_timeouts": (h(lambda: fails("timeout")), h(lambda: fails("invalid_input"))),
    "generation_time_target": (
        h(lambda: history(20, generation_time_seconds=600.0)),
        h(lambda: history(20, generation_time_seconds=420.0)),  # acceptable
    ),
    "success_rate_target": (h(lambda: fails("unknown", 0.2)), h(lambda: fails("unknown", 0.0))),
    "efficiency_target": (
        h(lambda: history(20, avg_gpu_utilization_percent=10.0, generation_time_seconds=900.0)),
        h(lambda: history(20)),
    ),
    "set_time_targets": (h(lambda: history(10, resolution="832x480")), h(lambda: history(10))),
}


def ids(tasks: list[TaskRecord], samples: list[SystemSample], settings: Settings) -> list[str]:
    return [r.id for r in recommend(tasks, settings, samples)]


def test_every_rule_is_in_the_table() -> None:
    assert sorted(TABLE) == sorted(r.id for r in RULES)
    assert len({r.id for r in RULES}) == len(RULES)


@pytest.mark.parametrize("rule", sorted(TABLE))
def test_the_rule_fires(rule: str, settings: Settings) -> None:
    tasks, samples = TABLE[rule][0]()
    assert rule in ids(tasks, samples, settings)


@pytest.mark.parametrize("rule", sorted(TABLE))
def test_the_rule_stays_silent(rule: str, settings: Settings) -> None:
    tasks, samples = TABLE[rule][1]()
    assert rule not in ids(tasks, samples, settings)


def test_a_healthy_history_gets_no_recommendation(settings: Settings) -> None:
    assert recommend(history(40), settings) == ()


def test_vram_at_96_percent_is_critical_with_offload_or_quantisation_advice(
    settings: Settings,
) -> None:
    tasks = history(30, peak_vram_usage_mb=vram(96))
    b = detect_bottlenecks(tasks, settings).get("vram")
    assert b is not None and b.severity is Severity.CRITICAL
    recs = {r.id: r for r in recommend(tasks, settings)}
    assert {"model_cpu_offload", "quantize_weights"} <= set(recs)
    assert recs["model_cpu_offload"].priority is Priority.HIGH
    assert recs["model_cpu_offload"].category is Category.CONFIGURATION
    assert recs["model_cpu_offload"].affected_count == 30


def test_40_percent_oom_in_vae_decode_gives_tiling_first(settings: Settings) -> None:
    recs = recommend(vary(history(50), 0.4, **DECODE_OOM), settings)
    top = recs[0]
    assert top.id == "vae_tiling"
    assert top.priority is Priority.HIGH
    assert "20 tasks (40%)" in top.evidence
    assert top.suggests == ("vae_tiling",)
    assert "model_cpu_offload" not in [r.id for r in recs]  # not for a decode OOM


def test_a_rule_counts_only_the_tasks_without_its_optimisation(settings: Settings) -> None:
    tasks = history(10, peak_vram_usage_mb=vram(96))
    tasks += history(30, peak_vram_usage_mb=vram(96), optimizations_applied=("offload:model",))
    rec = next(r for r in recommend(tasks, settings) if r.id == "model_cpu_offload")
    assert rec.affected_count == 10
    assert "10 of 40 concerned tasks lack it" in rec.evidence


@pytest.mark.parametrize("rule", [r for r in RULES if r.suggests])
def test_no_rule_recommends_what_every_task_already_has(rule: object, settings: Settings) -> None:
    """Whatever the history, a rule whose optimisation is on every task stays silent."""
    tokens = tuple(rule.suggests) + tuple(t for t in rule.requires)  # type: ignore[attr-defined]
    tokens = tuple(t if not t.endswith(":") else t + "x" for t in tokens)
    for fire, _ in TABLE.values():
        tasks, samples = fire()
        tasks = [dataclasses.replace(t, optimizations_applied=tokens) for t in tasks]
        assert rule.id not in ids(tasks, samples, settings)  # type: ignore[attr-defined]


def test_recommendations_are_ordered_by_priority(settings: Settings) -> None:
    tasks = history(
        30, peak_vram_usage_mb=vram(96), avg_cpu_percent=97.0, generation_time_seconds=400.0
    )
    order = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}
    ranks = [order[r.priority] for r in recommend(tasks, settings)]
    assert ranks == sorted(ranks)


def test_every_category_of_the_spec_is_covered() -> None:
    assert {r.category for r in RULES} == set(Category)
