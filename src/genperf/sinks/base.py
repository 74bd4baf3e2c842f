"""The queue every live sink shares: bounded, batched, retried with back-off, off the caller's
thread.

The monitor calls :meth:`BatchingSink.offer_task` when a task finishes and
:meth:`BatchingSink.offer_sample` at each sample. Both only append to a bounded deque under a
lock (no I/O, no encoding, no thread wake-up unless a batch is full or the thread sleeps
with nothing planned), so a slow or dead endpoint never blocks or slows a generation. The
sink's own thread sends what is queued at most ``flush_seconds`` after the first of it came
(at once when a batch is full): it encodes up to ``batch_size`` items and sends them. With
nothing queued it sleeps until something is: no timer wakes an idle sink. A batch that fails
to send is kept and retried after a back-off that doubles up to ``retry_max_seconds``;
meanwhile new items keep queueing, and when a queue is full its oldest item is dropped and
counted. A batch the endpoint refuses for good (bad data) is dropped, counted and logged, so
it cannot block the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from genperf.records import SystemSample, TaskRecord, TaskStatus
from genperf.threads import start_daemon

logger = logging.getLogger("genperf.sinks")

Payload = TypeVar("Payload")
Item = TypeVar("Item")
FIRST_BACKOFF_SECONDS = 0.1


class SinkRetryError(Exception):
    """The endpoint is unreachable or busy: keep the batch and try again later."""


class SinkRefusedError(Exception):
    """The endpoint refuses the batch for good: drop it (counted). ``tasks``: how many of its
    tasks were refused when the others were accepted (None: the whole batch)."""

    def __init__(self, message: str, *, tasks: int | None = None) -> None:
        super().__init__(message)
        self.tasks = tasks


@dataclass(frozen=True, slots=True)
class QueueLimits:
    batch_size: int = 1000
    queue_size: int = 10_000
    flush_seconds: float = 1.0
    retry_max_seconds: float = 60.0


class BatchingSink(ABC, Generic[Payload]):
    """A sink whose items wait in bounded queues for its own sending thread.

    Subclasses say how a batch becomes a payload (:meth:`encode`) and how a payload is sent
    (:meth:`send`, raising :class:`SinkRetryError` or :class:`SinkRefusedError`).

    Args:
        name: for logs and thread names ("influxdb", "elasticsearch" ...).
        limits: batch size, queue bound (one per kind: tasks, samples), round and back-off.
        takes_samples: False for sinks of task documents only (samples are then ignored).
        on_sleep: called by the sending thread with how long it means to sleep (None: until
            woken), before each sleep; tests watch its plan through it.
    """

    def __init__(
        self,
        name: str,
        limits: QueueLimits,
        *,
        takes_samples: bool = True,
        on_sleep: Callable[[float | None], None] | None = None,
    ) -> None:
        self.name = name
        self.limits = limits
        self.takes_samples = takes_samples
        self._tasks: deque[TaskRecord] = deque()
        self._samples: deque[SystemSample] = deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when everything is sent
        self._in_flight: tuple[Payload, int, int] | None = None  # payload, tasks, samples
        self._wake = threading.Event()
        # When the thread must next send (monotonic; None: nothing queued), and when the
        # sleeping thread means to wake (None: not sleeping yet; inf: until woken).
        self._due: float | None = None
        self._planned: float | None = None
        self._flush_asked = False  # flush(): send now, whatever is due
        self._on_sleep = on_sleep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = 0.0
        self._closed = False  # set by close(): a send still running then counts nothing
        self.tasks_sent = 0
        self.samples_sent = 0
        self.tasks_dropped = 0
        self.samples_dropped = 0
        self.send_errors = 0

    # --- the monitor's side: O(1), never blocks on I/O -----------------------------------

    def offer_task(self, record: TaskRecord) -> None:
        if record.status is TaskStatus.RUNNING:
            return
        self._offer(self._tasks, record, "task")

    def offer_sample(self, sample: SystemSample) -> None:
        if self.takes_samples:
            self._offer(self._samples, sample, "sample")

    def _offer(self, queue: deque[Item], item: Item, kind: str) -> None:
        with self._lock:
            if len(queue) >= self.limits.queue_size:
                queue.popleft()
                dropped = self._count_drop(kind, 1)
            else:
                dropped = 0
            queue.append(item)
            wake = len(self._tasks) + len(self._samples) >= self.limits.batch_size
            if self._due is None:  # the first item of a round: it goes within flush_seconds
                self._due = time.monotonic() + self.limits.flush_seconds
                if self._planned is not None and self._planned > self._due:
                    self._planned = self._due  # asleep with nothing planned: wake it to plan
                    wake = True
        if dropped:
            self._log_drop(kind, dropped, "queue full")
        if wake:
            self._wake.set()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = start_daemon(self._thread, self._stop, self._run, f"genperf-{self.name}")

    def close(self, timeout: float = 5.0) -> None:
        """Stop after sending what is queued, for at most about ``timeout`` seconds; what is
        still queued then is counted as dropped."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            self._closed = True
            left_tasks, left_samples = len(self._tasks), len(self._samples)
            if self._in_flight is not None:
                left_tasks += self._in_flight[1]
                left_samples += self._in_flight[2]
            self._tasks.clear()
            self._samples.clear()
            self._in_flight = None
        for kind, count in (("task", left_tasks), ("sample", left_samples)):
            if count:
                with self._lock:
                    self._count_drop(kind, count)
                self._log_drop(kind, count, "not sent before close")
        self._close_endpoint()

    def flush(self, timeout: float) -> bool:
        """Wake the sending thread and wait until everything queued is sent (True) or
        ``timeout`` passes (False). For tests and shutdown; the monitor never waits on it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flush_asked = True
        self._wake.set()
        with self._idle:
            while self._tasks or self._samples or self._in_flight is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
                self._wake.set()
            return True

    def stats(self) -> dict[str, int]:
        with self._lock:
            queued = len(self._tasks) + len(self._samples)
            if self._in_flight is not None:
                queued += self._in_flight[1] + self._in_flight[2]
            return {
                "tasks_sent": self.tasks_sent,
                "samples_sent": self.samples_sent,
                "tasks_dropped": self.tasks_dropped,
                "samples_dropped": self.samples_dropped,
                "send_errors": self.send_errors,
                "queued": queued,
            }

    # --- the sending thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            if not self._stop.is_set():
                with self._lock:
                    if self._backoff:  # a send failed: retry after the back-off, not before
                        due: float | None = time.monotonic() + self._backoff
                    else:
                        due = self._due
                    self._planned = float("inf") if due is None else due
                timeout = None if due is None else max(0.0, due - time.monotonic())
                if self._on_sleep is not None:
                    self._on_sleep(timeout)
                self._wake.wait(timeout)
            self._wake.clear()
            if not self._stop.is_set() and not self._round_due():
                continue  # woken to plan for the first item queued
            try:
                self._drain()
            except Exception:  # the thread must survive anything
                logger.exception("%s sink: sending failed; retrying next round", self.name)
            if self._stop.is_set():
                return  # one last round was tried; close() counts what is left as dropped

    def _round_due(self) -> bool:
        """Is a send due: a full batch, a deadline passed, a back-off over, or a flush?"""
        with self._lock:
            if self._flush_asked or (
                self._planned is not None and self._planned <= time.monotonic()
            ):
                self._flush_asked = False
                return True
            return len(self._tasks) + len(self._samples) >= self.limits.batch_size

    def _drain(self) -> bool:
        """Send batches until the queues are empty (True) or a send must wait (False)."""
        sent = False
        while True:
            with self._lock:
                if self._in_flight is None:
                    tasks = _take(self._tasks, self.limits.batch_size)
                    samples = _take(self._samples, self.limits.batch_size - len(tasks))
                    if not tasks and not samples:
                        # Items flow: plan the next round now, so that its first item need
                        # not wake the thread to plan it; the round after the last finds
                        # nothing and the thread sleeps until woken.
                        self._due = time.monotonic() + self.limits.flush_seconds if sent else None
                        self._idle.notify_all()
                        return True
                    batch: tuple[Sequence[TaskRecord], Sequence[SystemSample]] | None = (
                        tasks,
                        samples,
                    )
                else:
                    batch = None
            if batch is not None:
                try:
                    payload = self.encode(*batch)
                except Exception as exc:  # a bug in encoding: never block the queue
                    self._refused(len(batch[0]), len(batch[1]), exc)
                    continue
                with self._lock:
                    self._in_flight = (payload, len(batch[0]), len(batch[1]))
            assert self._in_flight is not None
            payload, n_tasks, n_samples = self._in_flight
            try:
                self.send(payload)
            except SinkRetryError as exc:
                with self._lock:
                    self.send_errors += 1
                    loud = self.send_errors == 1 or self.send_errors % 100 == 0
                self._backoff = min(
                    self.limits.retry_max_seconds,
                    self._backoff * 2 if self._backoff else FIRST_BACKOFF_SECONDS,
                )
                (logger.warning if loud else logger.debug)(
                    "%s sink: %s; retrying in %.1f s (%d items waiting)",
                    self.name,
                    exc,
                    self._backoff,
                    self.stats()["queued"],
                )
                return False
            except Exception as exc:
                partial = exc.tasks if isinstance(exc, SinkRefusedError) else None
                with self._lock:
                    if self._closed:  # close() gave up on this send and counted it
                        return False
                    self._in_flight = None
                    if partial is not None:  # the others were accepted
                        self.tasks_sent += n_tasks - partial
                        self.samples_sent += n_samples
                if partial is not None:
                    n_tasks, n_samples = partial, 0
                self._refused(n_tasks, n_samples, exc)
                continue
            with self._lock:
                if self._closed:
                    return False
                self._in_flight = None
                self.tasks_sent += n_tasks
                self.samples_sent += n_samples
            sent = True
            if self._backoff:
                logger.info("%s sink: sending again", self.name)
                self._backoff = 0.0

    def _refused(self, n_tasks: int, n_samples: int, exc: Exception) -> None:
        with self._lock:
            self.send_errors += 1
            self._count_drop("task", n_tasks)
            self._count_drop("sample", n_samples)
        logger.error(
            "%s sink: dropped %d tasks and %d samples the endpoint refuses: %s",
            self.name,
            n_tasks,
            n_samples,
            exc,
        )

    def _count_drop(self, kind: str, count: int) -> int:
        """Count dropped items (the caller holds the lock); returns ``count``."""
        if kind == "task":
            self.tasks_dropped += count
        else:
            self.samples_dropped += count
        return count

    def _log_drop(self, kind: str, count: int, why: str) -> None:
        total = self.tasks_dropped if kind == "task" else self.samples_dropped
        # Loud at the first drop and every 1000th: an outage must not flood the log.
        if total == count or total // 1000 != (total - count) // 1000:
            logger.warning("%s sink: %s: %d %ss dropped so far", self.name, why, total, kind)

    # --- what a sink implements ---------------------------------------------------------

    @abstractmethod
    def encode(self, tasks: Sequence[TaskRecord], samples: Sequence[SystemSample]) -> Payload:
        """The request body of one batch (on the sink's thread)."""

    @abstractmethod
    def send(self, payload: Payload) -> None:
        """Send one batch. Raises SinkRetryError (try later) or any other exception (drop)."""

    def _close_endpoint(self) -> None:
        """Release the client (connections) once stopped."""


def _take(queue: deque[Item], count: int) -> list[Item]:
    return [queue.popleft() for _ in range(min(count, len(queue)))]
