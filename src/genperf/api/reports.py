"""A short-lived cache of analysis reports, one per (window, filters), stale-while-revalidate.

Under load, ``/analysis``, ``/recommendations`` and ``/benchmarks`` would each read the
window from the database on every request (a report over 100k tasks takes a good fraction of
a second). With the cache:

* a fresh entry (younger than ``ttl_seconds``) is served as it is;
* an older one is still served at once, while one background thread builds its successor,
  so no request waits for a rebuild (entries older than ``max_stale_seconds`` are not
  served: the request builds and waits);
* a key never built before is built by the first request; concurrent requests for the same
  key wait for that one build instead of starting their own.

So a report is at most ``ttl_seconds`` plus one build old; its ``generated_at`` says when it
was made. ``ttl_seconds=0`` turns caching off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger("genperf.api")


class ReportCache(Generic[T]):
    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_stale_seconds: float = 300.0,
        max_entries: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_stale = max_stale_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, T]] = {}  # key -> (built at, value)
        self._building: dict[Hashable, threading.Lock] = {}
        self._refreshing: set[Hashable] = set()
        self.builds = 0

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The cached value of ``key``, refreshed as the module docstring says."""
        if self.ttl <= 0:
            return self._build(key, build)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                age = now - entry[0]
                if age < self.ttl:
                    return entry[1]
                if age < self.ttl + self.max_stale:
                    if key not in self._refreshing:
                        self._refreshing.add(key)
                        threading.Thread(
                            target=self._refresh, args=(key, build), daemon=True
                        ).start()
                    return entry[1]
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and self._clock() - entry[0] < self.ttl:
                    return entry[1]  # built by the caller we waited for
            return self._build(key, build)

    def _build(self, key: Hashable, build: Callable[[], T]) -> T:
        began = self._clock()
        value = build()
        with self._lock:
            self.builds += 1
            if self.ttl > 0:
                if key not in self._entries and len(self._entries) >= self.max_entries:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[key] = (began, value)
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
