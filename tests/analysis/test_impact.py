"""Optimisation impact from history: with against without, per model x resolution class."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genperf.analysis.impact import change_impact, optimization_impact
from genperf.records import TaskStatus
from genperf.testing import make_task


def tasks(n, *, time, peak, opts=(), start=0, **over):
    return [
        make_task(
            generation_time_seconds=time * (1 + 0.01 * (i % 5 - 2)),
            peak_vram_usage_mb=peak * (1 + 0.005 * (i % 3 - 1)),
            optimizations_applied=opts,
            started_at=make_task().started_at + timedelta(minutes=start + i),
            **over,
        )
        for i in range(n)
    ]


def test_tiling_trades_peak_for_time_and_is_said_in_one_line():
    history = tasks(40, time=100.0, peak=50_000.0) + tasks(
        42, time=106.0, peak=31_000.0, opts=("vae_tiling",)
    )
    (impact,) = optimization_impact(history)
    c = impact.comparison
    assert (impact.token, impact.model_type, impact.resolution_class) == (
        "vae_tiling",
        "t2v-A14B",
        "720p",
    )
    assert (c.count_a, c.count_b) == (40, 42)
    assert c.peak_metric == "peak_vram_usage_mb"
    assert c.peak_change_percent == pytest.approx(-38, abs=1)
    assert c.time_change_percent == pytest.approx(6, abs=1)
    assert (c.time_confidence, c.peak_confidence) == ("high", "high")
    assert impact.summary == "vae_tiling: peak −38 %, time +6 %, 42 vs 40 tasks"


def test_noise_is_low_confidence_and_other_classes_and_failures_do_not_mix():
    noisy = [
        make_task(generation_time_seconds=t, optimizations_applied=o)
        for t, o in [(90, ()), (130, ()), (100, ()), (95, ("x",)), (125, ("x",)), (105, ("x",))]
    ]
    other_class = tasks(10, time=10.0, peak=1.0, opts=("x",), resolution="832x480")
    failed = tasks(10, time=1.0, peak=1.0, status=TaskStatus.FAILED)
    (impact,) = optimization_impact(noisy + other_class + failed)
    assert impact.resolution_class == "720p"
    assert (impact.comparison.count_a, impact.comparison.count_b) == (3, 3)
    assert impact.comparison.time_confidence == "low"


def test_too_few_tasks_on_a_side_is_no_comparison():
    history = tasks(10, time=100.0, peak=1.0) + tasks(2, time=50.0, peak=1.0, opts=("y",))
    assert optimization_impact(history) == []


def test_cpu_services_compare_process_peaks():
    history = tasks(5, time=1.0, peak=0, peak_process_rss_mb=800.0) + tasks(
        5, time=1.0, peak=0, opts=("vae_slicing",), peak_process_rss_mb=600.0
    )
    history = [t.__class__(**{**_fields(t), "peak_vram_usage_mb": None}) for t in history]
    (impact,) = optimization_impact(history)
    assert impact.comparison.peak_metric == "peak_process_rss_mb"
    assert impact.comparison.peak_change_percent == pytest.approx(-25)


def _fields(t):
    import dataclasses

    return {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}


def test_a_configuration_change_compares_the_window_before_with_the_window_after():
    before = tasks(10, time=100.0, peak=50_000.0, start=0)
    after = tasks(10, time=80.0, peak=50_000.0, start=60)
    changed_at = after[0].started_at
    (change,) = change_impact(before + after, changed_at, timedelta(hours=1))
    assert change.comparison.time_change_percent == pytest.approx(-20, abs=1)
    assert (change.comparison.count_a, change.comparison.count_b) == (10, 10)
    assert change_impact(before + after, changed_at, timedelta(minutes=5)) == []
