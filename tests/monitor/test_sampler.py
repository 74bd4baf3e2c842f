import logging
import threading
import time

from genperf.monitor.sampler import Sampler
from genperf.testing import FakeCollector, ManualClock


def _sampler(collectors, clock, interval=5.0, sink=None, **kw):
    seen = []
    s = Sampler(
        collectors,
        interval,
        sink or (lambda sample, t: seen.append((sample, t))),
        node="n1",
        clock=clock,
        **kw,
    )
    return s, seen


def test_sample_merges_collectors_and_ignores_unknown_keys():
    clock = ManualClock()
    s, seen = _sampler(
        [FakeCollector({"cpu_percent": 12.0}), FakeCollector({"ram_percent": 40.0, "bogus": 1})],
        clock,
    )
    sample = s.sample_once()
    assert sample.cpu_percent == 12.0
    assert sample.ram_percent == 40.0
    assert sample.node == "n1"
    assert seen == [(sample, clock())]


def test_a_failing_collector_leaves_its_fields_unknown_and_is_logged_once(caplog):
    clock = ManualClock()
    broken = FakeCollector(name="broken", error=RuntimeError("sensor gone"))
    s, _ = _sampler([broken, FakeCollector({"cpu_percent": 5.0})], clock)
    with caplog.at_level(logging.WARNING, logger="genperf.monitor.sampler"):
        for _ in range(5):
            sample = s.sample_once()
    assert sample.cpu_percent == 5.0
    assert sample.ram_percent is None
    assert s.collector_errors == 5
    assert sum("broken" in r.getMessage() for r in caplog.records) == 1


def test_history_is_bounded():
    s, _ = _sampler([FakeCollector({})], ManualClock(), history_size=3)
    for _ in range(10):
        s.sample_once()
    assert len(s.history) == 3
    assert s.samples_taken == 10


def test_schedule_does_not_drift_when_collecting_takes_time():
    clock = ManualClock(start=100.0)
    stop_after = 20
    ticks: list[float] = []

    def slow_collect():
        clock.advance(1.5)  # each tick costs 1.5 s of a 5 s interval
        return {}

    def sink(sample, t):
        ticks.append(t)

    def wait(timeout):  # a fake sleep: moves the clock instead of sleeping
        clock.advance(timeout)
        return len(ticks) >= stop_after

    s = Sampler([FakeCollector(slow_collect)], 5.0, sink, node="n", clock=clock, wait=wait)
    s._run()
    assert len(ticks) == stop_after
    # tick k ends at 100 + 5k + 1.5 exactly: no accumulated drift
    assert ticks == [100.0 + 5.0 * k + 1.5 for k in range(stop_after)]


def test_missed_ticks_are_skipped_not_burst():
    clock = ManualClock(start=0.0)
    ticks: list[float] = []

    def collect():
        if len(ticks) == 2:
            clock.advance(23.0)  # a stall of several intervals
        return {}

    def wait(timeout):
        assert timeout >= 0
        clock.advance(timeout)
        return len(ticks) >= 5

    s = Sampler(
        [FakeCollector(collect)],
        5.0,
        lambda smp, t: ticks.append(t),
        node="n",
        clock=clock,
        wait=wait,
    )
    s._run()
    assert ticks == [0.0, 5.0, 33.0, 35.0, 40.0]


def test_start_and_stop_are_idempotent_and_stop_returns_within_an_interval():
    s = Sampler([FakeCollector({"cpu_percent": 1.0})], 30.0, lambda smp, t: None, node="n")
    s.start()
    s.start()
    assert s.running
    assert sum(t.name == "genperf-sampler" for t in threading.enumerate()) == 1
    began = time.monotonic()
    s.stop()
    s.stop()
    assert time.monotonic() - began < 30.0  # woken at once, not after the 30 s interval
    assert not s.running
    assert s.samples_taken >= 1


def test_a_failing_sink_does_not_stop_sampling(caplog):
    def sink(sample, t):
        raise ValueError("boom")

    s = Sampler([FakeCollector({})], 1.0, sink, node="n", clock=ManualClock())
    with caplog.at_level(logging.ERROR, logger="genperf.monitor.sampler"):
        s.sample_once()
        s.sample_once()
    assert s.samples_taken == 2
