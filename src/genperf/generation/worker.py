"""The worker thread: takes queued requests one at a time, oldest first, and runs them under a
lease it renews; when idle it reaps the expired leases of dead workers (any node) and sleeps
until woken (a new request) or its poll comes due."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from genperf.errors import StoreError
from genperf.generation.queue import Outlook, RequestQueue
from genperf.generation.request import GenerationRequest
from genperf.records import utc_now
from genperf.threads import start_daemon

logger = logging.getLogger("genperf.generation")

RENEWALS_PER_LEASE = 3  # renewed every third of the lease: two renewals may fail in a row


class Worker:
    """One thread that runs requests from ``queue`` through ``run``, one at a time.

    ``run`` must record the outcome itself; anything it raises is logged and the worker goes
    on with the next request. The thread wakes when told a request was queued (:meth:`wake`:
    by this process, or by a PostgreSQL notification) and otherwise looks at the queue after
    ``poll_seconds``, backing off (doubling) to ``idle_poll_seconds`` while nothing comes.

    Args:
        identity / node: who claims (the monitor's instance, ``node:pid:start time``) and
            where; stored with each claim so any process can tell whose lease expired.
        lease_seconds: how long a claim holds without renewal; renewed every third of it.
        model_types: claim only these model types (None: any).
        reap: takes back expired leases and returns when the soonest lease still held
            expires (None: nothing runs); called while idle, at least every half lease.
        claims: False for a process that only reaps (``genperf serve --no-worker``).
    """

    def __init__(
        self,
        queue: RequestQueue,
        run: Callable[[GenerationRequest], None],
        *,
        poll_seconds: float = 1.0,
        idle_poll_seconds: float | None = None,
        identity: str | None = None,
        node: str | None = None,
        lease_seconds: float = 30.0,
        model_types: Sequence[str] | None = None,
        reap: Callable[[], datetime | None] | None = None,
        claims: bool = True,
    ) -> None:
        self._queue = queue
        self._run = run
        self._poll = poll_seconds
        self._idle_poll = max(poll_seconds, idle_poll_seconds or poll_seconds)
        self._identity = identity
        self._node = node
        self._lease = lease_seconds
        self._model_types = tuple(model_types) if model_types else None
        self._reap = reap
        self._claims = claims
        self._next_reap = 0.0  # monotonic
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()

    def start(self) -> None:
        self._thread = start_daemon(self._thread, self._stopping, self._loop, "genperf-generation")

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the running generation (if any); True when the thread has ended."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    @property
    def busy(self) -> bool:
        """True while a request is being run."""
        return self._busy.is_set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        wait = self._poll
        while not self._stopping.is_set():
            # A look that takes no lock first: claims and reaps are write transactions, and
            # an idle worker looking every few seconds was most of an idle serve's CPU.
            looks = self._claims or time.monotonic() >= self._next_reap
            outlook = self._queue.outlook(self._model_types) if looks else None
            self._reap_when_due(outlook)
            waiting = outlook is None or outlook.queued  # None: cannot tell, so claim
            request = self._claim() if self._claims and waiting else None
            if request is None:
                woken = self._wake.wait(max(0.0, min(wait, self._next_reap - time.monotonic())))
                self._wake.clear()
                wait = self._poll if woken else min(2 * wait, self._idle_poll)
                continue
            wait = self._poll
            self._busy.set()
            try:
                with self._leased(request.task_id):
                    self._run(request)
            except Exception:
                logger.exception("generation %s could not be run", request.task_id)
            finally:
                self._busy.clear()

    def _claim(self) -> GenerationRequest | None:
        try:
            return self._queue.claim_next(
                self._identity,
                self._node,
                lease_seconds=self._lease,
                model_types=self._model_types,
            )
        except StoreError as exc:
            logger.warning("cannot read the generation queue: %s", exc)
            return None

    def _reap_when_due(self, outlook: Outlook | None) -> None:
        """Reap expired leases when the soonest one is due, and at least every half lease
        (a lease taken meanwhile by another process is not known here); not when the
        ``outlook`` shows that no lease has expired."""
        now = time.monotonic()
        if self._reap is None:
            self._next_reap = now + self._idle_poll
            return
        if now < self._next_reap:
            return
        soonest = self._lease / 2
        expiry: datetime | None
        if outlook is not None and not outlook.expired(utc_now()):
            expiry = outlook.soonest_expiry  # nothing to take back
        else:
            expiry = self._reap_now()
        if expiry is not None:  # a little after it, so the lease has expired when we look
            soonest = min(soonest, max(0.05, (expiry - utc_now()).total_seconds() + 0.05))
        self._next_reap = time.monotonic() + soonest

    def _reap_now(self) -> datetime | None:
        assert self._reap is not None
        try:
            return self._reap()
        except StoreError as exc:
            logger.warning("cannot reap expired generation leases: %s", exc)
        except Exception:
            logger.exception("reaping expired generation leases failed")
        return None

    @contextmanager
    def _leased(self, task_id: str) -> Iterator[None]:
        """Renew the lease on ``task_id`` every third of it while the block runs."""
        if self._identity is None:
            yield
            return
        done = threading.Event()
        keeper = threading.Thread(
            target=self._renew, args=(task_id, done), name="genperf-lease", daemon=True
        )
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join()

    def _renew(self, task_id: str, done: threading.Event) -> None:
        assert self._identity is not None
        while not done.wait(self._lease / RENEWALS_PER_LEASE):
            try:
                if not self._queue.renew(task_id, self._identity, self._lease):
                    logger.warning(
                        "generation %s: this worker's lease expired and was taken back "
                        "(it stalled past %.0f s); its outcome will not be recorded on the request",
                        task_id,
                        self._lease,
                    )
                    return
            except StoreError as exc:  # tried again at the next renewal
                logger.warning("cannot renew the lease of generation %s: %s", task_id, exc)
