"""A short-lived cache of analysis reports, one per (window, filters), stale-while-revalidate,
bounded in every way a client could grow it.

Under load, ``/analysis``, ``/recommendations`` and ``/benchmarks`` would each read the
window from the database on every request (a report over 100k tasks takes a good fraction of
a second). With the cache:

* a fresh entry (younger than ``ttl_seconds``, and built after the last finished task) is
  served as it is;
* an entry older than ``ttl_seconds`` is still served at once, while one background thread
  builds its successor, so no request waits for a rebuild (entries older than
  ``max_stale_seconds`` are not served: the request builds and waits);
* an entry built before a task finished (:meth:`invalidate`) is never served: the analysis
  must agree with ``/metrics``. The next request rebuilds it and waits;
* a key never built before is built by the first request; concurrent requests for the same
  key wait for that one build instead of starting their own, and take its result when it
  began after they came (it holds every task finished before they asked), even if more
  tasks finished while it ran: under steady ingestion each waiter would otherwise rebuild
  in turn, and the waits grow without end.

Bounds, because the keys come from clients (a client varying ``time_window_hours`` must not
defeat the cache or grow the server): at most ``max_entries`` reports (least recently used
out first); a lock per key only while a build of it is wanted (never one per key ever seen);
at most ``max_concurrent_builds`` builds at once, so cheap endpoints keep their CPU; a request
that cannot start its build within ``busy_wait_seconds`` gets :class:`ReportsBusyError`
(503 with Retry-After). Windows are normalised
(:func:`genperf.queries.reads.normalise_window`) before they are keys. ``ttl_seconds=0``
turns caching off (the build bound still holds).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from genperf.api.errors import ApiError

T = TypeVar("T")

logger = logging.getLogger("genperf.api")

RETRY_AFTER_SECONDS = 5


class ReportsBusyError(ApiError):
    """Every build slot stayed busy: the caller should retry shortly (503, Retry-After)."""

    def __init__(self, message: str) -> None:
        super().__init__(
            503, "analysis_busy", message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )


@dataclass
class _KeyLock:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class ReportCache(Generic[T]):
    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_stale_seconds: float = 300.0,
        max_entries: int = 64,
        max_concurrent_builds: int = 2,
        busy_wait_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_stale = max_stale_seconds
        self.max_entries = max_entries
        self.busy_wait = busy_wait_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (built at, generation it was built in, value); least recently used first
        self._entries: OrderedDict[Hashable, tuple[float, int, T]] = OrderedDict()
        self._building: dict[Hashable, _KeyLock] = {}
        self._refreshing: set[Hashable] = set()
        self._slots = threading.BoundedSemaphore(max_concurrent_builds)
        self._generation = 0
        self.builds = 0

    def invalidate(self) -> None:
        """The data changed (a task finished): no entry built before now is served again."""
        with self._lock:
            self._generation += 1

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The cached value of ``key``, refreshed as the module docstring says.

        Raises:
            ReportsBusyError: no build could start within ``busy_wait_seconds``.
        """
        if self.ttl <= 0:
            return self._build(key, build)
        with self._lock:
            arrived = self._generation
            found = self._usable(key, arrived)
            if found is not None:
                value, stale = found
                if stale and key not in self._refreshing:
                    self._refreshing.add(key)
                    threading.Thread(target=self._refresh, args=(key, build), daemon=True).start()
                return value
            key_lock = self._building.setdefault(key, _KeyLock())
            key_lock.users += 1
        try:
            with key_lock.lock:
                with self._lock:
                    # Built by the caller we waited for, after every task that finished
                    # before this request came: served, even if more finished meanwhile
                    # (otherwise, under steady ingestion, each waiter rebuilds in turn).
                    found = self._usable(key, arrived)
                    if found is not None and not found[1]:
                        return found[0]
                return self._build(key, build)
        finally:
            with self._lock:
                key_lock.users -= 1
                if not key_lock.users:
                    del self._building[key]  # no lock outlives its last waiter

    def _usable(self, key: Hashable, since: int) -> tuple[T, bool] | None:
        """(value, stale) of an entry that may be served now: one whose build began in
        generation ``since`` or later (after every task finished before then); or None.
        Under ``_lock``."""
        entry = self._entries.get(key)
        if entry is None or entry[1] < since:
            return None
        age = self._clock() - entry[0]
        if age >= self.ttl + self.max_stale:
            return None
        self._entries.move_to_end(key)
        return entry[2], age >= self.ttl

    def _build(self, key: Hashable, build: Callable[[], T]) -> T:
        if not self._slots.acquire(timeout=self.busy_wait):
            raise ReportsBusyError(
                f"the analysis is busy: every build slot was in use for {self.busy_wait:g} s; "
                "retry in a few seconds"
            )
        try:
            with self._lock:
                began, generation = self._clock(), self._generation
            value = build()
        finally:
            self._slots.release()
        with self._lock:
            self.builds += 1
            if self.ttl > 0:
                self._entries[key] = (began, generation, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return value

    def _refresh(self, key: Hashable, build: Callable[[], T]) -> None:
        try:
            self._build(key, build)
        except Exception:  # the stale entry stays; the next request after it expires retries
            logger.warning("refreshing a cached report failed", exc_info=True)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def key_locks(self) -> int:
        """Per-key locks held now (each only while a build of its key is wanted)."""
        with self._lock:
            return len(self._building)
