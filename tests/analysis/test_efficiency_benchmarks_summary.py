"""Efficiency (the documented formula), benchmark statuses and the summary, on known histories."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from genperf.analysis.benchmarks import BenchmarkStatus, evaluate_benchmarks
from genperf.analysis.efficiency import resource_efficiency
from genperf.analysis.summary import summarize
from genperf.config import Settings
from genperf.records import TaskStatus
from genperf.testing import make_task

from .conftest import history, vary

B = BenchmarkStatus


# --- efficiency ----------------------------------------------------------------------------


def test_a_healthy_window_scores_by_the_formula(settings: Settings) -> None:
    e = resource_efficiency(history(10), settings)  # on time, GPU 90 % busy, memory fine
    assert (e.success, e.on_time, e.gpu_utilization, e.memory_headroom) == (1.0, 1.0, 0.9, 1.0)
    assert e.score == pytest.approx(0.5 * 1 + 0.3 * 0.9 + 0.2 * 1)


def test_vram_used_up_to_the_maximum_band_costs_nothing(settings: Settings) -> None:
    low = resource_efficiency(history(10, peak_vram_usage_mb=8_000.0), settings)
    high = resource_efficiency(history(10, peak_vram_usage_mb=81_920.0 * 0.89), settings)
    assert high.score == low.score
    over = resource_efficiency(history(10, peak_vram_usage_mb=81_920.0 * 0.97), settings)
    assert over.memory_headroom == 0.0
    assert over.score is not None and high.score is not None and over.score < high.score


def test_late_and_failed_tasks_lower_it(settings: Settings) -> None:
    late = resource_efficiency(history(10, generation_time_seconds=600.0), settings)
    assert late.on_time == pytest.approx(0.5)  # twice the 300 s target
    half_failed = resource_efficiency(vary(history(10), 0.5, status=TaskStatus.FAILED), settings)
    assert half_failed.success == 0.5
    assert half_failed.score == pytest.approx(0.5 * 0.97)


def test_unknown_parts_are_left_out_not_zero(settings: Settings) -> None:
    cpu_only = history(
        10,
        resolution="64x64",
        vram_total_mb=None,
        peak_vram_usage_mb=None,
        avg_gpu_utilization_percent=None,
    )
    e = resource_efficiency(cpu_only, settings)
    assert (e.on_time, e.gpu_utilization) == (None, None)
    assert e.memory_headroom == 1.0
    assert e.score == 1.0  # success x headroom only


def test_no_data_is_none(settings: Settings) -> None:
    assert resource_efficiency([], settings).score is None
    blank = history(
        3,
        resolution="64x64",
        peak_vram_usage_mb=None,
        peak_ram_usage_mb=None,
        avg_gpu_utilization_percent=None,
    )
    assert resource_efficiency(blank, settings).score is None


@hsettings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(TaskStatus)[1:]),
            st.one_of(st.none(), st.floats(0, 1e5)),
            st.one_of(st.none(), st.floats(0, 200)),
            st.one_of(st.none(), st.floats(0, 1e6)),
            st.sampled_from(["1280x720", "1920x1080", "64x64"]),
        ),
        max_size=30,
    )
)
def test_the_score_is_always_in_0_1(
    rows: list[tuple[TaskStatus, float | None, float | None, float | None, str]],
) -> None:
    tasks = [
        make_task(
            status=s,
            generation_time_seconds=g,
            avg_gpu_utilization_percent=u,
            peak_vram_usage_mb=v,
            resolution=r,
        )
        for s, g, u, v, r in rows
    ]
    score = resource_efficiency(tasks, Settings()).score
    assert score is None or 0.0 <= score <= 1.0


# --- benchmarks ----------------------------------------------------------------------------


def by_name(tasks: list, settings: Settings) -> dict[str, object]:  # type: ignore[type-arg]
    return {b.name: b for b in evaluate_benchmarks(tasks, settings)}


@pytest.mark.parametrize(
    ("seconds", "status"),
    [
        (240.0, B.TARGET_MET),
        (300.0, B.TARGET_MET),
        (420.0, B.ACCEPTABLE),
        (450.0, B.ACCEPTABLE),
        (451.0, B.OVER_LIMIT),
    ],
)
def test_generation_time_720p(settings: Settings, seconds: float, status: BenchmarkStatus) -> None:
    b = by_name(history(5, generation_time_seconds=seconds), settings)["generation_time_720p"]
    assert b.status is status  # type: ignore[attr-defined]
    assert (b.target, b.acceptable) == (300.0, 450.0)  # type: ignore[attr-defined]


def test_acceptable_factor_comes_from_settings() -> None:
    s = Settings.model_validate({"benchmark_targets": {"generation_time_acceptable_factor": 2.0}})
    b = by_name(history(5, generation_time_seconds=580.0), s)["generation_time_720p"]
    assert b.status is B.ACCEPTABLE  # type: ignore[attr-defined]


def test_a_class_without_tasks_is_no_data(settings: Settings) -> None:
    b = by_name(history(5), settings)["generation_time_1080p"]
    assert b.status is B.NO_DATA  # type: ignore[attr-defined]
    assert b.value is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("percent", "status"),
    [(60.0, B.TARGET_MET), (80.0, B.ACCEPTABLE), (88.0, B.MARGINAL), (91.0, B.OVER_LIMIT)],
)
def test_vram_usage_band(settings: Settings, percent: float, status: BenchmarkStatus) -> None:
    b = by_name(history(10, peak_vram_usage_mb=81_920.0 * percent / 100), settings)[
        "vram_usage_percent"
    ]
    assert b.status is status  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("failed_share", "status"),
    [(0.0, B.TARGET_MET), (0.04, B.ACCEPTABLE), (0.06, B.BELOW_MINIMUM), (0.2, B.BELOW_MINIMUM)],
)
def test_success_rate_band(
    settings: Settings, failed_share: float, status: BenchmarkStatus
) -> None:
    tasks = vary(history(100), failed_share, status=TaskStatus.FAILED)
    assert by_name(tasks, settings)["success_rate"].status is status  # type: ignore[attr-defined]


def test_every_configured_benchmark_is_reported(settings: Settings) -> None:
    names = [b.name for b in evaluate_benchmarks([], settings)]
    assert names == [
        "generation_time_720p",
        "generation_time_1080p",
        "vram_usage_percent",
        "ram_usage_percent",
        "cpu_usage_percent",
        "success_rate",
        "resource_efficiency",
    ]
    assert {b.status for b in evaluate_benchmarks([], settings)} == {B.NO_DATA}


def test_extra_class_targets_from_the_thresholds() -> None:
    s = Settings.model_validate({"performance_thresholds": {"max_generation_time_480p": 120}})
    b = by_name(history(4, resolution="832x480", generation_time_seconds=100.0), s)
    assert b["generation_time_480p"].status is B.TARGET_MET  # type: ignore[attr-defined]


# --- summary -------------------------------------------------------------------------------


def test_summary_counts_times_and_breakdown(settings: Settings) -> None:
    rnd = random.Random(0)
    a = [
        dataclasses.replace(t, generation_time_seconds=200 + rnd.random() * 100)
        for t in history(30)
    ]
    b = history(
        10,
        resolution="1920x1080",
        generation_time_seconds=1000.0,
        optimizations_applied=("vae_tiling", "dtype:bf16"),
    )
    c = vary(history(10, model_type="i2v-A14B"), 0.3, status=TaskStatus.FAILED)
    s = summarize(a + b + c, settings)
    assert (s.task_count, s.completed, s.failed) == (50, 47, 3)
    assert s.success_rate == pytest.approx(47 / 50)
    times = [t.generation_time_seconds for t in a + b + c if t.status is TaskStatus.COMPLETED]
    assert s.average_generation_time == pytest.approx(sum(times) / len(times))  # type: ignore[arg-type]
    assert s.median_generation_time is not None and s.p95_generation_time == 1000.0
    assert s.average_model_load_time == 20.0
    assert (s.tasks_over_target, s.tasks_over_acceptable) == (10, 0)  # 1000 s at 1080p: 900 s
    keys = {(g.model_type, g.resolution_class, g.optimizations): g.task_count for g in s.breakdown}
    assert keys == {
        ("t2v-A14B", "720p", "dtype:bf16"): 30,
        ("t2v-A14B", "1080p", "dtype:bf16+vae_tiling"): 10,
        ("i2v-A14B", "720p", "dtype:bf16"): 10,
    }
    i2v = next(g for g in s.breakdown if g.model_type == "i2v-A14B")
    assert i2v.success_rate == pytest.approx(0.7)
    assert [g.resolution_class for g in s.by_resolution] == ["720p", "1080p"]
    assert not s.estimated


def test_an_empty_summary_has_none_not_zero(settings: Settings) -> None:
    s = summarize([], settings)
    assert s.task_count == 0
    assert s.success_rate is None
    assert s.average_generation_time is None
    assert s.breakdown == ()
