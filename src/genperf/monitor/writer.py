"""The StoreWriter: everything the monitor writes goes through here, and none of it can fail
the caller.

* Task records are written synchronously, and ``save_task`` says what happened
  (:class:`Durability`): committed, or only queued in memory, or refused. When the database is
  down, locked, stalled or full, the record waits in a bounded queue, keyed by run_id so a
  later version replaces an earlier one, and a background thread writes it when the database
  is back. A caller never waits for the write lock longer than ``max_write_wait_seconds``:
  behind a stalled write, its record is queued instead.
* Samples are buffered and written in batches by the background thread, off the hot path:
  ``samples_per_write`` of them in one insert and one commit, or fewer once the oldest has
  waited ``max_sample_wait_seconds``.
* Old samples are pruned by the configured retention.

The background thread wakes only when something is due: a full batch of samples, the oldest
sample's or queued record's deadline, a retry during an outage, or ``stop()``. An idle
monitor costs a GPU node its sampler's reads and one batched write per batch, nothing on a
fixed timer.
Whatever must be dropped (a full queue) is counted and logged, never silently lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from genperf.errors import StoreError, StoreUnavailableError
from genperf.logs import Throttle
from genperf.records import Durability, SystemSample, TaskRecord
from genperf.storage.base import Store
from genperf.threads import start_daemon

logger = logging.getLogger("genperf.monitor.writer")

_PRUNE_EVERY_SECONDS = 3600.0


class StoreWriter:
    """Writes task records and samples to a store that may come and go.

    Args:
        open_store: makes the store; called again after a failure to open, so a database that
            is down at start-up is picked up when it comes back.
        owns_store: close the store on ``close()``; False for a store the caller passed in.
        on_open: called with the store once it is open (after an outage at start too).
        flush_seconds: the longest a record queued off the hot path (a task's start, a phase)
            waits for the background thread; also the retry period during an outage.
        samples_per_write: samples written in one batch (one commit); the background thread
            is woken when this many are buffered.
        max_sample_wait_seconds: the longest a buffered sample waits when fewer than a batch
            come (the sampler stalled or stopped); defaults to ``flush_seconds``.
        max_pending_tasks: bound of the queue of tasks waiting for the database.
        max_pending_samples: bound of the sample buffer.
        max_write_wait_seconds: how long a caller waits for another write in progress (a
            stalled database) before its record is queued instead.
        retention: samples older than this are pruned.
        on_sleep: called by the background thread with how long it means to sleep (None:
            until woken), before each sleep; tests watch its plan through it.
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        *,
        flush_seconds: float = 2.0,
        samples_per_write: int = 1,
        max_sample_wait_seconds: float | None = None,
        max_pending_tasks: int = 10_000,
        max_pending_samples: int = 100_000,
        max_write_wait_seconds: float = 2.0,
        retention: timedelta = timedelta(days=7),
        wall_clock: Callable[[], datetime] | None = None,
        owns_store: bool = True,
        on_open: Callable[[Store], None] | None = None,
        on_sleep: Callable[[float | None], None] | None = None,
    ) -> None:
        self._open_store = open_store
        self._owns_store = owns_store
        self._on_open = on_open
        self._store: Store | None = None
        self._flush_seconds = flush_seconds
        self._samples_per_write = max(1, samples_per_write)
        self._max_sample_wait = (
            flush_seconds if max_sample_wait_seconds is None else max_sample_wait_seconds
        )
        self._max_tasks = max_pending_tasks
        self._max_samples = max_pending_samples
        self._max_write_wait = max_write_wait_seconds
        self._retention = retention
        self._wall_clock = wall_clock
        self._pending: OrderedDict[str, TaskRecord] = OrderedDict()
        self._samples: list[SystemSample] = []
        self._lock = threading.Lock()  # guards _pending, _samples and the counters
        self._store_lock = threading.Lock()  # guards opening the store
        # One task write at a time, newest version wins. Re-entrant: opening the store may
        # write (on_open marks interrupted tasks) inside a caller's write.
        self._write_lock = threading.RLock()
        self._outage = False  # a write failed since the queue was last empty
        self._write_error: str | None = None  # why the last write failed; None: it succeeded
        # The background thread sleeps until the earliest of these (monotonic seconds; None:
        # nothing waits), or until woken: by a full batch, by work due before its plan, or stop.
        self._samples_due: float | None = None
        self._tasks_due: float | None = None
        self._planned: float | None = None  # when the sleeping thread means to wake
        self._wake = threading.Event()
        self._on_sleep = on_sleep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune: float | None = None  # monotonic time of the last prune
        self._reopen_at = 0.0  # monotonic time before which a failed open is not retried
        self._queued_note = Throttle()  # one "queued" line per window, not one per task
        self.tasks_written = 0
        self.tasks_dropped = 0
        self.samples_written = 0
        self.samples_dropped = 0
        self.store_errors = 0

    # --- the caller's side -----------------------------------------------------------

    def save_task(self, record: TaskRecord) -> Durability:
        """Write now; on failure, or behind a write in progress for too long, queue it for
        retry. Says whether the record is durable already."""
        if not self._write_lock.acquire(timeout=self._max_write_wait):
            self._queue(record)  # another write is stalled: don't make every caller wait
            return Durability.QUEUED
        try:
            with self._lock:
                self._pending.pop(record.run_id, None)  # this version supersedes a queued one
            store = self.store()
            if store is not None:
                try:
                    store.save_task(record)
                except StoreUnavailableError as exc:
                    self._failed(f"writing task {record.task_id}", exc)
                except Exception as exc:  # refused for good, or a store bug: never the caller's
                    self._failed(f"writing task {record.task_id}", exc)
                    self._drop(record, exc)
                    return Durability.REFUSED
                else:
                    self._succeeded()
                    with self._lock:
                        self.tasks_written += 1
                    return Durability.DURABLE
            self._queue(record)
            return Durability.QUEUED
        finally:
            self._write_lock.release()

    def save_task_later(self, record: TaskRecord) -> None:
        """Queue a record for the background thread's next round (a task's start, a phase
        entered: no commit on the hot path). A later version of the same run supersedes it.

        The thread is not woken for it: an immediate commit on another thread costs the
        generation more than the write itself (it preempts a busy compute thread, and a
        2-thread torch op then waits for it), while waiting for the round lets a task's start
        and first phases collapse into one write."""
        self._queue(record, quiet=True)

    def add_sample(self, sample: SystemSample) -> None:
        """Buffer a sample for the next batch; wakes the background thread only when the
        batch is full or the sample must be written before the thread's planned wake."""
        with self._lock:
            if len(self._samples) >= self._max_samples:
                self._samples.pop(0)
                self.samples_dropped += 1
                if self.samples_dropped == 1 or self.samples_dropped % 1000 == 0:
                    logger.warning(
                        "sample buffer full: %d samples dropped so far", self.samples_dropped
                    )
            self._samples.append(sample)
            # Exactly at the batch size, not above: while the store is down the buffer grows
            # past it, and retries follow the outage's own period instead of every sample.
            wake = len(self._samples) == self._samples_per_write
            if self._samples_due is None:
                self._samples_due = time.monotonic() + self._max_sample_wait
                wake = wake or self._later_than_planned(self._samples_due)
        if wake:
            self._wake.set()

    @property
    def pending_tasks(self) -> int:
        with self._lock:
            return len(self._pending)

    def pending_records(self) -> list[TaskRecord]:
        """The records waiting for the database, oldest first."""
        with self._lock:
            return list(self._pending.values())

    def pending_record(self, task_id: str) -> TaskRecord | None:
        """The newest queued (not yet durable) finished record of this task id, if any."""
        with self._lock:
            for record in reversed(self._pending.values()):
                if record.task_id == task_id and record.finished:
                    return record
        return None

    @property
    def write_error(self) -> str | None:
        """Why the last write (or opening the store) failed; None when the last one worked.
        What readiness reports: a database that answers a ping may still refuse writes
        (locked, full, a corrupt page)."""
        with self._lock:
            return self._write_error

    def store(self, *, force: bool = False) -> Store | None:
        """The store, opening it if needed; None while it cannot be opened.

        After a failed open, callers get None at once until the next attempt is due (one
        flush interval later; the background thread makes it, or ``force``): a database
        that is down or stalled costs one caller the connect timeout, not every caller."""
        if self._store is not None:
            return self._store
        if not force and time.monotonic() < self._reopen_at:
            return None
        opened = None
        with self._store_lock:
            if self._store is None:
                try:
                    self._store = opened = self._open_store()
                except Exception as exc:  # down at start-up: retried on the next write
                    self._reopen_at = time.monotonic() + self._flush_seconds
                    self._failed("opening the store", exc)
                else:
                    self._succeeded()  # opening brought the schema to head: it writes
        if opened is not None and self._on_open is not None:
            try:
                self._on_open(opened)
            except Exception:
                logger.exception("store open hook failed")
        return self._store

    # --- the background thread -------------------------------------------------------

    def start(self) -> None:
        self._thread = start_daemon(self._thread, self._stop, self._run, "genperf-writer")

    def stop(self) -> None:
        """Stop the thread after a last flush; a no-op when stopped."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            self._planned = None  # no thread to wake now
        self.flush()

    def close(self) -> None:
        self.stop()
        if self._store is not None and self._owns_store:
            self._store.close()

    def flush(self) -> None:
        """Write buffered samples and retry queued tasks once."""
        store = self.store(force=True)
        if store is None:  # still down: try again in one period
            retry_at = time.monotonic() + self._flush_seconds
            with self._lock:
                if self._samples:
                    self._samples_due = retry_at
                if self._pending:
                    self._tasks_due = retry_at
            return
        self._retry_tasks(store)
        self._write_samples(store)
        self._prune(store)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                due = _earliest(self._samples_due, self._tasks_due)
                self._planned = due if due is not None else float("inf")
            timeout = None if due is None else max(0.0, due - time.monotonic())
            if self._on_sleep is not None:
                self._on_sleep(timeout)
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set() or not self._round_due():
                continue  # woken to plan for new work, or to stop (stop() flushes)
            try:
                self.flush()
            except Exception:  # the writer thread must survive anything
                logger.exception("store writer flush failed; retrying next round")

    def _round_due(self) -> bool:
        """Is there something to write now: a full batch, or a deadline passed?"""
        now = time.monotonic()
        with self._lock:
            due = _earliest(self._samples_due, self._tasks_due)
            return len(self._samples) >= self._samples_per_write or (due is not None and due <= now)

    def _later_than_planned(self, due: float) -> bool:
        """Under ``_lock``: does the thread plan to wake after ``due``? Then it must be told
        (once: its new plan is ``due``)."""
        if self._planned is None or self._planned <= due:
            return False  # not started yet (start() plans), or it wakes in time anyway
        self._planned = due
        return True

    def _retry_tasks(self, store: Store) -> None:
        with self._lock:
            pending = list(self._pending.values())
            # Whatever this round leaves queued (an outage) is tried again in one period.
            self._tasks_due = time.monotonic() + self._flush_seconds if pending else None
        for record in pending:
            # One write at a time, and only the newest version of a run: a queued "running"
            # record must never land after the "completed" one the caller wrote meanwhile.
            with self._write_lock:
                with self._lock:
                    if self._pending.get(record.run_id) is not record:
                        continue  # superseded
                try:
                    store.save_task(record)
                except StoreUnavailableError as exc:
                    self._failed(f"retrying task {record.task_id}", exc)
                    return  # still down: keep the order, try again next round
                except Exception as exc:  # this record can never be written: don't let it block
                    self._failed(f"writing task {record.task_id}", exc)
                    self._drop(record, exc)
                    continue
                self._succeeded()
                with self._lock:
                    if self._pending.get(record.run_id) is record:  # not superseded meanwhile
                        del self._pending[record.run_id]
                    self.tasks_written += 1
        with self._lock:
            recovered = self._outage and not self._pending
            if recovered:
                self._outage = False
            if not self._pending:
                self._tasks_due = None
            elif self._tasks_due is None:  # queued meanwhile, after the round took its list
                self._tasks_due = time.monotonic() + self._flush_seconds
        if recovered:
            logger.info("the store is back: queued task records written")

    def _write_samples(self, store: Store) -> None:
        with self._lock:
            batch, self._samples = self._samples, []
            self._samples_due = None  # the next sample buffered sets the next deadline
        if not batch:
            return
        try:
            store.save_samples(batch)
        except StoreError as exc:
            self._failed(f"writing {len(batch)} samples", exc)
            with self._lock:  # put them back, oldest first, within the bound
                merged = batch + self._samples
                overflow = max(0, len(merged) - self._max_samples)
                self.samples_dropped += overflow
                self._samples = merged[overflow:]
                self._samples_due = time.monotonic() + self._flush_seconds  # retry, not spin
            return
        self._succeeded()
        with self._lock:
            self.samples_written += len(batch)
            if self._samples_due is None:
                # Samples flow: plan the next batch's deadline now, so that its first sample
                # need not wake the thread to plan it (the full batch wakes it before then).
                self._samples_due = time.monotonic() + self._max_sample_wait
        logger.debug("wrote %d samples", len(batch))

    def _prune(self, store: Store) -> None:
        now = time.monotonic()
        if self._wall_clock is None or (
            self._last_prune is not None and now - self._last_prune < _PRUNE_EVERY_SECONDS
        ):
            return
        self._last_prune = now
        try:
            removed = store.prune_samples(self._wall_clock() - self._retention)
        except StoreError as exc:
            self._failed("pruning samples", exc)
            return
        if removed:
            logger.info("pruned %d samples older than %s", removed, self._retention)

    def _queue(self, record: TaskRecord, *, quiet: bool = False) -> None:
        with self._lock:
            self._pending[record.run_id] = record
            if self._tasks_due is None:
                self._tasks_due = time.monotonic() + self._flush_seconds
            # The thread sleeps past this record's deadline (idle, or waiting for a batch of
            # samples): wake it to plan for it, not to write it now.
            replan = self._later_than_planned(self._tasks_due)
            if len(self._pending) > self._max_tasks:
                _, dropped = self._pending.popitem(last=False)
                self.tasks_dropped += 1
                logger.error(
                    "task queue full (%d): dropped task %s (%d dropped so far)",
                    self._max_tasks,
                    dropped.task_id,
                    self.tasks_dropped,
                )
        if replan:
            self._wake.set()
        if not quiet:
            held = self._queued_note.ready()
            if held is not None:
                logger.warning(
                    "task %s queued until the store is back (%d waiting; %d more queued since "
                    "the last such line)",
                    record.task_id,
                    self.pending_tasks,
                    held,
                )

    def _drop(self, record: TaskRecord, exc: Exception) -> None:
        with self._lock:
            if self._pending.get(record.run_id) is record:
                del self._pending[record.run_id]
            self.tasks_dropped += 1
        logger.error("task %s dropped: the store refuses it (%s)", record.task_id, exc)

    def _succeeded(self) -> None:
        with self._lock:
            self._write_error = None

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            self._write_error = f"{what}: {exc}"
            self._outage = True
            self.store_errors += 1
            loud = self.store_errors == 1 or self.store_errors % 100 == 0
        # Loud on the first error and every 100th: an outage must not flood the log.
        (logger.warning if loud else logger.debug)("store error %s: %s", what, exc)


def _earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None
