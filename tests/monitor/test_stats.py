import pytest

from genperf.monitor.stats import RunningStats


def test_time_weighted_mean_holds_each_value_until_the_next():
    s = RunningStats()
    s.add(10.0, 0.0)
    s.add(100.0, 9.0)  # 10 % for 9 s, then 100 % for 1 s
    assert s.mean(10.0) == pytest.approx(19.0)
    assert s.peak == 100.0
    assert s.last == 100.0
    assert s.count == 2


def test_unknown_readings_are_skipped_not_zero():
    s = RunningStats()
    s.add(None, 0.0)
    s.add(50.0, 1.0)
    s.add(None, 2.0)
    assert s.mean(3.0) == 50.0
    assert s.count == 1


def test_no_reading_means_unknown():
    s = RunningStats()
    assert s.mean(5.0) is None
    assert s.peak is None


def test_single_reading_with_no_elapsed_time_is_its_value():
    s = RunningStats()
    s.add(42.0, 7.0)
    assert s.mean(7.0) == 42.0
