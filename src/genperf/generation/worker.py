"""The worker thread: takes queued requests one at a time, oldest first, and runs them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from genperf.errors import StoreError
from genperf.generation.queue import RequestQueue
from genperf.generation.request import GenerationRequest

logger = logging.getLogger("genperf.generation")


class Worker:
    """One thread that runs requests from ``queue`` through ``run``, one at a time.

    ``run`` must record the outcome itself; anything it raises is logged and the worker goes
    on with the next request. The thread wakes when told a request was queued (:meth:`wake`)
    and otherwise looks at the queue every ``poll_seconds`` (requests queued elsewhere).
    """

    def __init__(
        self,
        queue: RequestQueue,
        run: Callable[[GenerationRequest], None],
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        self._queue = queue
        self._run = run
        self._poll = poll_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="genperf-generation", daemon=True)
        self._thread.start()

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
        while not self._stopping.is_set():
            try:
                request = self._queue.claim_next()
            except StoreError as exc:
                logger.warning("cannot read the generation queue: %s", exc)
                request = None
            if request is None:
                self._wake.wait(self._poll)
                self._wake.clear()
                continue
            self._busy.set()
            try:
                self._run(request)
            except Exception:
                logger.exception("generation %s could not be run", request.task_id)
            finally:
                self._busy.clear()
