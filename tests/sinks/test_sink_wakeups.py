"""A live sink's thread wakes only when there is something to send: an idle sink costs nothing
between tasks, and a finished task never wakes it on its own (issue 14's overhead).

The thread reports each planned sleep through ``on_sleep``; the tests wait for those reports
(never for time to pass) and read what it planned."""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence

import pytest

from genperf.records import SystemSample, TaskRecord, TaskStatus
from genperf.sinks.base import BatchingSink, QueueLimits, SinkRetryError
from genperf.testing import PlannedSleeps, make_task

WAIT = 10.0  # seconds a test waits for the sink's thread before it fails


class ListSink(BatchingSink[list[str]]):
    """Sends task ids to a queue the test reads; ``down`` refuses to connect."""

    def __init__(self, limits: QueueLimits, plans: PlannedSleeps) -> None:
        super().__init__("list", limits, on_sleep=plans)
        self.sent: queue.Queue[list[str]] = queue.Queue()
        self.down = False

    def encode(self, tasks: Sequence[TaskRecord], samples: Sequence[SystemSample]) -> list[str]:
        return [t.task_id for t in tasks]

    def send(self, payload: list[str]) -> None:
        if self.down:
            raise SinkRetryError("connection refused")
        self.sent.put(payload)


def finished(task_id: str) -> TaskRecord:
    return make_task(task_id=task_id, run_id=task_id, status=TaskStatus.COMPLETED)


@pytest.fixture
def plans() -> PlannedSleeps:
    return PlannedSleeps()


@pytest.fixture
def sink(plans: PlannedSleeps) -> Iterator[ListSink]:
    made = ListSink(QueueLimits(batch_size=100, flush_seconds=3600), plans)
    made.start()
    yield made
    made.close(timeout=5)


def test_an_idle_sink_sleeps_until_something_is_queued(
    sink: ListSink, plans: PlannedSleeps
) -> None:
    assert plans.next() is None  # no timer while nothing is queued


def test_the_first_task_of_a_round_is_planned_for_and_the_next_ones_do_not_wake_it(
    sink: ListSink, plans: PlannedSleeps
) -> None:
    assert plans.next() is None
    sink.offer_task(finished("a"))  # wakes the thread once, to plan the round
    planned = plans.next()
    assert planned is not None and 3000 < planned <= 3600  # the round's deadline, not a send
    for name in ("b", "c"):
        sink.offer_task(finished(name))  # planned for already: no wake, no send
    assert sink.flush(WAIT)  # a flush sends at once, in one batch
    assert sink.sent.get(timeout=WAIT) == ["a", "b", "c"]
    assert sink.sent.empty()


def test_a_full_batch_is_sent_at_once(plans: PlannedSleeps) -> None:
    sink = ListSink(QueueLimits(batch_size=2, flush_seconds=3600), plans)
    sink.start()
    try:
        assert plans.next() is None
        sink.offer_task(finished("a"))
        sink.offer_task(finished("b"))
        assert sink.sent.get(timeout=WAIT) == ["a", "b"]
    finally:
        sink.close(timeout=5)


def test_a_failed_send_is_retried_after_the_back_off_not_at_once(plans: PlannedSleeps) -> None:
    sink = ListSink(QueueLimits(batch_size=1, flush_seconds=3600, retry_max_seconds=30), plans)
    sink.down = True
    sink.start()
    try:
        assert plans.next() is None
        sink.offer_task(finished("a"))  # a full batch: sent at once, and refused
        retry = plans.next()
        while retry is not None and retry > 1:  # a plan made before the send failed
            retry = plans.next()
        assert retry is not None and 0 < retry <= 0.1  # the first back-off step
        assert sink.stats()["send_errors"] >= 1
        sink.down = False
        assert sink.sent.get(timeout=WAIT) == ["a"]
    finally:
        sink.close(timeout=5)
