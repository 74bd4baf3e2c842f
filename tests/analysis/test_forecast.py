"""Forecasts: when a class's p95 crosses its lines at the current trend; capacity and queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from genperf.analysis.forecast import capacity, forecast_p95
from genperf.testing import make_task

NOW = datetime(2026, 6, 8, tzinfo=UTC)
SINCE = NOW - timedelta(days=7)
TARGETS = {"720p": 300.0, "480p": 120.0}


def rising(per_day: float, start: float, n_per_day: int = 10, **over):
    """720p tasks over the week whose times grow by ``per_day`` seconds a day."""
    out = []
    for i in range(7 * n_per_day):
        at = SINCE + timedelta(days=i / n_per_day)
        t = start + per_day * (at - SINCE).total_seconds() / 86400
        out.append(make_task(started_at=at, generation_time_seconds=t, **over))
    return out


def test_a_rising_p95_crosses_target_then_acceptable_on_the_predicted_days():
    (f,) = forecast_p95(rising(10.0, 200.0), TARGETS, 1.5, since=SINCE, now=NOW)
    assert f.resolution_class == "720p" and f.tasks == 70
    assert f.trend_seconds_per_day == pytest.approx(10.0, rel=0.05)
    # each stretch's p95 sits near its end: about 4 s above the line through the midpoints
    assert f.p95_now_seconds == pytest.approx(274.0, abs=3)
    assert f.target.at == pytest.approx(NOW + timedelta(days=2.6), abs=timedelta(hours=8))
    assert f.acceptable.at == pytest.approx(NOW + timedelta(days=17.6), abs=timedelta(hours=8))
    (slow,) = forecast_p95(rising(2.0, 200.0), TARGETS, 1.5, since=SINCE, now=NOW)
    assert slow.target.at is None and slow.target.text == "not within 30 days"


def test_flat_falling_and_already_above():
    (flat,) = forecast_p95(rising(0.0, 200.0), TARGETS, 1.5, since=SINCE, now=NOW)
    assert flat.target.text == "not within 30 days"
    (above,) = forecast_p95(rising(-1.0, 400.0), TARGETS, 1.5, since=SINCE, now=NOW)
    assert above.target.already and above.target.text == "already above"
    assert not above.acceptable.already and above.acceptable.at is None


def test_too_few_tasks_is_no_trend_said_so():
    (f,) = forecast_p95(rising(10.0, 200.0)[:8], TARGETS, 1.5, since=SINCE, now=NOW)
    assert f.trend_seconds_per_day is None and f.target is None
    assert "too few tasks" in f.note


def test_capacity_sums_nodes_at_the_current_mix_and_times_the_queue():
    tasks = [make_task(node="a", generation_time_seconds=t) for t in (100, 200, 300)]
    tasks += [make_task(node="b", generation_time_seconds=360.0)]
    cap = capacity(tasks, queue=27)
    assert cap.nodes == 2
    assert cap.tasks_per_hour == pytest.approx(3600 / 200 + 3600 / 360)
    assert cap.queue_hours == pytest.approx(27 / 28)
    assert capacity([], 3).tasks_per_hour is None
