"""The store writer wakes only when there is work: an idle monitor costs a GPU node its
sampler's reads and one batched write per batch of samples, no timer (issue 13).

The writer's thread reports each planned sleep through ``on_sleep``; the tests wait for those
reports (never for time to pass) and read what it planned."""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence

import pytest

from genperf.errors import StoreUnavailableError
from genperf.monitor.writer import StoreWriter
from genperf.records import SystemSample, TaskRecord, utc_now
from genperf.storage import MemoryStore
from genperf.testing import PlannedSleeps, make_task

WAIT = 10.0  # seconds a test waits for the writer's thread before it fails


class WatchedStore(MemoryStore):
    """A MemoryStore that reports each batch of samples and each task row it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: queue.Queue[int] = queue.Queue()
        self.rows: queue.Queue[str] = queue.Queue()

    def save_samples(self, samples: Sequence[SystemSample]) -> None:
        super().save_samples(samples)
        self.batches.put(len(samples))

    def save_task(self, record: TaskRecord) -> None:
        super().save_task(record)
        self.rows.put(record.run_id)


class DownStore(MemoryStore):
    def save_samples(self, samples: Sequence[SystemSample]) -> None:
        raise StoreUnavailableError("database is locked")


def sample() -> SystemSample:
    return SystemSample(taken_at=utc_now(), node="n", cpu_percent=1.0)


@pytest.fixture
def writers() -> Iterator[list[StoreWriter]]:
    made: list[StoreWriter] = []
    yield made
    for writer in made:
        writer.close()


def started(
    writers: list[StoreWriter],
    store: MemoryStore,
    plans: PlannedSleeps,
    *,
    flush_seconds: float,
    samples_per_write: int = 1,
) -> StoreWriter:
    """A running writer whose buffered samples may wait an hour; its first plan is awaited
    (idle: it sleeps until woken)."""
    writer = StoreWriter(
        lambda: store,
        flush_seconds=flush_seconds,
        samples_per_write=samples_per_write,
        max_sample_wait_seconds=3600,
        on_sleep=plans,
    )
    writers.append(writer)
    writer.start()
    assert plans.next() is None  # nothing queued, nothing buffered: no periodic wake-up
    return writer


def test_an_idle_writer_sleeps_until_woken_with_no_timer(writers: list[StoreWriter]) -> None:
    started(writers, WatchedStore(), PlannedSleeps(), flush_seconds=0.01)


def test_samples_are_written_in_one_batch_once_the_batch_is_full(
    writers: list[StoreWriter],
) -> None:
    store, plans = WatchedStore(), PlannedSleeps()
    writer = started(writers, store, plans, flush_seconds=0.01, samples_per_write=3)
    writer.add_sample(sample())  # the first of a batch: the thread plans for its deadline
    planned = plans.next()
    assert planned is not None and 3000 < planned <= 3600  # a batch's wait, not the 0.01 s round
    writer.add_sample(sample())
    writer.add_sample(sample())  # the batch is full: written now, in one insert
    assert store.batches.get(timeout=WAIT) == 3
    assert writer.samples_written == 3
    assert store.batches.empty()


def test_a_start_row_waits_at_most_the_flush_period_while_the_writer_waits_for_a_batch(
    writers: list[StoreWriter],
) -> None:
    store, plans = WatchedStore(), PlannedSleeps()
    writer = started(writers, store, plans, flush_seconds=0.05, samples_per_write=100)
    writer.add_sample(sample())
    assert plans.next() is not None  # asleep for the batch, up to an hour
    record = make_task(run_id="start-row")
    writer.save_task_later(record)  # woken to plan for it, not to write it at once
    planned = plans.next()
    assert planned is not None and planned <= 0.05
    assert store.rows.get(timeout=WAIT) == "start-row"


def test_an_outage_is_retried_every_flush_period_not_in_a_loop(
    writers: list[StoreWriter],
) -> None:
    plans = PlannedSleeps()
    writer = started(writers, DownStore(), plans, flush_seconds=30)
    writer.add_sample(sample())  # a full batch: written at once, and refused
    retry = plans.next()
    assert retry is not None and retry > 20  # the next try one period later, not at once
    assert writer.samples_dropped == 0
    assert writer.store_errors == 1


def test_a_stopped_writer_writes_what_is_buffered(writers: list[StoreWriter]) -> None:
    store = WatchedStore()
    writer = started(writers, store, PlannedSleeps(), flush_seconds=2, samples_per_write=100)
    writer.add_sample(sample())
    writer.stop()
    assert store.batches.get(timeout=WAIT) == 1
