"""Trends: direction, size and robustness, on histories with a known answer."""

from __future__ import annotations

import dataclasses
import random

import pytest

from genperf.analysis.stats import quantile, robust_fit
from genperf.analysis.trends import Direction, compute_trends
from genperf.records import TaskRecord, TaskStatus

from .conftest import history


def with_times(tasks: list[TaskRecord], times: list[float]) -> list[TaskRecord]:
    return [
        dataclasses.replace(t, generation_time_seconds=x) for t, x in zip(tasks, times, strict=True)
    ]


def noisy(n: int, start: float, end: float, noise: float = 0.05, seed: int = 0) -> list[float]:
    rnd = random.Random(seed)
    return [
        (start + (end - start) * i / (n - 1)) * (1 + rnd.uniform(-noise, noise)) for i in range(n)
    ]


def test_steadily_rising_1080p_times_are_degrading() -> None:
    tasks = with_times(history(48, resolution="1920x1080"), noisy(48, 600, 900))
    t = compute_trends(tasks).generation_time["1080p"]
    assert t.direction is Direction.DEGRADING
    assert t.relative_change == pytest.approx(0.5, abs=0.05)  # 600 s -> 900 s: +50 %
    assert t.slope_per_hour is not None and t.slope_per_hour > 0
    assert t.z is not None and t.z > 3


def test_the_relative_change_is_against_the_start_not_the_median() -> None:
    tasks = with_times(history(48), noisy(48, 0.237, 1.1, noise=0.0))
    t = compute_trends(tasks).generation_time["720p"]
    assert t.start_value == pytest.approx(0.237) and t.end_value == pytest.approx(1.1)
    assert t.relative_change == pytest.approx(1.1 / 0.237 - 1)  # +364 %, not +164 %


def test_falling_times_are_improving() -> None:
    tasks = with_times(history(48), noisy(48, 300, 200))
    assert compute_trends(tasks).generation_time["720p"].direction is Direction.IMPROVING


def test_noise_around_a_level_is_stable() -> None:
    tasks = with_times(history(60), noisy(60, 240, 240, noise=0.3, seed=3))
    assert compute_trends(tasks).generation_time["720p"].direction is Direction.STABLE


def test_a_significant_but_small_drift_is_stable() -> None:
    tasks = with_times(history(60), noisy(60, 240, 250, noise=0.0))  # +4 %, perfectly monotonic
    t = compute_trends(tasks).generation_time["720p"]
    assert t.z is not None and t.z > 3
    assert t.direction is Direction.STABLE


@pytest.mark.parametrize("where", ["start", "end", "spread"])
def test_a_few_20x_outliers_cannot_flip_the_direction(where: str) -> None:
    times = noisy(50, 300, 200)  # improving
    spots = {"start": [0, 1, 2], "end": [47, 48, 49], "spread": [5, 25, 45]}[where]
    for i in spots:  # 20x slower steps, as seen on the shared box
        times[i] *= 20
    tasks = with_times(history(50), times)
    assert compute_trends(tasks).generation_time["720p"].direction is Direction.IMPROVING


def test_outliers_at_the_end_do_not_invent_a_degradation() -> None:
    times = noisy(50, 240, 240, noise=0.02)
    for i in (46, 48, 49):
        times[i] *= 20
    tasks = with_times(history(50), times)
    assert compute_trends(tasks).generation_time["720p"].direction is Direction.STABLE


def test_few_tasks_are_insufficient_data() -> None:
    tasks = with_times(history(3), [100.0, 200.0, 300.0])
    t = compute_trends(tasks).generation_time["720p"]
    assert t.direction is Direction.INSUFFICIENT_DATA
    assert t.slope_per_hour is None


def test_an_empty_window_has_no_series() -> None:
    trends = compute_trends([])
    assert trends.generation_time == {}
    assert trends.success_rate.direction is Direction.INSUFFICIENT_DATA


def test_series_are_per_resolution_class() -> None:
    a = with_times(history(30, resolution="1280x720"), noisy(30, 240, 240, noise=0.01))
    b = with_times(history(30, resolution="1920x1080"), noisy(30, 600, 900))
    trends = compute_trends(a + b)
    assert trends.generation_time["720p"].direction is Direction.STABLE
    assert trends.generation_time["1080p"].direction is Direction.DEGRADING


def test_falling_success_rate_is_degrading() -> None:
    tasks = history(200)
    tasks = [
        dataclasses.replace(t, status=TaskStatus.FAILED) if i > 100 and i % 3 == 0 else t
        for i, t in enumerate(tasks)
    ]
    t = compute_trends(tasks).success_rate
    assert t.direction is Direction.DEGRADING
    assert t.bucketed
    assert t.change is not None and t.change < -0.1
    assert t.relative_change is None  # a rate changes in points, not percent


def test_steady_success_rate_is_stable() -> None:
    assert compute_trends(history(200)).success_rate.direction is Direction.STABLE


def test_rising_vram_and_load_time_are_degrading() -> None:
    tasks = [
        dataclasses.replace(t, peak_vram_usage_mb=40_000 + 400 * i, model_load_time_seconds=10 + i)
        for i, t in enumerate(history(40))
    ]
    trends = compute_trends(tasks)
    assert trends.peak_vram_percent.direction is Direction.DEGRADING
    assert trends.model_load_time.direction is Direction.DEGRADING


def test_long_series_are_bucketed_and_still_right() -> None:
    tasks = with_times(history(2000, every_minutes=0.5), noisy(2000, 200, 300, noise=0.2))
    t = compute_trends(tasks).generation_time["720p"]
    assert t.bucketed
    assert t.points <= 24
    assert t.direction is Direction.DEGRADING


def test_failed_tasks_do_not_count_in_generation_time() -> None:
    tasks = with_times(history(30), noisy(30, 240, 240, noise=0.01))
    tasks += [
        dataclasses.replace(t, status=TaskStatus.FAILED, generation_time_seconds=5.0)
        for t in history(10)
    ]
    assert compute_trends(tasks).generation_time["720p"].tasks == 30


def test_theil_sen_ignores_a_minority_of_wild_points() -> None:
    xs = [float(i) for i in range(20)]
    ys = [2.0 * x + 1 for x in xs]
    ys[3], ys[11], ys[17] = 500.0, -300.0, 900.0
    fit = robust_fit(xs, ys)
    assert fit is not None
    assert fit.slope == pytest.approx(2.0)
    assert fit.intercept == pytest.approx(1.0)


def test_quantile_matches_numpys_default() -> None:
    data = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    assert quantile(data, 0.5) == 3.5
    assert quantile(data, 0.95) == pytest.approx(7.95)
    assert quantile([], 0.5) is None
    with pytest.raises(ValueError, match="q must be"):
        quantile(data, 1.5)
