"""The StoreWriter: everything the monitor writes goes through here, and none of it can fail
the caller.

* Task records are written synchronously (a completed task is durable when the monitor's
  ``complete_task_monitoring`` returns). When the database is down or locked, the record waits
  in a bounded queue, keyed by run_id so a later version replaces an earlier one, and a
  background thread writes it when the database is back.
* Samples are buffered and written in batches by the background thread, off the hot path.
* Old samples are pruned by the configured retention.
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
from genperf.records import SystemSample, TaskRecord
from genperf.storage.base import Store

logger = logging.getLogger("genperf.monitor.writer")

_PRUNE_EVERY_SECONDS = 3600.0


class StoreWriter:
    """Writes task records and samples to a store that may come and go.

    Args:
        open_store: makes the store; called again after a failure to open, so a database that
            is down at start-up is picked up when it comes back.
        owns_store: close the store on ``close()``; False for a store the caller passed in.
        flush_seconds: how often the background thread writes samples and retries tasks.
        max_pending_tasks: bound of the queue of tasks waiting for the database.
        max_pending_samples: bound of the sample buffer.
        retention: samples older than this are pruned.
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        *,
        flush_seconds: float = 2.0,
        max_pending_tasks: int = 10_000,
        max_pending_samples: int = 100_000,
        retention: timedelta = timedelta(days=7),
        wall_clock: Callable[[], datetime] | None = None,
        owns_store: bool = True,
    ) -> None:
        self._open_store = open_store
        self._owns_store = owns_store
        self._store: Store | None = None
        self._flush_seconds = flush_seconds
        self._max_tasks = max_pending_tasks
        self._max_samples = max_pending_samples
        self._retention = retention
        self._wall_clock = wall_clock
        self._pending: OrderedDict[str, TaskRecord] = OrderedDict()
        self._samples: list[SystemSample] = []
        self._lock = threading.Lock()  # guards _pending, _samples and the counters
        self._store_lock = threading.Lock()  # guards opening the store
        self._write_lock = threading.Lock()  # one task write at a time, newest version wins
        self._outage = False  # a write failed since the queue was last empty
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune: float | None = None  # monotonic time of the last prune
        self._queued_note = Throttle()  # one "queued" line per window, not one per task
        self.tasks_written = 0
        self.tasks_dropped = 0
        self.samples_written = 0
        self.samples_dropped = 0
        self.store_errors = 0

    # --- the caller's side -----------------------------------------------------------

    def save_task(self, record: TaskRecord) -> bool:
        """Write now; on failure queue it for retry. True when it is durable already."""
        with self._write_lock:
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
                    return False
                else:
                    with self._lock:
                        self.tasks_written += 1
                    return True
            self._queue(record)
            return False

    def save_task_later(self, record: TaskRecord) -> None:
        """Queue a record for the background thread's next round (a task's start, a phase
        entered: no commit on the hot path). A later version of the same run supersedes it.

        The thread is not woken for it: an immediate commit on another thread costs the
        generation more than the write itself (it preempts a busy compute thread, and a
        2-thread torch op then waits for it), while waiting for the round lets a task's start
        and first phases collapse into one write."""
        self._queue(record, quiet=True)

    def add_sample(self, sample: SystemSample) -> None:
        with self._lock:
            if len(self._samples) >= self._max_samples:
                self._samples.pop(0)
                self.samples_dropped += 1
                if self.samples_dropped == 1 or self.samples_dropped % 1000 == 0:
                    logger.warning(
                        "sample buffer full: %d samples dropped so far", self.samples_dropped
                    )
            self._samples.append(sample)

    @property
    def pending_tasks(self) -> int:
        with self._lock:
            return len(self._pending)

    def store(self) -> Store | None:
        """The store, opening it if needed; None while it cannot be opened."""
        if self._store is not None:
            return self._store
        with self._store_lock:
            if self._store is None:
                try:
                    self._store = self._open_store()
                except Exception as exc:  # down at start-up: retried on the next write
                    self._failed("opening the store", exc)
        return self._store

    # --- the background thread -------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="genperf-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after a last flush; a no-op when stopped."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()

    def close(self) -> None:
        self.stop()
        if self._store is not None and self._owns_store:
            self._store.close()

    def flush(self) -> None:
        """Write buffered samples and retry queued tasks once."""
        store = self.store()
        if store is None:
            return
        self._retry_tasks(store)
        self._write_samples(store)
        self._prune(store)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the writer thread must survive anything
                logger.exception("store writer flush failed; retrying next round")

    def _retry_tasks(self, store: Store) -> None:
        with self._lock:
            pending = list(self._pending.values())
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
                with self._lock:
                    if self._pending.get(record.run_id) is record:  # not superseded meanwhile
                        del self._pending[record.run_id]
                    self.tasks_written += 1
        with self._lock:
            recovered = self._outage and not self._pending
            if recovered:
                self._outage = False
        if recovered:
            logger.info("the store is back: queued task records written")

    def _write_samples(self, store: Store) -> None:
        with self._lock:
            batch, self._samples = self._samples, []
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
            return
        with self._lock:
            self.samples_written += len(batch)
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
            if len(self._pending) > self._max_tasks:
                _, dropped = self._pending.popitem(last=False)
                self.tasks_dropped += 1
                logger.error(
                    "task queue full (%d): dropped task %s (%d dropped so far)",
                    self._max_tasks,
                    dropped.task_id,
                    self.tasks_dropped,
                )
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

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            self._outage = True
            self.store_errors += 1
            loud = self.store_errors == 1 or self.store_errors % 100 == 0
        # Loud on the first error and every 100th: an outage must not flood the log.
        (logger.warning if loud else logger.debug)("store error %s: %s", what, exc)
